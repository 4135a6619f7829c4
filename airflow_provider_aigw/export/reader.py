"""Reading an export back: manifests, part files, verification.

A manifest's file entries carry ``path`` (relative to the export root) and a plain ``uri``
without the Airflow connection id, for readers outside Airflow (DuckDB, Spark, Athena). Inside
Airflow, files are opened relative to where the manifest was read from, so the connection of
``s3://conn@bucket/...`` applies to them too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.compat import storage_url
from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export.destination import open_destination
from airflow_provider_aigw.export.formats import read_jsonl_records, read_parquet_records
from airflow_provider_aigw.export.naming import format_of, gateway_dir, manifests_dir

if TYPE_CHECKING:
    from airflow_provider_aigw.compat import ObjectStoragePath


def _read_uri_bytes(uri: str | ObjectStoragePath) -> bytes:
    dest = open_destination(uri)
    try:
        data: bytes = dest.fs.cat_file(dest.root)
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{dest.uri_root!r} does not exist") from exc
    except Exception as exc:
        raise AIGatewayError(f"cannot read {dest.uri_root!r}: {type(exc).__name__}: {exc}") from exc
    return data


def read_manifest(uri_or_path: str | ObjectStoragePath | Mapping[str, Any]) -> dict[str, Any]:
    """Load an export manifest.

    The returned dict also holds ``manifest_uri``, where it was read from (not stored in the
    manifest itself), so that its files are opened through the same connection.

    :param uri_or_path: the manifest URL / ``ObjectStoragePath``, or the export's XCom summary
        (a dict with ``manifest_uri``), or an already loaded manifest (returned as a copy).
    :raises AIGatewayError: the manifest is missing, unreadable or not a complete manifest.
    """
    if isinstance(uri_or_path, Mapping):
        if "files" in uri_or_path and "complete" in uri_or_path:
            return dict(uri_or_path)
        uri = uri_or_path.get("manifest_uri")
        if not uri:
            raise AIGatewayInputError("manifest dict has neither 'manifest_uri' nor manifest content")
        return read_manifest(uri)
    data = _read_uri_bytes(uri_or_path)
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise AIGatewayError(f"manifest {str(uri_or_path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise AIGatewayError(f"{str(uri_or_path)!r} is not a complete export manifest")
    source = uri_or_path if isinstance(uri_or_path, str) else storage_url(uri_or_path)
    manifest["manifest_uri"] = source.strip()
    return manifest


def file_uri(manifest: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """Where to open a manifest's file entry: next to the manifest's own location when known."""
    source = manifest.get("manifest_uri")
    gateway = manifest.get("gateway_id")
    if isinstance(source, str) and gateway:
        marker = f"/{manifests_dir(gateway_dir(gateway))}/"
        cut = source.rfind(marker)
        if cut > 0:
            return f"{source[:cut]}/{entry['path']}"
    return str(entry["uri"])


def iter_file_records(uri: str | ObjectStoragePath) -> Iterator[dict[str, Any]]:
    """Yield the log dicts of one exported part file (format taken from its name).

    Parquet rows come back as described in :func:`~.formats.parquet_row_to_record`.
    """
    dest = open_destination(uri)
    fmt = format_of(dest.root)
    try:
        raw = dest.fs.open(dest.root, "rb")
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{dest.uri_root!r} does not exist") from exc
    with raw:
        if fmt == "parquet":
            yield from read_parquet_records(raw)
        else:
            yield from read_jsonl_records(raw, gzipped=fmt == "jsonl.gz")


def iter_manifest_records(
    manifest: str | ObjectStoragePath | Mapping[str, Any], *, verify: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield every log of an export, file by file in manifest order.

    :param manifest: as accepted by :func:`read_manifest`.
    :param verify: check each file's sha256 and byte count against the manifest first (reads
        each file twice).
    """
    m = read_manifest(manifest)
    for f in m["files"]:
        uri = file_uri(m, f)
        if verify:
            verify_file({**f, "uri": uri})
        yield from iter_file_records(uri)


def verify_file(entry: Mapping[str, Any]) -> None:
    """Check one manifest file entry's byte count and sha256 against the stored object."""
    dest = open_destination(entry["uri"])
    sha = hashlib.sha256()
    size = 0
    try:
        raw = dest.fs.open(dest.root, "rb")
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{entry['uri']!r} is named by the manifest but does not exist") from exc
    with raw:
        while chunk := raw.read(1024 * 1024):
            sha.update(chunk)
            size += len(chunk)
    if size != entry["bytes"] or sha.hexdigest() != entry["sha256"]:
        raise AIGatewayError(
            f"{entry['uri']!r} does not match its manifest entry "
            f"(bytes {size} vs {entry['bytes']}, sha256 {sha.hexdigest()} vs {entry['sha256']})"
        )
