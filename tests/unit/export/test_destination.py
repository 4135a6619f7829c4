"""export/destination.py: destinations resolved with clear errors, atomic writes, URLs without
connection ids."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aigw.compat import ObjectStoragePath
from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import (
    export_logs,
    resolve_destination,
)
from tests.export_helpers import (
    END,
    START,
    Tracking,
    spread_logs,
)


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
    from airflow_provider_aigw.export.destination import strip_userinfo

    assert strip_userinfo("s3://aws_default@bucket/prefix/x") == "s3://bucket/prefix/x"
    assert strip_userinfo("file:///tmp/x") == "file:///tmp/x"
    result = export_logs(iter(spread_logs(3)), f"file://{tmp_path}", gateway_id="gw-1", start=START, end=END)
    assert all(f["uri"].startswith(f"file://{tmp_path}/gateway=gw-1/") for f in result.manifest["files"])
