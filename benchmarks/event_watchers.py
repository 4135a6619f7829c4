"""Requests an hour of N asset watchers on one gateway (``python -m benchmarks.event_watchers``).

Each watcher (:class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger`,
``poll_interval=60``) watches the thumbs-down logs of its own model (distinct filters, so distinct
trigger rows and polls; watchers with equal kwargs share one row and one poll). One simulated
hour on a fake clock against the emulator over real HTTP: an idle hour, then an hour in which
each watcher's model gets a new thumbs-down log every 5 minutes. Prints the emulator's
request count per hour and the events yielded.
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


class _Stop(Exception):
    pass


async def _watch_one_hour(emu: EmulatorServer, customer: int, busy: bool) -> int:
    """Run one watcher for a simulated hour; returns the events it yielded."""
    now = [EPOCH.timestamp()]
    due = [EPOCH + dt.timedelta(seconds=s) for s in range(150, int(HOUR), 300)] if busy else []

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        while due and due[0].timestamp() <= now[0]:
            created = due.pop(0)
            emu.add_logs(GW, [{"created_at": format_time(created), "feedback": -1, "model": f"model-{customer}"}])
        if now[0] - EPOCH.timestamp() >= HOUR:
            raise _Stop
        await asyncio.sleep(0)

    trigger = AIGatewayLogsEventTrigger(
        gateway_id=GW,
        filters=[
            {"key": "feedback", "operator": "eq", "value": [-1]},
            {"key": "model", "operator": "eq", "value": [f"model-{customer}"]},
        ],
        poll_interval=60,
    )
    trigger._clock, trigger._sleep = (lambda: now[0]), sleep
    events = 0
    try:
        async for _event in trigger.run():
            events += 1
    except _Stop:
        pass
    return events


def main(counts: list[int]) -> None:
    for busy in (False, True):
        for n in counts:
            with EmulatorServer() as emu:
                emu.create_gateway(GW)
                os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"] = emu.airflow_conn_json(
                    GW, max_retries=0, budget_requests=10**6
                )  # the hour runs in seconds: the budget of real time would pace it
                emu.reset_stats()
                events: Any = asyncio.run(_gather(emu, n, busy))
                print(
                    f"{'busy' if busy else 'idle'} hour, {n:>2} watcher(s): {emu.stats['list']:>5} requests/hour, "
                    f"{sum(events)} events"
                )


async def _gather(emu: EmulatorServer, n: int, busy: bool) -> list[int]:
    return list(await asyncio.gather(*(_watch_one_hour(emu, i, busy) for i in range(n))))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10, 50])
