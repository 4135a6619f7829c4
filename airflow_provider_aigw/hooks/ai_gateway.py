"""Hook for the Cloudflare AI Gateway Logs API."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_aigw.bodies import MAX_CONCURRENCY, bounded_map
from airflow_provider_aigw.budget import (
    DEFAULT_BUDGET_PERIOD,
    DEFAULT_BUDGET_REQUESTS,
    DEFAULT_BUDGET_STORAGE,
)
from airflow_provider_aigw.client import (
    _NOT_SET,
    DEFAULT_BASE_URL,
    MAX_PER_PAGE,
    AIGatewayClient,
    build_patch_body,
    clean_credential,
)
from airflow_provider_aigw.compat import BaseHook, connection_form_widgets, mask_secret, ui_field_behaviour
from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayError
from airflow_provider_aigw.timestamps import TimeLike
from airflow_provider_aigw.validation import validate_positive

#: Per-id failures listed in the error of :meth:`AIGatewayHook.patch_logs` before "... and N more".
_MAX_LISTED_FAILURES = 20

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

    Every method takes ``gateway_id=None`` meaning "the hook's, else the connection's".

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
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield matching logs lazily over all pages (keyset walk when ordered by ``created_at``).

        :param filters: filters in the API's shape (a dict or a list of dicts).
        :param start: window start (inclusive), aware datetime or ISO 8601 string.
        :param end: window end (exclusive).
        :param max_results: stop after this many logs without fetching further pages.
        """
        return self.client.iter_logs(
            gateway_id,
            filters=filters,
            start=start,
            end=end,
            order_by=order_by,
            order_by_direction=order_by_direction,
            per_page=per_page,
            search=search,
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
        **params: Any,
    ) -> int:
        """Number of matching logs (one request)."""
        return self.client.count_logs(gateway_id, filters=filters, start=start, end=end, **params)

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
        feedback: Any = _NOT_SET,
        score: Any = _NOT_SET,
        metadata: Any = _NOT_SET,
        gateway_id: str | None = None,
    ) -> dict[str, Any]:
        """Set feedback (-1..1), score (0..100) and/or metadata of one log; ``None`` clears."""
        return self.client.patch_log(log_id, gateway_id, feedback=feedback, score=score, metadata=metadata)

    def patch_logs(
        self,
        log_ids: Sequence[str],
        *,
        feedback: Any = _NOT_SET,
        score: Any = _NOT_SET,
        metadata: Any = _NOT_SET,
        max_concurrency: int = 4,
        gateway_id: str | None = None,
    ) -> int:
        """:meth:`patch_log` for each id, ``max_concurrency`` at a time; returns how many were patched.

        The values are validated before the first request. Every id is attempted; then
        :class:`~airflow_provider_aigw.exceptions.AIGatewayError` names the ids that failed, if any.
        """
        build_patch_body(feedback=feedback, score=score, metadata=metadata)
        validate_positive(max_concurrency, param="max_concurrency", maximum=MAX_CONCURRENCY)

        def patch(log_id: str) -> str | None:
            try:
                self.patch_log(log_id, feedback=feedback, score=score, metadata=metadata, gateway_id=gateway_id)
            except AIGatewayError as err:
                return f"{log_id}: {err}"
            return None

        failed = [err for err in bounded_map(patch, log_ids, concurrency=max_concurrency) if err]
        patched = len(log_ids) - len(failed)
        if failed:
            listed = "; ".join(failed[:_MAX_LISTED_FAILURES])
            more = f" ... and {len(failed) - _MAX_LISTED_FAILURES} more" if len(failed) > _MAX_LISTED_FAILURES else ""
            raise AIGatewayError(
                f"{len(failed)} of {len(log_ids)} patch(es) failed ({patched} succeeded): {listed}{more}"
            )
        return patched

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
    ) -> None:
        """Delete up to ``limit`` matching logs in one call (irreversible; no count returned)."""
        self.client.delete_logs(
            gateway_id,
            filters=filters,
            start=start,
            end=end,
            limit=limit,
            order_by=order_by,
            order_by_direction=order_by_direction,
            allow_unfiltered=allow_unfiltered,
        )
