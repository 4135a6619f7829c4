"""Progress lines of long loops over logs: count, pages, requests, rate and ETA, every 30 s."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: Seconds between progress lines of a long loop.
PROGRESS_INTERVAL = 30.0
#: What :meth:`Progress.wrap` passes through (a log dict, or the delete's targets).
_Item = TypeVar("_Item")


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m04s`` or ``5s``, for progress lines."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class Progress:
    """Logs throughput and ETA of a long walk of logs at most every ``interval`` seconds.

    :param logger: where the lines go (the task's logger).
    :param expected: logs that matched when the walk started.
    :param requests: API requests this walk has sent so far.
    :param per_page: logs per page of the walk (the line counts pages of that size).
    :param interval: seconds between lines.
    :param done: what is done to each log, the verb of the line (``"exported"``; the delete's
        check: ``"checked"``).
    """

    logger: Any
    expected: int = field(kw_only=True)
    requests: Callable[[], int] = field(kw_only=True)
    per_page: int = field(kw_only=True)
    interval: float = field(default=PROGRESS_INTERVAL, kw_only=True)
    done: str = field(default="exported", kw_only=True)
    #: Logs passed through so far.
    count: int = field(default=0, init=False)
    _started: float = field(default_factory=time.monotonic, init=False)
    _last: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._last = self._started

    def wrap(self, logs: Iterable[_Item]) -> Iterator[_Item]:
        """Pass ``logs`` through, counting them and reporting every ``interval`` seconds."""
        for item in logs:
            self.count += 1
            yield item
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self.report(now)

    def report(self, now: float | None = None) -> None:
        """Log one progress line."""
        elapsed = (now or time.monotonic()) - self._started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        pages = math.ceil(self.count / self.per_page)
        line = (
            f"{self.done} {self.count:,} of {self.expected:,} logs, {pages:,} pages, {self.requests():,} API requests"
        )
        if elapsed > 0:
            line += f", {rate:,.0f} logs/s, {format_duration(elapsed)} elapsed"
        left = self.expected - self.count
        if left > 0 and rate > 0:
            line += f", ETA {format_duration(left / rate)}"
        self.logger.info(line)
