"""Fixtures of the export tests: a destination on file:// and memory://, or on file:// only.

The logs, the export call and the checks they share are in ``tests/export_helpers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.export_helpers import Dest


@pytest.fixture(params=["file", "memory"])
def dest(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Dest]:
    """A private destination, once on file:// and once on memory://."""
    d = Dest(request.param, tmp_path)
    yield d
    d.cleanup()


@pytest.fixture
def fdest(tmp_path: Any) -> Dest:
    """A destination on file:// (where a test reads files by path)."""
    return Dest("file", tmp_path)
