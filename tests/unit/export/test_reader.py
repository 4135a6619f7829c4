"""export/reader.py: reading an archive back: manifests, part files, verification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayError
from airflow_provider_aigw.export import (
    read_manifest,
)
from tests.export_helpers import (
    Dest,
)


def test_read_manifest_missing_or_incomplete(fdest: Dest, tmp_path: Any) -> None:
    with pytest.raises(AIGatewayError, match="does not exist"):
        read_manifest(f"file://{tmp_path}/nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"files": []}))
    with pytest.raises(AIGatewayError, match="not a complete"):
        read_manifest(f"file://{bad}")
