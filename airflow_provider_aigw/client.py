"""HTTP client for the Cloudflare AI Gateway Logs API: :class:`AIGatewayClient`, the one way in.

The client is split by concern, imports pointing only downwards:

- :mod:`~airflow_provider_aigw.transport`: the one HTTP path (auth, URLs, budget, retries, errors);
- :mod:`~airflow_provider_aigw.budget`: the request budget;
- :mod:`~airflow_provider_aigw.listing`: the listing walks, fed a page-fetching function;
- :mod:`~airflow_provider_aigw.calls`: inputs and answers of single-log calls and the delete;
- :mod:`~airflow_provider_aigw.query`: filters and ``created_at`` windows;
- :mod:`~airflow_provider_aigw.timestamps`: instants (user times, ``created_at``);
- :mod:`~airflow_provider_aigw.validation`: one validator per kind of value.

The names other modules import from here stay importable from here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_aigw.budget import (
    DEFAULT_BUDGET_PERIOD,
    DEFAULT_BUDGET_REQUESTS,
    DEFAULT_BUDGET_STORAGE,
    RequestBudget,
)
from airflow_provider_aigw.calls import (
    _NOT_SET,
    DELETE_ORDER_KEYS,
    MAX_DELETE_LIMIT,
    PATCH_FIELDS,
    build_patch_body,
    decode_body,
    delete_query,
    patch_values,
    unwrap_envelope,
)
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayInputError
from airflow_provider_aigw.listing import (
    LIST_ORDER_KEYS,
    MAX_FILTERS_QUERY_CHARS,
    MAX_PER_PAGE,
    ORDER_DIRECTIONS,
    iter_keyset,
    iter_pages,
    limited,
    listing_params,
)
from airflow_provider_aigw.query import Filter, encode_filters, normalize_filters, validate_window, window_filters
from airflow_provider_aigw.timestamps import TimeLike
from airflow_provider_aigw.transport import DEFAULT_BASE_URL, APITransport, clean_credential
from airflow_provider_aigw.validation import validate_log_id, validate_positive

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_BUDGET_PERIOD",
    "DEFAULT_BUDGET_REQUESTS",
    "DEFAULT_BUDGET_STORAGE",
    "DELETE_ORDER_KEYS",
    "LIST_ORDER_KEYS",
    "MAX_DELETE_LIMIT",
    "MAX_FILTERS_QUERY_CHARS",
    "MAX_PER_PAGE",
    "ORDER_DIRECTIONS",
    "PATCH_FIELDS",
    "_NOT_SET",
    "AIGatewayClient",
    "RequestBudget",
    "build_patch_body",
    "clean_credential",
    "patch_values",
    "unwrap_envelope",
]


class AIGatewayClient(APITransport):
    """Client for one Cloudflare account's AI Gateway Logs API.

    .. seealso::
        Its settings are the connection's extras (:doc:`/connections`); the request budget: :doc:`/budget`.

    :param account_id: Cloudflare account id (32 hex characters).
    :param api_token: API token, sent as ``Authorization: Bearer``.
    :param email: account e-mail for Global API Key auth (with ``api_key``).
    :param api_key: Global API Key (with ``email``).
    :param base_url: API base URL; plain ``http://`` is allowed only for loopback hosts.
    :param gateway_id: default gateway for calls that do not name one.
    :param timeout: per-request timeout in seconds.
    :param max_retries: retries of a transient failure (429, 5xx, timeout, dropped
        connection) before giving up; 4xx other than 429 are never retried.
    :param retry_deadline: seconds after which a call stops retrying, whatever is left
        of ``max_retries`` (Cloudflare's lock-out lasts up to 5 minutes).
    :param backoff_base: first backoff in seconds; doubles per retry, with jitter.
    :param backoff_max: cap of one backoff in seconds.
    :param budget: request budget to use; by default the one in ``budget_storage`` shared by
        every client with these credentials and base URL.
    :param budget_requests: requests allowed per ``budget_period`` (when ``budget`` is not given).
    :param budget_period: budget period in seconds (when ``budget`` is not given).
    :param budget_storage: where the budget lives (when ``budget`` is not given): ``memory://``
        (one per process) or ``redis://host:port/db`` / ``rediss://...`` (one for every process
        and worker using that Redis; needs the ``redis`` extra).
    :param verify_ssl: verify TLS certificates (turning it off logs a warning).
    :param source: where the settings came from, for error messages (e.g. a conn id).
    """

    def __repr__(self) -> str:
        return (
            f"AIGatewayClient(account_id={self.account_id!r}, gateway_id={self.gateway_id!r}, "
            f"base_url={self.base_url!r})"
        )

    # ---------------------------------------------------------------- listing

    def _list_page(
        self, gateway_id: str | None, filters: list[Filter], params: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        path = self._logs_path(gateway_id)
        query = dict(params)
        if filters:
            query["filters"] = encode_filters(filters)
        body = self._json(self._request("GET", path, params=query), "GET", path)
        result = body.get("result") or []
        if not isinstance(result, list):
            raise AIGatewayAPIError(
                f"The API answered a listing with a result that is not a list (GET {path})", method="GET", path=path
            )
        return result, body.get("result_info") or {}

    def iter_logs(
        self,
        gateway_id: str | None = None,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        per_page: int = MAX_PER_PAGE,
        search: str | None = None,
        max_results: int | None = None,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield matching logs lazily, page by page.

        Ordered by ``created_at`` (the default), the walk is a keyset walk: each request
        starts at the last ``created_at`` seen and excludes the ids already seen at that
        instant, so logs inserted or deleted meanwhile never make it skip or repeat a log
        that exists throughout, and no order is assumed among logs sharing a millisecond.
        Every walk ends on a short or empty page, never on ``result_info.total_count``:
        N logs cost ceil(N / per_page) requests, one more (the empty page) when N is a
        multiple of ``per_page``. Other orders use page numbers and are only stable while
        the gateway is unchanged.
        A page that contradicts the request raises
        :class:`~airflow_provider_aigw.exceptions.AIGatewayListingError` before its rows are
        yielded: a keyset walk that would go backwards or repeat itself, or a row beyond the
        window's far end. More than about 300 logs (UUID ids) in one millisecond raise it too
        (excluding them would pass :data:`~airflow_provider_aigw.listing.MAX_FILTERS_QUERY_CHARS`).
        All inputs are validated before the first request.
        """
        user_filters = normalize_filters(filters)
        start_dt, end_dt = validate_window(start, end)
        base_params = listing_params(order_by, order_by_direction, per_page, search)
        if max_results is not None:
            validate_positive(max_results, param="max_results")
        self._logs_path(gateway_id)  # validates the gateway id now, not at the first next()
        reserved = sorted(set(params) & {"page", "per_page", "filters", "start", "end"})
        if reserved:
            raise AIGatewayInputError(f"{reserved} cannot be passed as extra query parameters of a listing")
        base_params.update(params)
        fetch_page = functools.partial(self._list_page, gateway_id)
        if order_by == "created_at":
            descending = order_by_direction == "desc"
            walk = iter_keyset(fetch_page, user_filters, start_dt, end_dt, descending, per_page, base_params)
        else:
            walk = iter_pages(fetch_page, user_filters + window_filters(start_dt, end_dt), per_page, base_params)
        return limited(walk, max_results)

    def list_logs(self, gateway_id: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """All matching logs as a list (see :meth:`iter_logs` for the arguments)."""
        return list(self.iter_logs(gateway_id, **kwargs))

    def count_logs(
        self,
        gateway_id: str | None = None,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        **params: Any,
    ) -> int:
        """Number of matching logs (one request, ``per_page=1``, ``total_count``)."""
        query_filters = normalize_filters(filters) + window_filters(start, end)
        _, info = self._list_page(gateway_id, query_filters, {**params, "page": 1, "per_page": 1})
        return self._total(info, gateway_id)

    def list_page(
        self,
        gateway_id: str | None = None,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        order_by: str = "created_at",
        order_by_direction: str = "desc",
        per_page: int = MAX_PER_PAGE,
        search: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """The first page of matching logs and how many match in all, in ONE request.

        Defaults to newest first (``order_by_direction="desc"``). Inputs are validated as in
        :meth:`iter_logs`, before the request. Used by the logs sensor and trigger.
        """
        query_filters = normalize_filters(filters) + window_filters(start, end)
        params = {**listing_params(order_by, order_by_direction, per_page, search), "page": 1, "per_page": per_page}
        rows, info = self._list_page(gateway_id, query_filters, params)
        return rows, self._total(info, gateway_id)

    def _total(self, info: Mapping[str, Any], gateway_id: str | None) -> int:
        total = info.get("total_count")
        if not isinstance(total, int):
            path = self._logs_path(gateway_id)
            raise AIGatewayAPIError(
                f"The list response carried no result_info.total_count (GET {path})", method="GET", path=path
            )
        return total

    # ----------------------------------------------------------- single logs

    def get_log(self, log_id: str, gateway_id: str | None = None) -> dict[str, Any]:
        """One log's details (list fields plus request/response heads and sizes)."""
        path = self._logs_path(gateway_id, validate_log_id(log_id))
        result = self._json(self._request("GET", path), "GET", path).get("result")
        return result if isinstance(result, dict) else {}

    def get_log_request(self, log_id: str, gateway_id: str | None = None) -> Any:
        """The stored request body; raises :class:`AIGatewayNotFoundError` when not collected."""
        return self._get_body(log_id, "request", gateway_id)

    def get_log_response(self, log_id: str, gateway_id: str | None = None) -> Any:
        """The stored response body; raises :class:`AIGatewayNotFoundError` when not collected."""
        return self._get_body(log_id, "response", gateway_id)

    def _get_body(self, log_id: str, which: str, gateway_id: str | None) -> Any:
        path = self._logs_path(gateway_id, validate_log_id(log_id), which)
        return decode_body(self._request("GET", path))

    def patch_log(
        self,
        log_id: str,
        gateway_id: str | None = None,
        *,
        feedback: Any = _NOT_SET,
        score: Any = _NOT_SET,
        metadata: Any = _NOT_SET,
    ) -> dict[str, Any]:
        """Set ``feedback`` (-1..1), ``score`` (0..100) and/or ``metadata``; ``None`` clears a field."""
        body = build_patch_body(feedback=feedback, score=score, metadata=metadata)
        path = self._logs_path(gateway_id, validate_log_id(log_id))
        result = self._json(self._request("PATCH", path, json_body=body), "PATCH", path).get("result")
        return result if isinstance(result, dict) else {}

    # ---------------------------------------------------------------- delete

    def delete_logs(
        self,
        gateway_id: str | None = None,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        allow_unfiltered: bool = False,
    ) -> None:
        """Delete up to ``limit`` (API default 10,000) matching logs in one call.

        Irreversible, and the API reports no count. Without filters or window the API
        deletes the gateway's oldest logs, so that needs ``allow_unfiltered=True``. Filter keys
        outside the documented set are refused: the API might ignore them and delete more.
        The API ignores filters it does not apply; for deletes that stay safe then, see
        :mod:`airflow_provider_aigw.deletion`.
        """
        query = delete_query(
            filters,
            start,
            end,
            limit=limit,
            order_by=order_by,
            order_by_direction=order_by_direction,
            allow_unfiltered=allow_unfiltered,
        )
        path = self._logs_path(gateway_id)
        self._json(self._request("DELETE", path, params=query), "DELETE", path)

    # -------------------------------------------------------------- checking

    def check_access(self, gateway_id: str | None = None) -> int:
        """One cheap list call proving credentials, account and gateway; returns the log count."""
        return self.count_logs(gateway_id)
