"""Running calls in a bounded number of threads, results in input order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Upper bound of concurrent requests of one task (the client's connection pool holds 32).
MAX_CONCURRENCY = 32
#: Items in flight at once in :func:`bounded_map`.
_CHUNK = 50


def bounded_map(
    fn: Callable[[Any], Any], items: Iterable[Any], *, concurrency: int, chunk: int = _CHUNK
) -> Iterator[Any]:
    """``map(fn, items)`` in order with up to ``concurrency`` threads and at most ``chunk`` items in flight."""
    if concurrency == 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aigw") as pool:
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                yield from pool.map(fn, batch)
                batch = []
        if batch:
            yield from pool.map(fn, batch)
