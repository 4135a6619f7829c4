"""Requests an hour of N asset watchers on one gateway (``python -m benchmarks.event_watchers``).

Each watcher (:class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger`,
``poll_interval=60``) watches the thumbs-down logs of its own model: distinct filters, so distinct
trigger rows. Two ways to run them, one simulated hour each on a fake clock against the emulator
over real HTTP:

- *alone* (Airflow 3.0 to 3.2, and 3.3 without the shared stream): each watcher's :meth:`run`;
- *shared* (Airflow 3.3): one group, as the triggerer runs it: the shared poll
  (:meth:`open_shared_stream`), each signal handed to every watcher's
  :meth:`filter_shared_stream`, which is done with it before the shared poll goes on.

Three hours of traffic: *idle* (no log); *sparse* (one thumbs-down log on the gateway every 5
minutes, for watcher 0); *busy* (each watcher's model a new thumbs-down log every 5 minutes, the
watchers' logs spread evenly over those 5 minutes). Prints the emulator's request count per hour
and the events yielded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from typing import Any

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.timestamps import format_time
from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsEventTrigger

GW = "bench-gateway"
EPOCH = dt.datetime(2026, 11, 26, 12, tzinfo=dt.timezone.utc)
HOUR = 3600.0
EVERY = 300  # seconds between two logs of one watcher's filter (busy) or of the gateway (sparse)
TRAFFIC = ("idle", "sparse", "busy")


class _Stop(Exception):
    pass


def _watcher(customer: int) -> AIGatewayLogsEventTrigger:
    return AIGatewayLogsEventTrigger(
        gateway_id=GW,
        filters=[
            {"key": "feedback", "operator": "eq", "value": [-1]},
            {"key": "model", "operator": "eq", "value": [f"model-{customer}"]},
        ],
        poll_interval=60,
    )


def _arrivals(n: int, traffic: str, customers: range) -> list[tuple[float, int]]:
    """(seconds after EPOCH, customer) of the logs of ``customers`` arriving within the hour, in time order."""
    if traffic == "idle":
        return []
    if traffic == "sparse":
        return [(s, 0) for s in range(150, int(HOUR), EVERY)] if 0 in customers else []
    return sorted((s + c * EVERY / n, c) for c in customers for s in range(150, int(HOUR), EVERY))


class _Clock:
    """One simulated clock: each sleep moves it and adds the logs due by then; the hour's end stops it."""

    def __init__(self, emu: EmulatorServer, due: list[tuple[float, int]]) -> None:
        self.emu = emu
        self.now = EPOCH.timestamp()
        self.due = due

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        while self.due and EPOCH.timestamp() + self.due[0][0] <= self.now:
            at, customer = self.due.pop(0)
            created = format_time(EPOCH + dt.timedelta(seconds=at))
            self.emu.add_logs(GW, [{"created_at": created, "feedback": -1, "model": f"model-{customer}"}])
        if self.now - EPOCH.timestamp() >= HOUR:
            raise _Stop
        await asyncio.sleep(0)


async def _alone(emu: EmulatorServer, n: int, traffic: str) -> int:
    """Each watcher's own run() for the hour (its own clock and its own logs); returns the events."""

    async def one(customer: int) -> int:
        trigger = _watcher(customer)
        clock = _Clock(emu, _arrivals(n, traffic, range(customer, customer + 1)))
        trigger._clock, trigger._sleep = clock.time, clock.sleep
        events = 0
        try:
            async for _event in trigger.run():
                events += 1
        except _Stop:
            pass
        return events

    return sum(await asyncio.gather(*(one(c) for c in range(n))))


async def _shared(emu: EmulatorServer, n: int, traffic: str) -> int:
    """One group of the n watchers for the hour, the shared poll's clock the group's; returns the events."""
    clock = _Clock(emu, _arrivals(n, traffic, range(n)))
    queues: list[asyncio.Queue[Any]] = []
    joined: list[asyncio.Event] = []
    events = [0]

    async def subscriber(trigger: AIGatewayLogsEventTrigger) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        ready = asyncio.Event()
        queues.append(queue)
        joined.append(ready)

        async def stream() -> Any:
            ready.set()  # it polled on joining
            while True:
                yield await queue.get()
                queue.task_done()  # it asks for the next signal: done with this one

        async for _event in trigger.filter_shared_stream(stream()):
            events[0] += 1

    watchers = [_watcher(c) for c in range(n)]
    for trigger in watchers:  # the group's clock: their look-back starts from it
        trigger._clock, trigger._sleep = clock.time, clock.sleep
    tasks = [asyncio.create_task(subscriber(trigger)) for trigger in watchers]
    await asyncio.sleep(0)
    await asyncio.gather(*(ready.wait() for ready in joined))
    detector = _watcher(0)  # what open_shared_stream(kwargs) builds, on the simulated clock
    detector._clock, detector._sleep = clock.time, clock.sleep
    try:
        async for change in detector._changes():
            for queue in queues:
                queue.put_nowait(change)
            await asyncio.gather(*(queue.join() for queue in queues))
    except _Stop:
        pass
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return events[0]


def main(counts: list[int]) -> None:
    for traffic in TRAFFIC:
        for n in counts:
            figures = []
            for mode in (_alone, _shared):
                with EmulatorServer() as emu:
                    emu.create_gateway(GW)
                    os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"] = emu.airflow_conn_json(
                        GW, max_retries=0, budget_requests=10**6
                    )  # the hour runs in seconds: the budget of real time would pace it
                    emu.reset_stats()
                    events = asyncio.run(mode(emu, n, traffic))
                    figures.append(f"{emu.stats['list']:>5} requests/hour ({events} events)")
            print(f"{traffic:>6} hour, {n:>2} watcher(s): alone {figures[0]}, shared {figures[1]}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10, 50])
