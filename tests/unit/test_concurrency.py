"""Bounded concurrency (``concurrency.py``): results in input order, never more threads or items in
flight than asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from airflow_provider_aigw.concurrency import bounded_map


def test_results_come_in_input_order_whatever_finishes_first() -> None:
    release = {i: threading.Event() for i in range(8)}

    def work(i: int) -> int:
        release[i].wait(5)
        return i * i

    for i in reversed(range(8)):  # the last item may finish first
        release[i].set()
    assert list(bounded_map(work, range(8), concurrency=4)) == [i * i for i in range(8)]


def test_concurrency_one_runs_in_the_calling_thread() -> None:
    threads = set(bounded_map(lambda _: threading.current_thread(), range(3), concurrency=1))
    assert threads == {threading.current_thread()}


@pytest.mark.parametrize(("concurrency", "chunk"), [(2, 50), (4, 8), (5, 10)])
def test_exactly_concurrency_calls_run_at_once_and_a_chunk_of_items_is_read_ahead(concurrency, chunk) -> None:
    # Each call waits for concurrency - 1 others: it passes only if that many run at once.
    barrier = threading.Barrier(concurrency, timeout=10)
    lock = threading.Lock()
    running = peak = read = 0
    threads: set[int] = set()

    def items() -> Iterator[int]:
        nonlocal read
        for i in range(40):
            read += 1
            yield i

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            threads.add(threading.get_ident())
        barrier.wait()
        with lock:
            running -= 1
        return i

    results = bounded_map(work, items(), concurrency=concurrency, chunk=chunk)
    first = next(results)
    assert first == 0 and read == min(chunk, 40)  # read a chunk ahead, not the whole input
    assert [first, *results] == list(range(40))
    assert peak == concurrency and len(threads) == concurrency


def test_an_error_of_a_call_reaches_the_caller() -> None:
    def work(i: int) -> int:
        if i == 5:
            raise ValueError("item 5")
        return i

    got: list[int] = []
    with pytest.raises(ValueError, match="item 5"):
        got.extend(bounded_map(work, range(10), concurrency=3))
    assert got == [0, 1, 2, 3, 4]
