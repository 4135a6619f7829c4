from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on loopback for one test, killed at teardown."""
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()
