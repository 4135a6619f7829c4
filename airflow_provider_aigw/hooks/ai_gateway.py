"""Hook for the Cloudflare AI Gateway Logs API."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_aigw.budget import (
    DEFAULT_BUDGET_PERIOD,
    DEFAULT_BUDGET_REQUESTS,
    DEFAULT_BUDGET_STORAGE,
)
from airflow_provider_aigw.client import MAX_DELETE_LIMIT, MAX_PER_PAGE, AIGatewayClient
from airflow_provider_aigw.compat import BaseHook, connection_form_widgets, mask_secret, ui_field_behaviour
from airflow_provider_aigw.concurrency import MAX_CONCURRENCY, bounded_map
from airflow_provider_aigw.deletion import delete_from_manifest, delete_listed
from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export.run import (
    DEFAULT_SETTLE_LAG,
    ExportRun,
    export_window,
    run_export,
)
from airflow_provider_aigw.logpush.run import LogpushImport, import_logpush
from airflow_provider_aigw.patch import UNSET, LogPatch
from airflow_provider_aigw.query import Filter, LogQuery
from airflow_provider_aigw.timestamps import TimeLike, format_time
from airflow_provider_aigw.transport import DEFAULT_BASE_URL, clean_credential
from airflow_provider_aigw.validation import validate_duration, validate_gateway_id, validate_positive
from airflow_provider_aigw.watermark import Batch, Watermark, poll_once

log = logging.getLogger(__name__)

#: Per-id failures listed in the error of :meth:`AIGatewayHook.patch_logs` before "... and N more".
_MAX_LISTED_FAILURES = 20
#: Most matches a logs check returns: they come from one page (the API's maximum is 50).
MAX_MATCHES_LIMIT = 50
#: The smallest request timeout / retry budget a logs check gives the client near its deadline.
MIN_REQUEST_BUDGET = 1.0

#: Connection extras the hook reads, with their types and defaults (documented in docs/connections.rst).
CONNECTION_EXTRAS: dict[str, tuple[type, Any]] = {
    "account_id": (str, None),
    "gateway_id": (str, None),
    "timeout": (float, 30.0),
    "max_retries": (int, 10),
    "retry_deadline": (float, 900.0),
    "backoff_base": (float, 1.0),
    "backoff_max": (float, 60.0),
    "budget_requests": (int, DEFAULT_BUDGET_REQUESTS),
    "budget_period": (float, DEFAULT_BUDGET_PERIOD),
    "budget_storage": (str, DEFAULT_BUDGET_STORAGE),
    "verify_ssl": (bool, True),
}


class AIGatewayHook(BaseHook):
    """Interact with the Cloudflare AI Gateway Logs API through an Airflow connection.

    .. seealso::
        The connection, every field and extra: :doc:`/connections`.

    The connection (type ``cloudflare_ai_gateway``): ``password`` is the API token
    (Bearer); if ``login`` is set it is the account e-mail and ``password`` the Global API
    Key. ``host`` optionally overrides the API base URL. ``extra`` holds ``account_id``
    (required), ``gateway_id`` (default gateway) and the tuning knobs ``timeout``,
    ``max_retries``, ``retry_deadline``, ``backoff_base``, ``backoff_max``,
    ``budget_requests``, ``budget_period``, ``budget_storage`` (``memory://`` or a
    ``redis://`` URL for one budget across every worker) and ``verify_ssl``.

    Every API method takes ``gateway_id=None`` meaning "the hook's, else the connection's",
    and the methods that select logs take the same as a validated
    :class:`~airflow_provider_aigw.query.LogQuery` (``query=``). Besides the endpoints it runs
    the loops the tasks share: :meth:`check_logs` (the logs sensor and trigger),
    :meth:`run_export`, :meth:`delete_matching`, :meth:`delete_exported` and :meth:`patch_logs`.

    :param aigw_conn_id: Airflow connection id.
    :param gateway_id: gateway to use when a method is not given one.
    """

    conn_name_attr = "aigw_conn_id"
    default_conn_name = "cloudflare_ai_gateway_default"
    conn_type = "cloudflare_ai_gateway"
    hook_name = "Cloudflare AI Gateway"

    def __init__(self, aigw_conn_id: str = default_conn_name, gateway_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aigw_conn_id = aigw_conn_id
        self.gateway_id = gateway_id

    def __repr__(self) -> str:
        return f"AIGatewayHook(aigw_conn_id={self.aigw_conn_id!r}, gateway_id={self.gateway_id!r})"

    # ----------------------------------------------------------- connection

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow < 3.2 (3.2+ reads it from the provider info)."""
        from airflow_provider_aigw.get_provider_info import UI_FIELD_BEHAVIOUR

        return ui_field_behaviour(UI_FIELD_BEHAVIOUR)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow < 3.2 (3.2+ reads ``conn-fields``)."""
        from airflow_provider_aigw.get_provider_info import CONN_FIELDS

        return connection_form_widgets(CONN_FIELDS)

    def _extras(self, extra: dict[str, Any], source: str) -> dict[str, Any]:
        """Typed extras; URI-form connections deliver every extra as a string."""
        values: dict[str, Any] = {}
        for name, (kind, default) in CONNECTION_EXTRAS.items():
            raw = extra.get(name)
            if raw is None or raw == "":
                values[name] = default
                continue
            try:
                if kind is bool:
                    if isinstance(raw, bool):
                        values[name] = raw
                    elif str(raw).strip().lower() in ("true", "1", "yes", "on"):
                        values[name] = True
                    elif str(raw).strip().lower() in ("false", "0", "no", "off"):
                        values[name] = False
                    else:
                        raise ValueError(raw)
                elif kind is int:
                    if isinstance(raw, bool) or float(raw) != int(float(raw)):
                        raise ValueError(raw)
                    values[name] = int(float(raw))
                elif kind is float:
                    if isinstance(raw, bool):
                        raise ValueError(raw)
                    values[name] = float(raw)
                else:
                    values[name] = str(raw).strip()
            except (TypeError, ValueError):
                raise AIGatewayConfigError(
                    f"extra {name!r} of {source} must be a {kind.__name__}, got {raw!r}"
                ) from None
        return values

    @staticmethod
    def _base_url(host: str | None, port: int | None, schema: str | None) -> str:
        if not host:
            return DEFAULT_BASE_URL
        if "://" in host:
            return host
        url = f"https://{host}"
        if port:
            url += f":{port}"
        if schema:
            url += "/" + schema.strip("/")
        return url

    @cached_property
    def client(self) -> AIGatewayClient:
        """The API client built from the connection (fetched on first use)."""
        return self._make_client(f"connection {self.aigw_conn_id!r}")

    def _make_client(self, source: str) -> AIGatewayClient:
        """Fetch the connection and build a client; ``source`` names it in error messages."""
        conn = self.get_connection(self.aigw_conn_id)
        extra = conn.extra_dejson
        if not isinstance(extra, dict):
            raise AIGatewayConfigError(f"the extra of {source} must be a JSON object")
        values = self._extras(extra, source)
        raw_token = conn.password or None
        if raw_token:
            mask_secret(raw_token)  # also as stored, e.g. with the newline of a file it was read from
        login = clean_credential(conn.login or None, field="login (account e-mail)", source=source)
        secret_field = "password (Global API Key)" if login else "password (API token)"
        token = clean_credential(raw_token, field=secret_field, source=source)
        if token:
            mask_secret(token)
            mask_secret(f"Bearer {token}")
        storage_password = urlsplit(values["budget_storage"]).password
        if storage_password:
            mask_secret(storage_password)
        return AIGatewayClient(
            values["account_id"],
            api_token=None if login else token,
            email=login,
            api_key=token if login else None,
            base_url=self._base_url(conn.host, conn.port, conn.schema),
            gateway_id=self.gateway_id or values["gateway_id"],
            timeout=values["timeout"],
            max_retries=values["max_retries"],
            retry_deadline=values["retry_deadline"],
            backoff_base=values["backoff_base"],
            backoff_max=values["backoff_max"],
            budget_requests=values["budget_requests"],
            budget_period=values["budget_period"],
            budget_storage=values["budget_storage"],
            verify_ssl=values["verify_ssl"],
            source=source,
        )

    def get_conn(self) -> AIGatewayClient:
        """Return the API client."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Check credentials, account and default gateway with one list call.

        Messages say "this connection": the UI and the REST API test a copy of the connection
        under a random id, which would only confuse.
        """
        try:
            client = self._make_client("this connection")
            if not client.gateway_id:
                return (
                    False,
                    "Credentials look well-formed, but set 'gateway_id' in the extra to test them: "
                    "the Logs API has no account-level route to try",
                )
            # Someone is waiting on the UI/CLI: one retry at most, not the task's patience
            # (a client of its own, so the tasks' client keeps its settings).
            client.max_retries = min(client.max_retries, 1)
            client.retry_deadline = min(client.retry_deadline, client.timeout)
            count = client.check_access()
        except AIGatewayError as err:
            return False, str(err)
        except Exception as err:  # the UI shows any failure as a message
            return False, f"{type(err).__name__}: {err}"
        return True, f"Connected: gateway {client.gateway_id!r} holds {count} logs"

    def resolve_gateway_id(self, gateway_id: str | None = None) -> str:
        """The gateway a call goes to: ``gateway_id``, else the hook's, else the connection's.

        Builds the client (fetching the connection); sends nothing.

        :raises AIGatewayInputError: no gateway anywhere.
        """
        gateway = gateway_id or self.client.gateway_id
        if not gateway:
            raise AIGatewayInputError(
                f"gateway_id is required: pass gateway_id= or set 'gateway_id' in the extra of "
                f"connection {self.aigw_conn_id!r}"
            )
        return gateway

    def with_gateway(self, query: LogQuery) -> LogQuery:
        """``query`` naming its gateway: its own, else :meth:`resolve_gateway_id`'s."""
        return query if query.gateway_id else query.with_gateway(self.resolve_gateway_id())

    @staticmethod
    def _query(
        query: LogQuery | None,
        *,
        gateway_id: str | None = None,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        search: str | None = None,
    ) -> LogQuery:
        """The :class:`~airflow_provider_aigw.query.LogQuery` of a call: ``query``, or one made of the parts.

        :raises AIGatewayInputError: a part is invalid, or given next to ``query`` (a ``gateway_id``
            may fill a query that names none).
        """
        if query is None:
            return LogQuery.of(gateway_id=gateway_id, filters=filters, start=start, end=end, search=search)
        if not isinstance(query, LogQuery):
            raise AIGatewayInputError(f"query must be a LogQuery, got {type(query).__name__}")
        parts = {"filters": filters, "start": start, "end": end, "search": search}
        given = sorted(name for name, value in parts.items() if value is not None)
        if given or (gateway_id and query.gateway_id and gateway_id != query.gateway_id):
            raise AIGatewayInputError(f"pass query= or {given or ['gateway_id']}, not both")
        return query.with_gateway(gateway_id)

    @staticmethod
    def _patch(patch: LogPatch | None, *, feedback: Any, score: Any, metadata: Any) -> LogPatch:
        """The :class:`~airflow_provider_aigw.patch.LogPatch` of a call: ``patch``, or one made of the fields."""
        if patch is None:
            return LogPatch.of(feedback=feedback, score=score, metadata=metadata)
        if not isinstance(patch, LogPatch):
            raise AIGatewayInputError(f"patch must be a LogPatch, got {type(patch).__name__}")
        if any(value is not UNSET for value in (feedback, score, metadata)):
            raise AIGatewayInputError("pass patch= or feedback/score/metadata, not both")
        return patch

    # ----------------------------------------------------------------- API

    def iter_logs(
        self,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        per_page: int = MAX_PER_PAGE,
        search: str | None = None,
        max_results: int | None = None,
        gateway_id: str | None = None,
        query: LogQuery | None = None,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield matching logs lazily over all pages (keyset walk when ordered by ``created_at``).

        :param filters: filters in the API's shape (a dict or a list of dicts).
        :param start: window start (inclusive), aware datetime or ISO 8601 string.
        :param end: window end (exclusive).
        :param max_results: stop after this many logs without fetching further pages.
        :param query: the gateway, filters, window and search as one validated
            :class:`~airflow_provider_aigw.query.LogQuery`, in place of those arguments.
        """
        return self.client.iter_logs(
            self._query(query, gateway_id=gateway_id, filters=filters, start=start, end=end, search=search),
            order_by=order_by,
            order_by_direction=order_by_direction,
            per_page=per_page,
            max_results=max_results,
            **params,
        )

    def list_logs(self, **kwargs: Any) -> list[dict[str, Any]]:
        """All matching logs as a list; arguments as :meth:`iter_logs`."""
        return list(self.iter_logs(**kwargs))

    def count_logs(
        self,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        gateway_id: str | None = None,
        query: LogQuery | None = None,
        **params: Any,
    ) -> int:
        """Number of matching logs (one request); ``query`` as in :meth:`iter_logs`."""
        return self.client.count_logs(
            self._query(query, gateway_id=gateway_id, filters=filters, start=start, end=end), **params
        )

    def get_log(self, log_id: str, *, gateway_id: str | None = None) -> dict[str, Any]:
        """One log's details."""
        return self.client.get_log(log_id, gateway_id)

    def get_log_request(self, log_id: str, *, gateway_id: str | None = None) -> Any:
        """The stored request body (JSON-decoded when JSON); 404 when it was not collected."""
        return self.client.get_log_request(log_id, gateway_id)

    def get_log_response(self, log_id: str, *, gateway_id: str | None = None) -> Any:
        """The stored response body (JSON-decoded when JSON); 404 when it was not collected."""
        return self.client.get_log_response(log_id, gateway_id)

    def patch_log(
        self,
        log_id: str,
        *,
        feedback: Any = UNSET,
        score: Any = UNSET,
        metadata: Any = UNSET,
        gateway_id: str | None = None,
        patch: LogPatch | None = None,
    ) -> dict[str, Any]:
        """Set feedback (-1..1), score (0..100) and/or metadata of one log; ``None`` clears.

        :param patch: a :class:`~airflow_provider_aigw.patch.LogPatch` instead of the fields.
        """
        patch = self._patch(patch, feedback=feedback, score=score, metadata=metadata)
        return self.client.patch_log(log_id, patch, gateway_id)

    def delete_logs(
        self,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        allow_unfiltered: bool = False,
        gateway_id: str | None = None,
        query: LogQuery | None = None,
    ) -> None:
        """Delete up to ``limit`` matching logs in ONE call (irreversible; no count returned).

        This is the bare endpoint, which trusts the API to apply every filter; the delete
        operator uses :meth:`delete_matching` and :meth:`delete_exported`, which stay exact when
        it does not.
        """
        self.client.delete_logs(
            self._query(query, gateway_id=gateway_id, filters=filters, start=start, end=end),
            limit=limit,
            order_by=order_by,
            order_by_direction=order_by_direction,
            allow_unfiltered=allow_unfiltered,
        )

    # ------------------------------------------------------ the tasks' loops

    def check_logs(
        self, query: LogQuery, *, min_count: int, max_matches: int, time_left: float | None = None
    ) -> dict[str, Any]:
        """The logs sensor's and trigger's check: the count of matches and the newest ``max_matches``, in ONE request.

        Returns the sensor's XCom value: ``{"count", "min_count", "gateway_id", "start", "end",
        "matches"}`` where ``matches`` holds at most ``max_matches`` logs, newest first (see
        :func:`settled_message` for a settled window's log line).

        :param query: the logs to look for (validated).
        :param min_count: the count the caller waits for (validated with :func:`validate_min_count`);
            only reported back here.
        :param max_matches: newest matches to return (validated with :func:`validate_max_matches`).
        :param time_left: seconds before the caller's deadline: the client's retries and request
            timeout are then capped by it (at least :data:`MIN_REQUEST_BUDGET`), and with no time
            left it makes a single attempt, so that the check ends by ``time_left`` plus at most
            one request's time. Blocking (HTTP); call it off the event loop from async code.
        """
        query = self.with_gateway(query)
        rows, total = _within(self.client, time_left).list_page(
            query, order_by="created_at", order_by_direction="desc", per_page=max(1, max_matches)
        )
        return {
            "count": total,
            "min_count": min_count,
            "gateway_id": query.gateway_id,
            "start": format_time(query.start) if query.start is not None else None,
            "end": format_time(query.end) if query.end is not None else None,
            "matches": rows[:max_matches],
        }

    def run_export(
        self,
        query: LogQuery,
        destination: Any,
        *,
        format: str,
        data_interval: tuple[Any, Any] = (None, None),
        settle_lag: dt.timedelta = DEFAULT_SETTLE_LAG,
        clamp_end: bool = False,
        include_bodies: bool = False,
        body_concurrency: int = 4,
        allow_shrink: bool = False,
        logger: Any = log,
        **writer_options: Any,
    ) -> ExportRun:
        """Export the logs of a window to ``destination``, with this hook's client.

        The window is ``query``'s, else the run's ``data_interval``, and must have ended
        ``settle_lag`` ago (:func:`~airflow_provider_aigw.export.run.export_window`); then
        :func:`~airflow_provider_aigw.export.run.run_export`: count, walk (with bodies), write,
        progress lines and the summary. Nothing is sent before the window and the destination
        are checked.

        :param query: gateway (default the hook's, else the connection's), filters and the window
            (both ends, or neither for the data interval).
        :param destination: storage URL or ``ObjectStoragePath``.
        :param format: ``jsonl``, ``jsonl.gz`` or ``parquet``, as
            :func:`~airflow_provider_aigw.export.formats.validate_format` returns it.
        :param data_interval: the run's ``(data_interval_start, data_interval_end)``.
        :param settle_lag: how long ago the window must have ended.
        :param clamp_end: move a too-recent end back to ``now - settle_lag`` (a warning), not fail.
        :param allow_shrink: replace the window's archive with exactly the logs that match now (by
            default archived logs gone from the gateway are kept: the union).
        :param writer_options: ``partition_by``, ``rows_per_part``, ``bytes_per_part`` and ``owner``
            of :func:`~airflow_provider_aigw.export.writer.export_logs`.
        """
        start, end = export_window(
            query.start, query.end, interval=data_interval, settle_lag=settle_lag, clamp_end=clamp_end, logger=logger
        )
        return run_export(
            self.client,
            self.with_gateway(dataclasses.replace(query, start=start, end=end)),
            destination,
            format=format,
            include_bodies=include_bodies,
            body_concurrency=body_concurrency,
            logger=logger,
            allow_shrink=allow_shrink,
            **writer_options,
        )

    def import_logpush(
        self,
        source: Any,
        destination: Any,
        *,
        key_conn_id: str,
        format: str,
        gateway_id: str | None = None,
        start: Any = None,
        end: Any = None,
        data_interval: tuple[Any, Any] = (None, None),
        settle_lag: dt.timedelta = DEFAULT_SETTLE_LAG,
        clamp_end: bool = False,
        max_workers: int = 1,
        logger: Any = log,
        **writer_options: Any,
    ) -> LogpushImport:
        """Import the Logpush files of a window into an export archive (no Logs API request).

        The window is ``start``/``end``, else the run's ``data_interval``, and must have ended
        ``settle_lag`` ago, as an export's; then
        :func:`~airflow_provider_aigw.logpush.run.import_logpush` with the private key of
        connection ``key_conn_id`` (:meth:`logpush_key`).

        :param source: the Logpush job's destination (URL or ``ObjectStoragePath``).
        :param destination: the archive (URL or ``ObjectStoragePath``).
        :param key_conn_id: the connection holding the private key.
        :param format: ``jsonl``, ``jsonl.gz`` or ``parquet``, as
            :func:`~airflow_provider_aigw.export.formats.validate_format` returns it.
        :param gateway_id: the gateway; default the hook's, else the key connection's
            ``gateway_id`` extra.
        :param max_workers: processes decrypting files.
        :param writer_options: ``partition_by``, ``rows_per_part``, ``bytes_per_part``,
            ``allow_shrink`` and ``owner`` of :func:`~airflow_provider_aigw.export.writer.export_logs`.
        :raises AIGatewayInputError: no window or no gateway.
        :raises AIGatewayConfigError: the key connection holds no usable key.
        """
        window_start, window_end = export_window(
            start, end, interval=data_interval, settle_lag=settle_lag, clamp_end=clamp_end, logger=logger
        )
        pem, passphrase, key_gateway = self.logpush_key(key_conn_id)
        gateway = gateway_id or self.gateway_id or key_gateway
        if not gateway:
            raise AIGatewayInputError(
                "gateway_id is required: pass gateway_id= or set 'gateway_id' in the extra of connection "
                f"{key_conn_id!r}"
            )
        return import_logpush(
            source,
            destination,
            private_pem=pem,
            passphrase=passphrase,
            gateway_id=validate_gateway_id(gateway),
            start=window_start,
            end=window_end,
            format=format,
            max_workers=max_workers,
            logger=logger,
            **writer_options,
        )

    def logpush_key(self, key_conn_id: str) -> tuple[str, str | None, str | None]:
        """``(PEM, passphrase, gateway_id)`` of the Logpush key connection, the secrets masked.

        The PEM is the connection's ``password``; the passphrase of an encrypted PEM is the
        ``passphrase`` extra, else the ``login``; ``gateway_id`` an optional extra.

        :raises AIGatewayConfigError: the connection has no password, or its extra is not an object.
        """
        conn = self.get_connection(key_conn_id)
        pem = conn.password or ""
        extra = conn.extra_dejson
        if not isinstance(extra, dict):
            raise AIGatewayConfigError(f"the extra of connection {key_conn_id!r} must be a JSON object")
        passphrase = extra.get("passphrase") or conn.login or None
        for secret in (pem, passphrase):
            if secret:
                mask_secret(str(secret))
                for line in str(secret).replace("\\n", "\n").splitlines():
                    if len(line) > 8 and "PRIVATE KEY" not in line:
                        mask_secret(line)  # a line of the key, should one be logged alone
        if not pem.strip():
            raise AIGatewayConfigError(
                f"connection {key_conn_id!r} holds no Logpush private key: put the PEM in its password field"
            )
        gateway = extra.get("gateway_id")
        return pem, None if passphrase is None else str(passphrase), str(gateway) if gateway else None

    def delete_matching(
        self,
        query: LogQuery,
        *,
        batch_size: int = MAX_DELETE_LIMIT,
        dry_run: bool = False,
        allow_match_all: bool = False,
        logger: Any = log,
    ) -> int:
        """Delete the logs matching ``query``, by listed id in confined batches; returns how many.

        See :func:`~airflow_provider_aigw.deletion.listed.delete_listed`: filters other than
        ``created_at`` must narrow the window unless ``allow_match_all``.

        :param batch_size: most ids named per DELETE (validated).
        :param dry_run: only count and report what would be deleted; returns that number.
        """
        return delete_listed(
            self.client,
            self.with_gateway(query),
            batch_size=batch_size,
            dry_run=dry_run,
            allow_match_all=allow_match_all,
            logger=logger,
        )

    def delete_exported(
        self,
        manifest: Any,
        query: LogQuery | None = None,
        *,
        batch_size: int = MAX_DELETE_LIMIT,
        dry_run: bool = False,
        logger: Any = log,
    ) -> int:
        """Delete exactly the exported logs of ``manifest`` (XCom, URL or manifest); returns how many.

        See :func:`~airflow_provider_aigw.deletion.exported.delete_from_manifest`: the archive is
        proven to hold every log that matches now before anything is deleted.

        :param query: what the caller gave besides the manifest (gateway, filters, window); each
            part given must equal the manifest's. ``None``: nothing given.
        :param batch_size: most ids named per DELETE (validated).
        :param dry_run: only verify, count and report what would be deleted; returns that number.
        """
        return delete_from_manifest(
            self.client,
            manifest,
            query,
            batch_size=batch_size,
            dry_run=dry_run,
            logger=logger,
            source=f"connection {self.aigw_conn_id!r}",
        )

    def patch_logs(
        self,
        log_ids: Sequence[str],
        patch: LogPatch,
        *,
        max_concurrency: int = 4,
        gateway_id: str | None = None,
    ) -> int:
        """Apply ``patch`` to each log, ``max_concurrency`` at a time; returns how many were patched.

        Every id is attempted; then :class:`~airflow_provider_aigw.exceptions.AIGatewayError`
        names the ids that failed, if any.

        :param patch: what to set, validated (:meth:`LogPatch.of <airflow_provider_aigw.patch.LogPatch.of>`).
        :param max_concurrency: parallel PATCH requests (1-32).
        """
        validate_positive(max_concurrency, param="max_concurrency", maximum=MAX_CONCURRENCY)
        client = self.client

        def patch_one(log_id: str) -> str | None:
            try:
                client.patch_log(log_id, patch, gateway_id)
            except AIGatewayError as err:
                return f"{log_id}: {err}"
            return None

        failed = [err for err in bounded_map(patch_one, log_ids, concurrency=max_concurrency) if err]
        patched = len(log_ids) - len(failed)
        if failed:
            listed = "; ".join(failed[:_MAX_LISTED_FAILURES])
            more = f" ... and {len(failed) - _MAX_LISTED_FAILURES} more" if len(failed) > _MAX_LISTED_FAILURES else ""
            raise AIGatewayError(
                f"{len(failed)} of {len(log_ids)} patch(es) failed ({patched} succeeded): {listed}{more}"
            )
        return patched

    def poll_new_logs(
        self, query: LogQuery, watermark: Watermark, *, overlap: Any, max_batch: int
    ) -> tuple[Batch | None, Watermark]:
        """The event watcher's poll: the logs of ``query`` new since ``watermark``, and the next watermark.

        :func:`~airflow_provider_aigw.watermark.poll_once` over a keyset walk of ``query`` from
        the watermark's re-read start, ``created_at`` ascending, 50 a page: with nothing new, one
        request. Blocking (HTTP); call it off the event loop from async code.

        :param query: the watcher's gateway, filters and search (no window: the watermark sets it).
        :param watermark: what the watcher has emitted so far.
        :param overlap: a ``timedelta`` or seconds re-read behind the newest log emitted.
        :param max_batch: most logs in the batch.
        """
        query = self.with_gateway(query)
        client = self.client

        def list_since(since: dt.datetime, excluded: list[Filter]) -> Iterator[dict[str, Any]]:
            return client.iter_logs(dataclasses.replace(query, filters=(*query.filters, *excluded), start=since))

        return poll_once(list_since, watermark, overlap=overlap, max_batch=max_batch)

    def poll_gateway_changes(
        self, gateway_id: str | None, watermark: Watermark, *, overlap: Any
    ) -> tuple[Batch | None, Watermark]:
        """The shared change detector's poll: the logs of the gateway, whatever they match, new since ``watermark``.

        :meth:`poll_new_logs` of every log of the gateway, one page of new logs at most: with
        nothing new, one request. A full page (a burst) is not walked further: one more request
        lists the newest page and the watermark skips to it
        (:meth:`~airflow_provider_aigw.watermark.Watermark.skipped_to`), so a busy gateway costs
        about two requests a poll, whatever its traffic. The logs skipped were listable before this
        poll ended: the watchers' own polls, which follow its signal, list them. Blocking (HTTP).

        :param gateway_id: the gateway; ``None`` means the hook's, else the connection's.
        :param watermark: what the detector has seen so far.
        :param overlap: a ``timedelta`` or seconds re-read behind the newest log seen.
        """
        everything = LogQuery(gateway_id=self.resolve_gateway_id(gateway_id))
        batch, advanced = self.poll_new_logs(everything, watermark, overlap=overlap, max_batch=MAX_PER_PAGE)
        if batch is None or batch.count < MAX_PER_PAGE:
            return batch, advanced
        newest, _total = self.client.list_page(dataclasses.replace(everything, start=batch.newest))
        return batch, advanced.skipped_to(newest, validate_duration(overlap, param="overlap"))


def validate_min_count(min_count: Any) -> int:
    """The count a logs check waits for: an integer >= 1."""
    return validate_positive(min_count, param="min_count")


def validate_max_matches(max_matches: Any) -> int:
    """How many of the newest matches a logs check returns: an integer from 0 to :data:`MAX_MATCHES_LIMIT`."""
    return validate_positive(max_matches, param="max_matches", maximum=MAX_MATCHES_LIMIT, allow_zero=True)


def settled_message(result: dict[str, Any]) -> str:
    """The log line of a check that succeeds on a settled window with fewer than ``min_count`` logs."""
    return (
        f"window [{result['start']}, {result['end']}) of gateway {result['gateway_id']!r} has settled with "
        f"{result['count']} matching log(s) (min_count={result['min_count']}): no more can arrive, succeeding "
        "(succeed_when_settled)"
    )


def _within(client: AIGatewayClient, time_left: float | None) -> AIGatewayClient:
    """``client`` itself, or with ``time_left`` given a copy whose call ends within it.

    The client may retry a transient failure for up to ``retry_deadline`` (default 15 minutes):
    the copy's retries and request timeout are capped by the time left (at least
    :data:`MIN_REQUEST_BUDGET`), and with no time left it makes a single attempt. The copy
    shares the session and the request budget.
    """
    if time_left is None:
        return client
    budget = max(MIN_REQUEST_BUDGET, time_left)
    limited = copy.copy(client)
    limited.retry_deadline = min(client.retry_deadline, budget)
    limited.timeout = min(client.timeout, budget)
    if time_left <= 0:
        limited.max_retries = 0
    return limited
