"""The logs that started a DAG run of an asset watcher, for the operators to act on exactly them.

An ``AssetWatcher`` with
:class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger` creates an asset
event per batch of new logs; a run reads them from its context's ``triggering_asset_events``
(several, when events queued up before the run started, or when a log repeats after a
triggerer restart). :func:`triggered_logs` turns them into one :class:`TriggeredLogs`: the
deduplicated ids, the window holding them and their gateway, ready for the list, export and
patch operators::

    logs = triggered_logs(context["triggering_asset_events"])
    AIGatewayListLogsOperator(gateway_id=logs.gateway_id, filters=logs.filters(), start=logs.start, end=logs.end)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.query import Filter
from airflow_provider_aigw.timestamps import format_time, parse_created_at
from airflow_provider_aigw.validation import validate_log_id

#: The ``kind`` of an event payload of the provider's watcher.
EVENT_KIND = "aigw.new_logs"


@dataclasses.dataclass(frozen=True)
class TriggeredLogs:
    """The new logs of a run's triggering events.

    :param gateway_id: their gateway (``None`` when no event was the watcher's).
    :param ids: their ids, each once, in the order the events carried them.
    :param start: the start of the ``created_at`` window holding them (inclusive), or ``None``.
    :param end: the end of that window (exclusive), or ``None``.
    :param events: how many of the watcher's events were read.
    """

    gateway_id: str | None
    ids: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    events: int = 0

    def filters(self) -> list[Filter]:
        """The ``id eq`` filter selecting exactly these logs (with :attr:`start`/:attr:`end`, one listing).

        :raises AIGatewayInputError: no ids: a filter of none would select every log.
        """
        if not self.ids:
            raise AIGatewayInputError("no logs fired this run: there is nothing to select (check .ids first)")
        return [{"key": "id", "operator": "eq", "value": list(self.ids)}]

    def to_json(self) -> dict[str, Any]:
        """JSON for XCom: ``gateway_id``, ``ids``, ``count``, ``start``, ``end``, ``filters`` (``None`` without ids)."""
        return {
            "gateway_id": self.gateway_id,
            "ids": list(self.ids),
            "count": len(self.ids),
            "start": format_time(self.start) if self.start is not None else None,
            "end": format_time(self.end) if self.end is not None else None,
            "filters": self.filters() if self.ids else None,
        }


def _payload(event: Any) -> Mapping[str, Any] | None:
    """The watcher's payload of one asset event (an object with ``extra``, or its dict form), or ``None``."""
    extra = event.get("extra") if isinstance(event, Mapping) else getattr(event, "extra", None)
    payload = extra.get("payload") if isinstance(extra, Mapping) else None
    if isinstance(payload, Mapping) and payload.get("kind") == EVENT_KIND:
        return payload
    return None


def triggered_logs(triggering_asset_events: Any, *, gateway_id: str | None = None) -> TriggeredLogs:
    """The logs the watcher's events of a run carry, each id once.

    :param triggering_asset_events: the run context's ``triggering_asset_events`` (asset ->
        its events), or an iterable of events. Events that are not the watcher's are ignored.
    :param gateway_id: keep only this gateway's logs; needed when the events come from watchers
        of several gateways.
    :raises AIGatewayInputError: events of several gateways and no ``gateway_id``, or a payload
        that is not the watcher's shape.
    """
    if isinstance(triggering_asset_events, Mapping):
        events: Iterable[Any] = (e for group in triggering_asset_events.values() for e in group)
    else:
        events = triggering_asset_events or ()
    payloads = [p for p in map(_payload, events) if p is not None]
    gateways = sorted({str(p.get("gateway_id")) for p in payloads})
    if gateway_id is not None:
        payloads = [p for p in payloads if p.get("gateway_id") == gateway_id]
    elif len(gateways) > 1:
        raise AIGatewayInputError(f"the run's events come from gateways {gateways}: pass gateway_id= to pick one")
    gateway = gateway_id if gateway_id is not None else (gateways[0] if gateways else None)
    ids: dict[str, None] = {}
    starts: list[dt.datetime] = []
    ends: list[dt.datetime] = []
    for payload in payloads:
        try:
            for log_id in payload["ids"]:
                ids[validate_log_id(log_id, param="an event's log id")] = None
            starts.append(parse_created_at(payload["start"]))
            ends.append(parse_created_at(payload["end"]))
        except (KeyError, TypeError) as err:
            shown = f"{dict(payload)!r:.300}"
            raise AIGatewayInputError(f"an event's payload is not the watcher's ({err!r}): {shown}") from None
    return TriggeredLogs(
        gateway_id=gateway,
        ids=tuple(ids),
        start=min(starts, default=None),
        end=max(ends, default=None),
        events=len(payloads),
    )
