"""Deletes that stay safe when the API does not apply a filter.

Cloudflare silently ignores filters it does not apply (live-verified for mis-encoded filters
and unknown parameters), and that DELETE applies ``filters`` at all was never verified live.
So nothing here trusts one filter alone:

* a delete first proves, by listing, which logs it will remove (a keyset walk, by id);
* every DELETE names its ids AND is confined to a tight ``created_at`` slice (first to last id
  of its batch) inside the window, with the caller's filters: if the API ignores the ``id``
  filter, only logs of that slice can go, and the slice was just listed;
* the first DELETE is a small canary: its slice is listed before and after it (and, with
  filters, also counted without them), and unless exactly the named ids are gone the delete
  stops at once. Its named ids are chosen after an unnamed older log of the same slice, so an
  API deleting oldest-first without the ``id`` filter takes that one instead, and is caught.

Residual risk: a log that turns up inside a batch's slice between the listing and that
batch's DELETE could be deleted if the API ignored the ``id`` filter after the canary passed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.calls import MAX_DELETE_LIMIT
from airflow_provider_aigw.exceptions import (
    AIGatewayBodyError,
    AIGatewayError,
    AIGatewayLateLogsError,
    AIGatewayUnsafeDeleteError,
)
from airflow_provider_aigw.export import iter_manifest_records
from airflow_provider_aigw.filters import CREATED_AT_RESOLUTION, Filter, format_time, parse_created_at

if TYPE_CHECKING:
    from airflow_provider_aigw.client import AIGatewayClient

__all__ = [
    "CANARY_SIZE",
    "MAX_DELETE_ID_CHARS",
    "ConfinedDelete",
    "Target",
    "delete_exported",
    "delete_listed",
    "describe",
    "listed_ids",
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

    def __init__(
        self,
        client: AIGatewayClient,
        gateway: str,
        filters: list[Filter],
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        limit: int = MAX_DELETE_LIMIT,
        logger: Any = log,
    ) -> None:
        self.client = client
        self.log = logger
        self.gateway = gateway
        self.filters = filters
        self.start = start
        self.end = end
        self.limit = limit
        #: DELETE requests sent, and ids named in them.
        self.calls = 0
        self.named = 0

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
            self.log.warning(
                "while the canary DELETE ran, %s also left the slice; more went than that DELETE may remove "
                "(limit %d), so something else removed them (retention of the oldest logs, or another client)",
                what,
                len(names),
            )
        self.log.info("canary DELETE removed exactly its %d named log(s); deleting the rest by id", len(names))


def describe(gateway: str, filters: list[Filter], start: dt.datetime | None, end: dt.datetime | None) -> str:
    """``gateway 'g', window [a, b), filters [...]`` for messages."""
    window = f"[{format_time(start) if start else '-inf'}, {format_time(end) if end else 'now'})"
    text = f"gateway {gateway!r}, window {window}"
    if filters:
        text += f", filters {json.dumps(filters)}"
    return text


# ------------------------------------------------------------------------------ the two deletes


def _body_failed(record: Mapping[str, Any]) -> bool:
    return record.get("request_body_status") == "failed" or record.get("response_body_status") == "failed"


def delete_exported(
    client: AIGatewayClient,
    manifest: Mapping[str, Any],
    *,
    gateway: str,
    filters: list[Filter],
    start: dt.datetime,
    end: dt.datetime,
    limit: int = MAX_DELETE_LIMIT,
    report_only: bool = False,
    logger: Any = log,
) -> int:
    """Delete the exported logs of a manifest's window; returns how many matched and were deleted.

    1. The archive's files are checked against the manifest (sha256, size, row count), and one
       count: more logs than exported match -> refuse (nothing deleted).
    2. Sets, not counts: a keyset walk of the window (ceil(N/50) requests) proves that every log
       matching now is in the export, by id; otherwise refuse (nothing deleted).
    3. :class:`ConfinedDelete` of the exported ids that matched, never naming a log whose body
       fetch failed.
    4. A count (and, if logs are left, a walk) of the window: an exported log still there fails
       (the API did not delete by id), a log that is not in the export fails as a late arrival, a
       kept log fails as unarchived. Everything else was deleted.

    :param logger: where progress goes (the task's logger).
    :raises AIGatewayLateLogsError: logs that are not in the export match the window.
    :raises AIGatewayUnsafeDeleteError: the API did not apply a filter of a DELETE.
    :raises AIGatewayBodyError: logs whose bodies were not archived were kept.
    """
    scope = describe(gateway, filters, start, end)
    window = f"[{format_time(start)}, {format_time(end)})"
    exported = int(manifest["count"])
    matching = client.count_logs(gateway, filters=filters, start=start, end=end)
    if matching > exported:
        raise AIGatewayLateLogsError(
            f"refusing to delete: {matching} logs match gateway {gateway!r} window {window} now, but the export "
            f"wrote {exported}; {matching - exported} arrived late and were never exported. Nothing was deleted. "
            "Re-run the export for this window (it rewrites the same files and manifest), then this delete"
        )
    # The archive is checked before anything is deleted: every file against its sha256 and size,
    # and the rows against the manifest's count.
    present: dict[str, bool] = {}  # exported id -> it matches now (set by the walk)
    kept_ids: set[str] = set()
    rows = 0
    for record in iter_manifest_records(manifest, verify=True):
        rows += 1
        log_id = str(record.get("id"))
        present[log_id] = False
        if _body_failed(record):
            kept_ids.add(log_id)
    if rows != exported:
        raise AIGatewayError(
            f"refusing to delete: the manifest says {exported} logs were exported, but its files hold {rows}. "
            "Nothing was deleted. Re-run the export for this window, then this delete"
        )

    unknown: list[str] = []
    now = kept_now = 0
    for target in listed_ids(client, gateway, filters, start, end):
        now += 1
        if target.log_id not in present:
            unknown.append(target.log_id)
            continue
        present[target.log_id] = True
        if target.log_id in kept_ids:
            kept_now += 1
    if unknown:
        raise AIGatewayLateLogsError(
            f"refusing to delete: {len(unknown)} of the {now} logs matching window {window} now are not in the "
            f"export ({sample(unknown)}). Nothing was deleted. Re-run the export for this window, then this delete"
        )
    deletable = now - kept_now
    if report_only:
        logger.info(
            "dry run: %d exported logs would be deleted (%s), %d kept (body not archived)", deletable, scope, kept_now
        )
        return deletable
    if not now:
        logger.info("no logs match (%s): nothing to delete", scope)
        return 0

    logger.info("deleting the %d matching exported logs (%s) by id", deletable, scope)
    deleter = ConfinedDelete(client, gateway, filters, start, end, limit=limit, logger=logger)
    # Exported logs that are gone already (retention, an earlier attempt) are not named again.
    deleter.run(
        Target(str(r.get("id")), parse_created_at(str(r["created_at"])), keep=_body_failed(r))
        for r in iter_manifest_records(manifest)
        if present.get(str(r.get("id")))
    )

    still: list[str] = []
    late: list[str] = []
    kept_left: list[str] = []
    if client.count_logs(gateway, filters=filters, start=start, end=end):
        for target in listed_ids(client, gateway, filters, start, end):
            if target.log_id in kept_ids:
                kept_left.append(target.log_id)
            elif target.log_id in present:
                still.append(target.log_id)
            else:
                late.append(target.log_id)
    if still:
        raise AIGatewayUnsafeDeleteError(
            f"{len(still)} exported log(s) are still there after the DELETE that named them ({sample(still)}): the "
            f"API did not delete by id ({scope})"
        )
    if late:
        raise AIGatewayLateLogsError(
            f"{len(late)} log(s) match ({scope}) that are not in the export ({sample(late)}): they arrived late "
            "or replaced exported logs, and were not deleted; the exported ones were. Re-run the export for this "
            "window (it rewrites the same files), then this delete"
        )
    if kept_left:
        raise AIGatewayBodyError(
            f"deleted {deletable} exported logs, but kept {len(kept_left)} whose request or response body fetch "
            f"failed during the export, so the gateway holds the only copy: {sample(kept_left)}. Re-run the export "
            "of this window with include_bodies=True, then this delete"
        )
    logger.info("deleted %d logs (%s) in %d DELETE call(s)", deletable, scope, deleter.calls)
    return deletable


def delete_listed(
    client: AIGatewayClient,
    *,
    gateway: str,
    filters: list[Filter],
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int = MAX_DELETE_LIMIT,
    allow_match_all: bool = False,
    report_only: bool = False,
    logger: Any = log,
) -> int:
    """Delete the logs matching filters and window, by listed id; returns how many were named.

    When filters other than ``created_at`` are given they must narrow: if they match as many logs
    as the window alone, the API may have ignored one, and the delete is refused unless
    ``allow_match_all``. The matching logs are then listed (keyset walk) and deleted by
    :class:`ConfinedDelete` as they are listed, so the set deleted is the set listed.

    :param logger: where progress goes (the task's logger).
    :raises AIGatewayUnsafeDeleteError: the filters do not narrow the window, or the API did not
        apply a filter of a DELETE.
    """
    scope = describe(gateway, filters, start, end)
    matching = client.count_logs(gateway, filters=filters, start=start, end=end)
    narrowing = [f for f in filters if f["key"] != "created_at"]
    if narrowing and matching and not allow_match_all:
        window_only = client.count_logs(
            gateway, filters=[f for f in filters if f["key"] == "created_at"], start=start, end=end
        )
        if matching >= window_only:
            raise AIGatewayUnsafeDeleteError(
                f"refusing to delete: the filters {json.dumps(narrowing)} match {matching} logs, as many as the "
                f"window alone ({window_only}). The API may have ignored a filter (Cloudflare ignores filters "
                "it does not apply, without an error), and the DELETE would then take every log of the window. "
                "If the filters really match every log, pass allow_match_all=True. Nothing was deleted"
            )
    if report_only:
        logger.info("dry run: %d logs would be deleted (%s)", matching, scope)
        return matching
    if not matching:
        logger.info("no logs match (%s): nothing to delete", scope)
        return 0
    logger.info("deleting the %d matching logs (%s) by listed id", matching, scope)
    deleter = ConfinedDelete(client, gateway, filters, start, end, limit=limit, logger=logger)
    deleter.run(listed_ids(client, gateway, filters, start, end))
    left = client.count_logs(gateway, filters=filters, start=start, end=end)
    if left:
        logger.warning(
            "%d log(s) match now that were not listed when the delete walked the window (they arrived "
            "meanwhile); they were not deleted",
            left,
        )
    logger.info("deleted %d logs (%s) in %d DELETE call(s)", deleter.named, scope, deleter.calls)
    return deleter.named
