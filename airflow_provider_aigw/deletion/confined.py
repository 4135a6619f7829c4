"""The confined DELETE: named ids inside a tight ``created_at`` slice, led by a checked canary.

Both deletes (:mod:`.listed` and :mod:`.exported`) list the logs they will remove and hand
them to :class:`ConfinedDelete` (see the package docstring for why).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.calls import MAX_DELETE_LIMIT
from airflow_provider_aigw.exceptions import AIGatewayUnsafeDeleteError
from airflow_provider_aigw.filters import CREATED_AT_RESOLUTION, Filter, format_time, parse_created_at

if TYPE_CHECKING:
    from airflow_provider_aigw.client import AIGatewayClient

__all__ = [
    "CANARY_SIZE",
    "MAX_DELETE_ID_CHARS",
    "MAX_QUOTED_IDS",
    "ConfinedDelete",
    "Target",
    "announce",
    "describe",
    "listed_ids",
    "sample",
]

log = logging.getLogger(__name__)

#: Size of the ``id`` filter of one DELETE on the wire (about 320 UUIDs), so that its URL stays
#: under Cloudflare's 16 KB limit.
MAX_DELETE_ID_CHARS = 14_000
#: Ids named by the first DELETE, the canary checked by listing.
CANARY_SIZE = 5
#: Ids quoted in an error message before "... and N more".
MAX_QUOTED_IDS = 20


@dataclass(frozen=True)
class Target:
    """A log a delete may name: its id and ``created_at``; ``keep`` = never delete it."""

    log_id: str
    created_at: dt.datetime
    keep: bool = False


def sample(ids: Iterable[str], total: int | None = None) -> str:
    """``'a', 'b' ... and N more`` for an error message."""
    listed = list(itertools.islice(ids, MAX_QUOTED_IDS))
    count = len(listed) if total is None else total
    text = ", ".join(repr(i) for i in listed)
    return text + (f" ... and {count - len(listed)} more" if count > len(listed) else "")


def listed_ids(
    client: AIGatewayClient,
    gateway: str,
    filters: list[Filter],
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> Iterator[Target]:
    """The logs matching now, by keyset walk (ceil(N/50) requests), checked to lie in the window.

    :raises AIGatewayUnsafeDeleteError: the API returned a log outside ``[start, end)``: it did
        not apply the ``created_at`` filter, so no delete may rely on it.
    """
    for row in client.iter_logs(gateway, filters=filters, start=start, end=end):
        created = parse_created_at(str(row.get("created_at")))
        if (start is not None and created < start) or (end is not None and created >= end):
            raise AIGatewayUnsafeDeleteError(
                f"The API did not apply the created_at filter: listing [{_fmt(start)}, {_fmt(end)}) returned log "
                f"{row.get('id')!r} created at {row.get('created_at')}. Nothing more is deleted"
            )
        yield Target(str(row.get("id")), created)


def _fmt(value: dt.datetime | None) -> str:
    return format_time(value) if value is not None else "-"


@dataclass
class ConfinedDelete:
    """Delete named logs of one gateway, every DELETE confined by ids, slice, window and filters.

    :param client: the API client.
    :param gateway: the gateway.
    :param filters: the caller's filters (sent with every DELETE, too).
    :param start: window start (inclusive) or None.
    :param end: window end (exclusive) or None.
    :param limit: most ids per DELETE (1-10,000; the URL length caps it at about 320).
    :param logger: where progress goes (the task's logger).
    """

    client: AIGatewayClient
    gateway: str
    filters: list[Filter]
    start: dt.datetime | None
    end: dt.datetime | None
    limit: int = field(default=MAX_DELETE_LIMIT, kw_only=True)
    logger: Any = field(default=log, kw_only=True)
    #: DELETE requests sent, and ids named in them.
    calls: int = field(default=0, init=False)
    named: int = field(default=0, init=False)

    # -------------------------------------------------------------------------- the run

    def run(self, targets: Iterable[Target]) -> None:
        """Delete every target not marked ``keep``, in the given (``created_at``) order."""
        stream = self._in_scope(iter(targets))
        canary, low, rest = self._pick_canary(stream)
        if canary:
            self._canary(canary, low)
        for batch in self._batches(rest):
            self._send(batch, batch[0].created_at)

    def _in_scope(self, targets: Iterator[Target]) -> Iterator[Target]:
        """The targets inside the window (no DELETE of this scope could match the others)."""
        for target in targets:
            if (self.start is None or target.created_at >= self.start) and (
                self.end is None or target.created_at < self.end
            ):
                yield target

    def _pick_canary(self, stream: Iterator[Target]) -> tuple[list[Target], dt.datetime, Iterator[Target]]:
        """The canary's named targets, its slice start, and the stream without them.

        Named are up to CANARY_SIZE deletable logs created after the first deletable one, in one
        run without a kept log; the first one (and its instant) stays unnamed inside the slice.
        """
        size = min(CANARY_SIZE, self.limit)
        seen: list[Target] = []
        first: Target | None = None
        later: list[Target] = []
        for target in stream:
            seen.append(target)
            if target.keep:
                if first is None:
                    continue
                break
            if first is None:
                first = target
                continue
            if target.created_at < seen[-2].created_at:
                break  # out of order: the slice would not be tight
            if target.created_at > first.created_at:
                later.append(target)
                if len(later) >= size:
                    break
        if first is None:
            return [], dt.datetime.min, iter(seen)
        if not later:  # one instant only (or one log): name what there is
            later = [t for t in seen if not t.keep and t.created_at == first.created_at][:size]
        named = {id(t) for t in later}
        return later, first.created_at, itertools.chain((t for t in seen if id(t) not in named), stream)

    def _batches(self, stream: Iterator[Target]) -> Iterator[list[Target]]:
        """Runs of deletable targets in ascending order, cut at kept logs, the limit and the URL size."""
        batch: list[Target] = []
        size = 0
        for target in stream:
            if target.keep:
                if batch:
                    yield batch
                batch, size = [], 0
                continue
            cost = len(target.log_id) + 7  # "<id>", quoted and escaped, and a comma
            if batch and (
                len(batch) >= self.limit
                or size + cost > MAX_DELETE_ID_CHARS
                or target.created_at < batch[-1].created_at
            ):
                yield batch
                batch, size = [], 0
            batch.append(target)
            size += cost
        if batch:
            yield batch

    # -------------------------------------------------------------------------- requests

    def _send(self, batch: list[Target], low: dt.datetime) -> dt.datetime:
        """One DELETE naming ``batch``, confined to ``[low, last of batch]``; returns the slice end."""
        high = batch[-1].created_at + CREATED_AT_RESOLUTION
        ids = [t.log_id for t in batch]
        self.client.delete_logs(
            self.gateway,
            filters=[*self.filters, {"key": "id", "operator": "eq", "value": ids}],
            start=low,
            end=high,
            limit=len(ids),
            order_by="created_at",
            order_by_direction="asc",
        )
        self.calls += 1
        self.named += len(ids)
        return high

    def _slice_state(self, low: dt.datetime, high: dt.datetime) -> tuple[set[str], int]:
        """The ids of the slice's matching logs (listed), and how many logs it holds in all.

        The total is a count without the caller's filters: if the API ignored those too, a
        DELETE could reach non-matching logs, which the listing of matching ones would not show.
        """
        listed = {
            str(row.get("id")) for row in self.client.iter_logs(self.gateway, filters=self.filters, start=low, end=high)
        }
        everything = self.client.count_logs(self.gateway, start=low, end=high) if self.filters else len(listed)
        return listed, everything

    def _canary(self, named: list[Target], low: dt.datetime) -> None:
        """Send the canary DELETE and check its slice by listing; stop unless exactly the named went.

        A DELETE removes at most ``limit`` = len(named) logs. When more than that left the slice,
        something else removed them meanwhile (retention deleting the gateway's oldest logs, which
        an archive window often holds, or another client): that is logged, not blamed on the API.
        """
        high = named[-1].created_at + CREATED_AT_RESOLUTION
        before, total_before = self._slice_state(low, high)
        self._send(named, low)
        after, total_after = self._slice_state(low, high)
        names = {t.log_id for t in named}
        where = f"inside its created_at slice [{format_time(low)}, {format_time(high)})"
        left = sorted(names & after)
        if left:
            raise AIGatewayUnsafeDeleteError(
                f"The API did not apply the id filter of a DELETE: after the first, small DELETE (a canary naming "
                f"{len(names)} id(s)), {len(left)} of them are still there ({sample(left)}) and "
                f"{len(before - after - names)} log(s) it did not name are gone, {where}. The delete stopped there; "
                "nothing else was deleted. Do not delete from this gateway until the API applies the id filter"
            )
        vanished = sorted(before - after - names)
        unlisted = (total_before - total_after) - len(before - after)  # gone without matching the filters
        if vanished or unlisted > 0:
            what = (
                f"{len(vanished)} log(s) it did not name ({sample(vanished)})"
                if vanished
                else (f"{unlisted} log(s) that do not match the filters")
            )
            if total_before - total_after <= len(names):
                raise AIGatewayUnsafeDeleteError(
                    f"The API did not apply the id filter of a DELETE: the first, small DELETE (a canary naming "
                    f"{len(names)} id(s)) removed {what}, {where}. The delete stopped there; nothing else was "
                    "deleted. Do not delete from this gateway until the API applies the id filter"
                )
            self.logger.warning(
                "while the canary DELETE ran, %s also left the slice; more went than that DELETE may remove "
                "(limit %d), so something else removed them (retention of the oldest logs, or another client)",
                what,
                len(names),
            )
        self.logger.info("canary DELETE removed exactly its %d named log(s); deleting the rest by id", len(names))


def announce(
    scope: str, deletable: int, matching: int, *, report_only: bool, logger: Any, what: str = "logs", kept: int = 0
) -> bool:
    """Log what a delete is about to do; ``False`` when it ends here (a dry run, or nothing matches).

    :param deletable: logs the delete will name.
    :param matching: logs matching now (kept ones included).
    :param kept: matching logs it will not delete (their bodies were not archived).
    """
    if report_only:
        note = f", {kept} kept (body not archived)" if kept else ""
        logger.info("dry run: %d %s would be deleted (%s)%s", deletable, what, scope, note)
        return False
    if not matching:
        logger.info("no logs match (%s): nothing to delete", scope)
        return False
    logger.info("deleting the %d matching %s (%s) by id", deletable, what, scope)
    return True


def describe(gateway: str, filters: list[Filter], start: dt.datetime | None, end: dt.datetime | None) -> str:
    """``gateway 'g', window [a, b), filters [...]`` for messages."""
    window = f"[{format_time(start) if start else '-inf'}, {format_time(end) if end else 'now'})"
    text = f"gateway {gateway!r}, window {window}"
    if filters:
        text += f", filters {json.dumps(filters)}"
    return text
