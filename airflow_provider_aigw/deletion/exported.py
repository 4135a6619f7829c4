"""Delete exactly the exported logs of a manifest, after proving the archive holds them.

:func:`delete_from_manifest` is the whole step the delete operator's ``manifest=`` path takes:
read the manifest, check what else was given against it (window, filters, gateway, account),
then :func:`delete_exported`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_aigw.client import MAX_DELETE_LIMIT, MAX_PER_PAGE, AIGatewayClient
from airflow_provider_aigw.compat import ObjectStoragePath
from airflow_provider_aigw.deletion.confined import ConfinedDelete, Target, announce, listed_ids, sample
from airflow_provider_aigw.exceptions import (
    AIGatewayBodyError,
    AIGatewayError,
    AIGatewayInputError,
    AIGatewayLateLogsError,
    AIGatewayUnsafeDeleteError,
)
from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from airflow_provider_aigw.progress import Progress
from airflow_provider_aigw.query import (
    Filter,
    LogQuery,
    normalize_filters,
    validate_delete_filter_keys,
    validate_window,
)
from airflow_provider_aigw.timestamps import format_time, parse_created_at

__all__ = ["delete_exported", "delete_from_manifest", "load_manifest", "manifest_scope"]

log = logging.getLogger(__name__)


def load_manifest(value: Any) -> dict[str, Any]:
    """The export manifest to delete by: the export task's XCom, a manifest URL or a manifest.

    :raises AIGatewayInputError: not a manifest of an AI Gateway export.
    """
    if not isinstance(value, (Mapping, str, ObjectStoragePath)):
        raise AIGatewayInputError(
            f"manifest must be the export task's XCom, a manifest URL or a manifest, got {type(value).__name__}"
        )
    manifest = read_manifest(value)
    for key in ("gateway_id", "window", "count"):
        if key not in manifest:
            raise AIGatewayInputError(f"manifest has no {key!r}: is it an AI Gateway export manifest?")
    return manifest


def _canonical(filters: list[Filter]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in filters)


def manifest_scope(manifest: Mapping[str, Any], given: LogQuery | None = None) -> LogQuery:
    """The manifest's gateway, filters and window, checked against what was given too (before any request).

    A gateway, start, end or filters ``given`` must equal the manifest's: with a manifest the
    delete covers exactly the export (no filters given means the manifest's, whatever they are).

    :raises AIGatewayInputError: a given value differs from the manifest's, or the manifest's
        window is incomplete.
    """
    own = normalize_filters(manifest.get("filters"), param="manifest filters")
    validate_delete_filter_keys(own, param="manifest filters")
    own_start, own_end = validate_window(manifest["window"]["start"], manifest["window"]["end"])
    if own_start is None or own_end is None:
        raise AIGatewayInputError("the manifest's window has no start or end: is it an AI Gateway export manifest?")
    if given is not None:
        exported = f"[{format_time(own_start)}, {format_time(own_end)})"
        for name, value, mine in (("start", given.start, own_start), ("end", given.end, own_end)):
            if value is not None and value != mine:
                raise AIGatewayInputError(
                    f"{name} {format_time(value)} differs from the manifest's window {exported}: with manifest= "
                    "the delete covers exactly the exported window (pass the same window, or none)"
                )
        if given.filters and _canonical(list(given.filters)) != _canonical(own):
            raise AIGatewayInputError(
                f"filters {json.dumps(list(given.filters))} differ from the manifest's {json.dumps(own)}: with "
                "manifest= the delete covers exactly the exported filters (pass the same filters, or none)"
            )
        if given.gateway_id and given.gateway_id != manifest["gateway_id"]:
            raise AIGatewayInputError(
                f"gateway_id {given.gateway_id!r} differs from the manifest's {manifest['gateway_id']!r}"
            )
        if given.search:
            raise AIGatewayInputError("a delete takes no search: with manifest= it covers exactly the export")
    return LogQuery(manifest["gateway_id"], tuple(own), own_start, own_end)


def delete_from_manifest(client: AIGatewayClient, manifest: Any, query: LogQuery | None = None, **options: Any) -> int:
    """Delete the exported logs of ``manifest`` (XCom, URL or manifest); returns how many.

    :func:`load_manifest`, then :func:`manifest_scope` (a gateway, filters, start or end in
    ``query`` must agree with the manifest), then :func:`delete_exported` on the manifest's
    gateway, window and filters.

    :param options: ``batch_size``, ``dry_run``, ``logger`` and ``source`` of :func:`delete_exported`.
    """
    manifest = load_manifest(manifest)
    return delete_exported(client, manifest, manifest_scope(manifest, query), **options)


def _validate_account(manifest: Mapping[str, Any], account: str, source: str, logger: Any) -> None:
    """Refuse a manifest of another account; warn when it records none (older provider versions)."""
    if "account_id" not in manifest:
        logger.warning(
            "the manifest records no account_id (written by an older provider version); make sure it "
            "comes from account %s",
            account,
        )
    elif manifest["account_id"] != account:
        raise AIGatewayInputError(
            f"the manifest comes from account {manifest['account_id']!r}, but {source} is for account "
            f"{account!r}: refusing to delete"
        )


def _body_failed(record: Mapping[str, Any]) -> bool:
    return record.get("request_body_status") == "failed" or record.get("response_body_status") == "failed"


def delete_exported(
    client: AIGatewayClient,
    manifest: Mapping[str, Any],
    query: LogQuery,
    *,
    batch_size: int = MAX_DELETE_LIMIT,
    dry_run: bool = False,
    logger: Any = log,
    source: str = "the client",
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

    :param query: the manifest's gateway, filters and window (:func:`manifest_scope`).
    :param batch_size: most ids per DELETE.
    :param dry_run: only verify and report what would be deleted; returns that number.
    :param logger: where progress goes (the task's logger).
    :param source: names the client's connection in errors (e.g. ``"connection 'aigw'"``).
    :raises AIGatewayInputError: the manifest comes from another account than the client's.
    :raises AIGatewayLateLogsError: logs that are not in the export match the window.
    :raises AIGatewayUnsafeDeleteError: the API did not apply a filter of a DELETE.
    :raises AIGatewayBodyError: logs whose bodies were not archived were kept.
    """
    _validate_account(manifest, client.account_id, source, logger)
    scope = query.describe()
    window = f"[{format_time(query.start)}, {format_time(query.end)})" if query.start and query.end else scope
    exported = int(manifest["count"])
    matching = client.count_logs(query)
    if matching > exported:
        raise AIGatewayLateLogsError(
            f"refusing to delete: {matching} logs match gateway {query.gateway_id!r} window {window} now, but the "
            f"export wrote {exported}; {matching - exported} arrived late and were never exported. Nothing was "
            "deleted. Re-run the export for this window (it rewrites the same files and manifest), then this delete"
        )
    present, kept_at = _read_archive(manifest, exported)
    kept_ids = set(kept_at)
    sent_before = client.requests_sent
    checking = Progress(
        logger,
        expected=matching,
        requests=lambda: client.requests_sent - sent_before,
        per_page=MAX_PER_PAGE,
        done="checked",
    )
    walk = checking.wrap(listed_ids(client, query))
    now, kept_now = _prove_exported(walk, present, kept_ids, window)
    checking.report()
    deletable = now - kept_now
    if not announce(scope, deletable, now, dry_run=dry_run, logger=logger, what="exported logs", kept=kept_now):
        return deletable if dry_run else 0
    # No DELETE's created_at slice may hold a kept log that is still there.
    protected = [at for log_id, at in kept_at.items() if present[log_id]]
    deleter = ConfinedDelete(
        client, query, batch_size=batch_size, logger=logger, protected=protected, expected=deletable
    )
    # Exported logs that are gone already (retention, an earlier attempt) are not named again.
    deleter.run(
        Target(str(r.get("id")), parse_created_at(str(r["created_at"])), keep=_body_failed(r))
        for r in iter_manifest_records(manifest)
        if present.get(str(r.get("id")))
    )
    deleted = deletable - len(deleter.withheld)
    if client.count_logs(query):
        left = listed_ids(client, query)
        _check_left(left, present, kept_ids, set(deleter.withheld), scope, deleted)
    logger.info("deleted %d logs (%s) in %d DELETE call(s)", deleted, scope, deleter.calls)
    return deleted


def _read_archive(manifest: Mapping[str, Any], exported: int) -> tuple[dict[str, bool], dict[str, dt.datetime]]:
    """Every exported id (mapped to False: not seen matching yet), and those whose body fetch
    failed, mapped to their ``created_at``.

    Reading checks every file against its sha256 and size, and the rows against the manifest's count.
    """
    present: dict[str, bool] = {}
    kept_at: dict[str, dt.datetime] = {}
    rows = 0
    for record in iter_manifest_records(manifest, verify=True):
        rows += 1
        log_id = str(record.get("id"))
        present[log_id] = False
        if _body_failed(record):
            kept_at[log_id] = parse_created_at(str(record["created_at"]))
    if rows != exported:
        raise AIGatewayError(
            f"refusing to delete: the manifest says {exported} logs were exported, but its files hold {rows}. "
            "Nothing was deleted. Re-run the export for this window, then this delete"
        )
    return present, kept_at


def _prove_exported(
    matching: Iterable[Target], present: dict[str, bool], kept_ids: set[str], window: str
) -> tuple[int, int]:
    """Mark the exported logs that match now; returns (matching, kept among them).

    :raises AIGatewayLateLogsError: a matching log is not in the export.
    """
    unknown: list[str] = []
    now = kept_now = 0
    for target in matching:
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
    return now, kept_now


def _check_left(
    left: Iterable[Target], present: dict[str, bool], kept_ids: set[str], withheld: set[str], scope: str, deleted: int
) -> None:
    """Judge the logs still matching after the delete: none may be an exported one it named.

    :raises AIGatewayUnsafeDeleteError: an exported log named by a DELETE is still there.
    :raises AIGatewayLateLogsError: logs that are not in the export match (late arrivals).
    :raises AIGatewayBodyError: logs kept because their bodies were not archived.
    """
    still: list[str] = []
    late: list[str] = []
    kept_left: list[str] = []
    withheld_left: list[str] = []
    for target in left:
        if target.log_id in kept_ids:
            kept_left.append(target.log_id)
        elif target.log_id in withheld:
            withheld_left.append(target.log_id)
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
    if kept_left or withheld_left:
        shared = (
            f" {len(withheld_left)} exported log(s) share a millisecond with a kept one and were left too (no "
            f"DELETE's created_at slice can hold them without it): {sample(withheld_left)}."
            if withheld_left
            else ""
        )
        raise AIGatewayBodyError(
            f"deleted {deleted} exported logs, but kept {len(kept_left)} whose request or response body fetch "
            f"failed during the export, so the gateway holds the only copy: {sample(kept_left)}.{shared} Re-run the "
            "export of this window with include_bodies=True, then this delete"
        )
