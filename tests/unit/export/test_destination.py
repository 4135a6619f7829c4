"""export/destination.py: destinations resolved with clear errors, atomic writes, URLs without
connection ids."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from airflow_provider_aigw.compat import ObjectStoragePath
from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import export_logs, resolve_destination
from airflow_provider_aigw.export.destination import open_destination, strip_userinfo
from tests.export_helpers import END, START, Dest, Tracking, spread_logs


def test_unregistered_scheme_is_a_clear_error() -> None:
    tracking = Tracking(spread_logs(5))
    with pytest.raises(AIGatewayInputError) as err:
        export_logs(tracking, "abfs://azure_default@container/aigw", gateway_id="gw", start=START, end=END)
    msg = str(err.value)
    assert "destination" in msg and "'abfs'" in msg and "apache-airflow-providers-microsoft-azure" in msg
    assert tracking.consumed == 0
    with pytest.raises(AIGatewayInputError, match="adlfs"):
        resolve_destination("abfs://container/prefix")
    with pytest.raises(AIGatewayInputError, match="destination"):
        resolve_destination("no-scheme/path")
    with pytest.raises(AIGatewayInputError, match="destination"):
        resolve_destination("")


def test_resolve_destination_accepts_urls_and_paths(tmp_path: Any) -> None:
    p = resolve_destination(f"file://{tmp_path}")
    assert isinstance(p, ObjectStoragePath) and p.protocol == "file"
    same = ObjectStoragePath(f"file://{tmp_path}")
    assert resolve_destination(same) is same
    mem = resolve_destination("memory://bucket/x")
    assert isinstance(mem, ObjectStoragePath) and mem.protocol == "memory"


def test_resolve_destination_check_writable(tmp_path: Any) -> None:
    assert resolve_destination(f"file://{tmp_path}/new/dir", check_writable=True).protocol == "file"
    assert list((tmp_path / "new" / "dir").iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(AIGatewayInputError, match="not writable"):
        resolve_destination(f"file://{blocker}/sub", check_writable=True)


def test_object_storage_path_destination(tmp_path: Any) -> None:
    path = ObjectStoragePath(f"file://{tmp_path}/osp")
    result = export_logs(spread_logs(5), path, gateway_id="gw", start=START, end=END)
    assert result.manifest_uri.startswith(f"file://{tmp_path}/osp/gateway=gw/_manifests/")
    assert result.count == 5


def test_unwritable_destination_is_a_clear_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    tracking = Tracking(spread_logs(5))
    with pytest.raises(AIGatewayInputError, match="not writable"):
        export_logs(tracking, f"file://{blocker}/sub", gateway_id="gw", start=START, end=END)
    assert tracking.consumed == 0


def test_manifest_uris_carry_no_connection_id(tmp_path: Any) -> None:
    assert strip_userinfo("s3://aws_default@bucket/prefix/x") == "s3://bucket/prefix/x"
    assert strip_userinfo("file:///tmp/x") == "file:///tmp/x"
    result = export_logs(iter(spread_logs(3)), f"file://{tmp_path}", gateway_id="gw-1", start=START, end=END)
    assert all(f["uri"].startswith(f"file://{tmp_path}/gateway=gw-1/") for f in result.manifest["files"])


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        # the manifest's root and file URIs (Destination.plain_root): the connection id goes, the path stays
        ("s3://aws_default@bucket/prefix/x", "s3://bucket/prefix/x"),
        ("file:///tmp/x", "file:///tmp/x"),
        ("s3://bucket/a@b", "s3://bucket/a@b"),
        # the export run's asset and URL: a trailing slash is no part of the name either
        ("s3://aws_conn@bucket/prefix/", "s3://bucket/prefix"),
        ("file:///data/aigw/", "file:///data/aigw"),
        ("gs://conn@bucket/", "gs://bucket"),
        # the root of an empty authority keeps its one slash
        ("file:///", "file:///"),
        ("not a url", "not a url"),
    ],
)
def test_strip_userinfo_drops_the_connection_id_and_a_trailing_slash(url: str, plain: str) -> None:
    assert strip_userinfo(url) == plain


def test_a_destination_given_with_a_trailing_slash_names_its_files_once(tmp_path: Any) -> None:
    dest = open_destination(f"file://{tmp_path}/archive/")
    assert dest.plain_root == f"file://{tmp_path}/archive"
    assert dest.plain_uri("gateway=gw/x.json") == f"file://{tmp_path}/archive/gateway=gw/x.json"


def test_an_atomic_writer_publishes_when_the_block_ends_and_nothing_when_it_raises(dest: Dest) -> None:
    target = open_destination(dest.url)
    with target.open_writer("gateway=gw/a.bin") as f:
        f.write(b"hello ")
        f.write(memoryview(b"world"))
    assert dest.files() == {"gateway=gw/a.bin": b"hello world"}
    with pytest.raises(RuntimeError, match="boom"), target.open_writer("gateway=gw/b.bin") as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert dest.files() == {"gateway=gw/a.bin": b"hello world"}, "no final name, no temp file"


def test_an_atomic_writer_is_visible_only_once_committed_and_hashes_what_it_wrote(fdest: Dest) -> None:
    """On file:// (a temp name renamed into place; object stores publish on close)."""
    target = open_destination(fdest.url)
    writer = target.open_writer("gateway=gw/c.bin")
    writer.file.write(b"abc")
    assert not target.exists("gateway=gw/c.bin")
    writer.commit()
    assert target.read_bytes("gateway=gw/c.bin") == b"abc"
    assert (writer.file.bytes_written, writer.file.sha256) == (3, hashlib.sha256(b"abc").hexdigest())
    aborted = target.open_writer("gateway=gw/d.bin")
    aborted.file.write(b"x")
    aborted.abort()
    assert set(fdest.files()) == {"gateway=gw/c.bin"}


def test_an_exclusive_create_has_one_winner_among_threads(dest: Dest) -> None:
    target = open_destination(dest.url)
    start = threading.Barrier(8)
    won: list[int] = []

    def create(i: int) -> None:
        start.wait()
        if target.create_exclusive("gateway=gw/_manifests/x.lock", str(i).encode()):
            won.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    assert dest.files() == {"gateway=gw/_manifests/x.lock": str(won[0]).encode()}
    assert not target.create_exclusive("gateway=gw/_manifests/x.lock", b"again")
