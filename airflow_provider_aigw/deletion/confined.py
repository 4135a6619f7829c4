"""The confined DELETE: named ids inside a tight ``created_at`` slice, led by a checked canary.

Both deletes (:mod:`.listed` and :mod:`.exported`) list the logs they will remove and hand
them to :class:`ConfinedDelete` (see the package docstring for why).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_aigw.client import MAX_DELETE_LIMIT, AIGatewayClient
from airflow_provider_aigw.exceptions import AIGatewayUnsafeDeleteError, AIGatewayURLTooLongError
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.timestamps import CREATED_AT_RESOLUTION, format_bound, format_time, parse_created_at

__all__ = [
    "CANARY_SIZE",
    "MAX_DELETE_ID_CHARS",
    "MAX_QUOTED_IDS",
    "ConfinedDelete",
    "Target",
    "announce",
    "listed_ids",
    "sample",
]

log = logging.getLogger(__name__)

#: Size of the ``id`` filter of one DELETE on the wire (about 320 UUIDs), so that its URL stays
#: under the client's cap (:data:`~airflow_provider_aigw.transport.MAX_URL_CHARS`, 16,000
#: characters of path and query); after a 414 the delete sends smaller batches.
MAX_DELETE_ID_CHARS = 14_000
#: Ids named by the first DELETE, the canary checked by listing (two unnamed logs go around them).
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


def listed_ids(client: AIGatewayClient, query: LogQuery) -> Iterator[Target]:
    """The logs of ``query`` now, by keyset walk (ceil(N/50) requests), checked to lie in its window.

    :raises AIGatewayUnsafeDeleteError: the API returned a log outside ``[start, end)``: it did
        not apply the ``created_at`` filter, so no delete may rely on it.
    """
    start, end = query.start, query.end
    for row in client.iter_logs(query):
        created = parse_created_at(str(row.get("created_at")))
        if (start is not None and created < start) or (end is not None and created >= end):
            raise AIGatewayUnsafeDeleteError(
                "The API did not apply the created_at filter: listing "
                f"[{format_bound(start)}, {format_bound(end)}) returned log {row.get('id')!r} created at "
                f"{row.get('created_at')}. Nothing more is deleted"
            )
        yield Target(str(row.get("id")), created)


@dataclass
class ConfinedDelete:
    """Delete named logs of one gateway, every DELETE confined by ids, slice, window and filters.

    No DELETE's ``created_at`` slice holds a protected log (``keep``, or an instant in
    ``protected``): batches are cut around them, and a deletable log sharing a protected log's
    millisecond is never named (it is left, in :attr:`withheld`). The first DELETE is a canary
    with unnamed logs of its slice around its named ones and a ``limit`` covering them all: a
    DELETE that ignores the ``id`` filter takes an unnamed one in any order, and is caught. On a
    414 a batch is halved before any part of it is sent again.

    :param client: the API client.
    :param query: the gateway, the caller's filters (sent with every DELETE, too) and window.
    :param batch_size: most ids per DELETE (1-10,000; the URL length caps it at about 320).
    :param logger: where progress goes (the task's logger).
    :param protected: ``created_at`` instants of logs no DELETE's slice may hold.
    :param expected: how many logs the run will name, for the error of a delete that stops midway.
    """

    client: AIGatewayClient
    query: LogQuery
    batch_size: int = field(default=MAX_DELETE_LIMIT, kw_only=True)
    logger: Any = field(default=log, kw_only=True)
    protected: Iterable[dt.datetime] = field(default=(), kw_only=True)
    expected: int | None = field(default=None, kw_only=True)
    #: DELETE requests sent (answered 2xx), and ids named in them.
    calls: int = field(default=0, init=False)
    named: int = field(default=0, init=False)
    #: Deletable ids never named: they share a millisecond with a protected log.
    withheld: list[str] = field(default_factory=list, init=False)
    _instants: list[dt.datetime] = field(default_factory=list, init=False, repr=False)
    _id_chars: int = field(default=MAX_DELETE_ID_CHARS, init=False, repr=False)
    _deleted: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._instants = sorted(set(self.protected))

    # -------------------------------------------------------------------------- the run

    def run(self, targets: Iterable[Target]) -> None:
        """Delete every target not marked ``keep``, in the given (``created_at``) order."""
        stream = self._in_scope(iter(targets))
        read: list[Target] = []
        run = self._canary_run(stream, read)
        rest: Iterable[Target] = read
        if run:
            self._canary(run)
            named = {id(t) for t in _named_of(run)}
            rest = [t for t in read if id(t) not in named]
        for batch in self._batches(itertools.chain(rest, stream)):
            self._delete(batch)
        if self.withheld:
            self.logger.warning(
                "%d deletable log(s) share a millisecond with a kept log and were not deleted (no created_at slice "
                "can hold them without it): %s",
                len(self.withheld),
                sample(self.withheld),
            )

    def _in_scope(self, targets: Iterator[Target]) -> Iterator[Target]:
        """The targets inside the window (no DELETE of this scope could match the others)."""
        for target in targets:
            start, end = self.query.start, self.query.end
            if (start is None or target.created_at >= start) and (end is None or target.created_at < end):
                yield target

    def _protect(self, instant: dt.datetime) -> None:
        if not self._is_protected(instant):
            bisect.insort(self._instants, instant)

    def _is_protected(self, instant: dt.datetime) -> bool:
        at = bisect.bisect_left(self._instants, instant)
        return at < len(self._instants) and self._instants[at] == instant

    def _crosses_protected(self, low: dt.datetime, high: dt.datetime) -> bool:
        """Whether a protected instant lies in ``(low, high]``."""
        at = bisect.bisect_right(self._instants, low)
        return at < len(self._instants) and self._instants[at] <= high

    def _canary_run(self, stream: Iterator[Target], read: list[Target]) -> list[Target]:
        """The canary's logs: a run of CANARY_SIZE + 2 deletable targets in ascending order, no
        protected instant among or between them (else the longest such run); ``read`` gets every
        target read. The first and the last stay unnamed when the run holds three or more."""
        want = min(CANARY_SIZE, self.batch_size) + 2
        run: list[Target] = []
        best: list[Target] = []
        for target in stream:
            read.append(target)
            if target.keep:
                self._protect(target.created_at)
                run = []
                continue
            if self._is_protected(target.created_at):
                run = []
                continue
            if run and (
                target.created_at < run[-1].created_at or self._crosses_protected(run[-1].created_at, target.created_at)
            ):
                run = []
            run.append(target)
            if len(run) > len(best):
                best = list(run)
            if len(run) >= want:
                break
        # A protected instant learnt after a run was picked (a kept log later in the stream) voids it.
        return best if not any(self._is_protected(t.created_at) for t in best) else []

    def _batches(self, stream: Iterable[Target]) -> Iterator[list[Target]]:
        """Runs of deletable targets in ascending order, cut at protected instants, the limit and the
        URL size; a target at a protected instant goes to :attr:`withheld`."""
        batch: list[Target] = []
        size = 0
        for target in stream:
            if target.keep:
                self._protect(target.created_at)
                self.withheld.extend(t.log_id for t in batch if t.created_at == target.created_at)
                batch = [t for t in batch if t.created_at != target.created_at]
                if batch:
                    yield batch
                batch, size = [], 0
                continue
            if self._is_protected(target.created_at):
                self.withheld.append(target.log_id)
                continue
            cost = _id_cost(target)
            if batch and (
                len(batch) >= self.batch_size
                or size + cost > self._id_chars
                or target.created_at < batch[-1].created_at
                or self._crosses_protected(batch[-1].created_at, target.created_at)
            ):
                yield batch
                batch, size = [], 0
            batch.append(target)
            size += cost
        if batch:
            yield batch

    # -------------------------------------------------------------------------- requests

    def _delete(self, batch: list[Target]) -> None:
        """DELETEs naming ``batch``: split into equal parts when its ids are over the current cap.

        A 414 applied nothing: the cap becomes the batch's larger half (for the rest of the run,
        too) and the batch is sent again in halves, each in its own tighter slice; one id refused
        stops the delete.
        """
        chars = sum(_id_cost(t) for t in batch)
        if len(batch) > 1 and chars > self._id_chars:
            size = math.ceil(len(batch) / math.ceil(chars / self._id_chars))
            for at in range(0, len(batch), size):
                self._delete(batch[at : at + size])
            return
        try:
            self._send(batch)
        except AIGatewayURLTooLongError as err:
            if len(batch) == 1:
                raise self._stopped(err, batch) from None
            self._id_chars = min(self._id_chars, sum(_id_cost(t) for t in batch[: math.ceil(len(batch) / 2)]))
            self.logger.warning(
                "a DELETE naming %d ids was refused as too long (HTTP 414); sending it again in halves, and "
                "at most %d characters of ids per DELETE from now on",
                len(batch),
                self._id_chars,
            )
            self._delete(batch)

    def _send(self, batch: list[Target], *, around: list[Target] | None = None) -> None:
        """One DELETE naming ``batch``, confined to the slice from the first to the last log of
        ``around`` (default: the batch), with a ``limit`` of as many logs."""
        around = around or batch
        first = around[0].created_at
        high = around[-1].created_at + CREATED_AT_RESOLUTION
        if self._crosses_protected(first - CREATED_AT_RESOLUTION, around[-1].created_at):
            raise AIGatewayUnsafeDeleteError(  # never reached: the batches are cut around protected logs
                f"a DELETE's created_at slice [{format_time(first)}, {format_time(high)}) holds a kept log; not sent"
            )
        ids = [t.log_id for t in batch]
        named = {"key": "id", "operator": "eq", "value": ids}
        self.client.delete_logs(
            replace(self.query, filters=(*self.query.filters, named), start=first, end=high),
            limit=len(around),
            order_by="created_at",
            order_by_direction="asc",
        )
        self.calls += 1
        self.named += len(ids)
        self._deleted.extend(ids[: MAX_QUOTED_IDS - len(self._deleted)])

    def _stopped(self, err: AIGatewayURLTooLongError, batch: list[Target]) -> AIGatewayURLTooLongError:
        """The error of a delete no DELETE of one id can continue: what was and was not deleted."""
        left = f"{self.expected - self.named}" if self.expected is not None else "the rest"
        return AIGatewayURLTooLongError(
            f"The delete stopped: the API refuses a DELETE naming a single id as too long ({err}). "
            f"{self.named} deleted in {self.calls} DELETE(s) ({sample(self._deleted, self.named) or 'none'}); "
            f"{left} not deleted, among them {sample(t.log_id for t in batch)}. Shorten the filters (they go "
            "with every DELETE), then re-run the delete",
            status=err.status,
            method=err.method,
            path=err.path,
        )

    def _slice_state(self, low: dt.datetime, high: dt.datetime) -> tuple[set[str], int]:
        """The ids of the slice's matching logs (listed), and how many logs it holds in all.

        The total is a count without the caller's filters: if the API ignored those too, a
        DELETE could reach non-matching logs, which the listing of matching ones would not show.
        """
        scope = replace(self.query, start=low, end=high)
        listed = {str(row.get("id")) for row in self.client.iter_logs(scope)}
        everything = self.client.count_logs(replace(scope, filters=())) if self.query.filters else len(listed)
        return listed, everything

    def _canary(self, run: list[Target]) -> None:
        """Send the canary DELETE and check its slice by listing; stop unless exactly the named went.

        The run's first and last logs stay unnamed inside the slice, and the DELETE's ``limit``
        covers the whole run: if the API ignored the ``id`` filter it would take every log of the
        slice, whatever its order, and an unnamed one would be gone. When more left the slice than
        that, but only the oldest unnamed one and nothing older is left in the gateway, retention
        (which deletes the gateway's oldest logs, often an archive window's) removed it: that is
        logged, not blamed on the API. A slice holding a log that is not in the run is not sent.
        """
        named = _named_of(run)
        low = run[0].created_at
        high = run[-1].created_at + CREATED_AT_RESOLUTION
        where = f"inside its created_at slice [{format_time(low)}, {format_time(high)})"
        names = {t.log_id for t in named}
        before, total_before = self._slice_state(low, high)
        unknown = sorted(before - {t.log_id for t in run})
        if unknown:
            raise AIGatewayUnsafeDeleteError(
                f"{len(unknown)} log(s) that the delete did not list turned up {where} ({sample(unknown)}): a first "
                "DELETE there could not be proven safe and was not sent. Nothing was deleted; re-run the delete"
            )
        if len(run) < 3:
            self.logger.warning(
                "no three deletable logs lie next to each other (kept logs between them): the canary cannot prove "
                "that the API applies the id filter; every DELETE's slice holds only logs listed to be deleted"
            )
        try:
            self._send(named, around=run)
        except AIGatewayURLTooLongError as err:
            raise self._stopped(err, named) from None
        after, total_after = self._slice_state(low, high)
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
            if not self._retention_took(run, set(vanished), after):
                raise AIGatewayUnsafeDeleteError(
                    f"The API did not apply the id filter of a DELETE: the first, small DELETE (a canary naming "
                    f"{len(names)} id(s)) removed {what}, {where}. The delete stopped there; nothing else was "
                    "deleted. Do not delete from this gateway until the API applies the id filter"
                )
            self.logger.warning(
                "while the canary DELETE ran, %s also left the slice: only its oldest unnamed log, and no older log is "
                "left in the gateway, so something else removed them (retention of the oldest logs, or another client)",
                what,
            )
        self.logger.info("canary DELETE removed exactly its %d named log(s); deleting the rest by id", len(names))

    def _retention_took(self, run: list[Target], vanished: set[str], after: set[str]) -> bool:
        """Whether retention explains the unnamed logs gone: only the run's oldest one went, its newest
        is still there (an id-less DELETE takes it too), and no log older than the slice is left."""
        if len(run) < 3 or run[-1].log_id not in after or not vanished <= {run[0].log_id}:
            return False
        return self.client.count_logs(LogQuery(gateway_id=self.query.gateway_id, end=run[0].created_at)) == 0


def _named_of(run: list[Target]) -> list[Target]:
    """The canary's named logs: all but the first and the last of its run (of a shorter run, the last)."""
    return run[1:-1] if len(run) > 2 else run[-1:]


def _id_cost(target: Target) -> int:
    """Characters an id takes in a DELETE's URL: ``"<id>",`` with the quotes escaped."""
    return len(target.log_id) + 7


def announce(
    scope: str, deletable: int, matching: int, *, dry_run: bool, logger: Any, what: str = "logs", kept: int = 0
) -> bool:
    """Log what a delete is about to do; ``False`` when it ends here (a dry run, or nothing matches).

    :param deletable: logs the delete will name.
    :param matching: logs matching now (kept ones included).
    :param kept: matching logs it will not delete (their bodies were not archived).
    """
    if dry_run:
        note = f", {kept} kept (body not archived)" if kept else ""
        logger.info("dry run: %d %s would be deleted (%s)%s", deletable, what, scope, note)
        return False
    if not matching:
        logger.info("no logs match (%s): nothing to delete", scope)
        return False
    logger.info("deleting the %d matching %s (%s) by id", deletable, what, scope)
    return True
