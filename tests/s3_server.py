"""S3 as users have it, on loopback: a moto server, and DuckDB reading the archive back from it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: moto's test credentials: nothing may reach real AWS.
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@contextlib.contextmanager
def moto_s3(*buckets: str) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 holding the empty ``buckets``: its endpoint URL, until the block ends."""
    # Imported here: a test module may skip itself (importorskip) when moto is not installed.
    import boto3
    from moto import server as moto_server

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, **CREDS)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def duckdb_on_s3(endpoint: str) -> Iterator[Any]:
    """A DuckDB connection in UTC reading ``s3://`` from ``endpoint`` through s3fs (the httpfs
    extension would need a download)."""
    import duckdb
    import s3fs

    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register_filesystem(
            s3fs.S3FileSystem(
                key=CREDS["aws_access_key_id"],
                secret=CREDS["aws_secret_access_key"],
                client_kwargs={"endpoint_url": endpoint, "region_name": CREDS["region_name"]},
            )
        )
        yield connection
    finally:
        connection.close()
