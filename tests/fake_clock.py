"""The one fake clock of the tests: it moves only when the code under test sleeps (or, as a
``requests`` response hook, by a fixed time per answer), so nothing really waits and every
moment a test asserts is exact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any


class FakeClock:
    """An injectable clock: :meth:`time` reads it; :meth:`sleep` and :meth:`async_sleep` move it
    and record each wait in :attr:`sleeps`; :meth:`answered` moves it per HTTP answer.

    :param now: the first reading, in seconds (an epoch timestamp where the code reads wall time).
    :param request_seconds: how far :meth:`answered` moves the clock per answer.
    """

    def __init__(self, now: float = 1000.0, *, request_seconds: float = 0.0) -> None:
        self.now = now
        self.request_seconds = request_seconds
        self.sleeps: list[float] = []
        self.request_times: list[float] = []
        #: Called with the number of sleeps so far after each one (to change the world mid-wait).
        self.on_sleep: Callable[[int], None] | None = None

    def time(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still yield to the event loop, as a real sleep would

    def answered(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """A ``requests`` response hook: each answer takes ``request_seconds``."""
        self.now += self.request_seconds
        self.request_times.append(self.now)
