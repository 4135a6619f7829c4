"""HTTP client for the Cloudflare AI Gateway Logs API: :class:`AIGatewayClient`, the one way in.

Each endpoint of the Logs API (list, count, get, bodies, patch, delete), its parameters and its
answer live here. What a call is about arrives as a :class:`~airflow_provider_aigw.query.LogQuery`
and what a PATCH sets as a :class:`~airflow_provider_aigw.patch.LogPatch`, both validated where
they were made; the walks over pages are :mod:`~airflow_provider_aigw.listing`'s, and every
request goes through :mod:`~airflow_provider_aigw.transport` (auth, budget, retries, errors).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayInputError
from airflow_provider_aigw.listing import iter_keyset, iter_pages, limited
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import Filter, LogQuery, encode_filters, validate_delete_filter_keys
from airflow_provider_aigw.transport import APITransport
from airflow_provider_aigw.validation import validate_choice, validate_log_id, validate_positive

#: Most logs of one listing page (the API's maximum).
MAX_PER_PAGE = 50
LIST_ORDER_KEYS = frozenset({"created_at", "provider", "model", "model_type", "success", "cached"})
ORDER_DIRECTIONS = ("asc", "desc")
#: Most logs one DELETE removes (the API's maximum and default ``limit``).
MAX_DELETE_LIMIT = 10_000
DELETE_ORDER_KEYS = LIST_ORDER_KEYS | {"cost", "tokens_in", "tokens_out", "duration", "feedback"}
#: Query parameters a listing sets itself (``**params`` cannot).
_LISTING_OWN_PARAMS = frozenset({"page", "per_page", "filters", "start", "end", "search"})
_ENVELOPE_KEYS = frozenset({"success", "result", "errors", "messages"})


def listing_params(order_by: str, order_by_direction: str, per_page: int, search: str | None) -> dict[str, Any]:
    """Validate the ordering and page size of a listing; the query parameters they make."""
    validate_positive(per_page, param="per_page", maximum=MAX_PER_PAGE)
    validate_choice(order_by, LIST_ORDER_KEYS, param="order_by")
    validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
    params: dict[str, Any] = {"order_by": order_by, "order_by_direction": order_by_direction}
    if search:
        params["search"] = search
    return params


def delete_params(
    query: LogQuery,
    *,
    limit: int | None,
    order_by: str | None,
    order_by_direction: str | None,
    allow_unfiltered: bool,
) -> dict[str, Any]:
    """The query parameters of ``DELETE .../logs``, refusing what could delete more than meant.

    Filter keys outside the documented set are refused (the API might ignore them and delete
    more), and so is a search (the DELETE has none); no filters and no window needs
    ``allow_unfiltered`` (the API deletes the oldest logs).
    """
    validate_delete_filter_keys(query.filters)
    if query.search:
        raise AIGatewayInputError(
            "delete_logs takes no search: the DELETE endpoint has none, and would delete every log of the "
            "filters and window"
        )
    query_filters = query.api_filters()
    if not query_filters and not allow_unfiltered:
        raise AIGatewayInputError(
            "delete_logs needs filters or a start/end window: without them the API deletes "
            "the gateway's oldest logs (pass allow_unfiltered=True if that is really meant)"
        )
    params: dict[str, Any] = {}
    if limit is not None:
        params["limit"] = validate_positive(limit, param="limit", maximum=MAX_DELETE_LIMIT)
    if order_by is not None:
        params["order_by"] = validate_choice(order_by, DELETE_ORDER_KEYS, param="order_by")
    if order_by_direction is not None:
        params["order_by_direction"] = validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
    if query_filters:
        params["filters"] = encode_filters(query_filters)
    return params


def unwrap_envelope(body: Any) -> Any:
    """``body["result"]`` when ``body`` is exactly a successful Cloudflare envelope, else ``body``.

    Exactly: a JSON object holding ``success: true`` and ``result``, and besides them at most
    ``errors`` and ``messages``. A stored provider body with other keys is never unwrapped.
    """
    if isinstance(body, dict) and body.get("success") is True and "result" in body and _ENVELOPE_KEYS.issuperset(body):
        return body["result"]
    return body


def decode_body(response: requests.Response) -> Any:
    """A stored request/response body as the API returned it.

    Bodies come as stored (the OpenAPI spec): JSON when JSON, else text (e.g. SSE); or wrapped
    in the Cloudflare envelope (the seed API document), which is taken off.
    """
    content_type = response.headers.get("Content-Type", "")
    if not content_type or "json" in content_type:
        try:
            return unwrap_envelope(response.json())
        except ValueError:
            pass
    return response.text


def _checked_query(query: LogQuery | None) -> LogQuery:
    """``query``, or the query of every log; anything else is refused (e.g. a gateway id passed positionally)."""
    if query is None:
        return LogQuery()
    if not isinstance(query, LogQuery):
        raise AIGatewayInputError(
            f"query must be a LogQuery (LogQuery.of(gateway_id=..., filters=..., start=..., end=...)), "
            f"got {type(query).__name__}"
        )
    return query


def _extra_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Extra query parameters of a listing, refusing those the listing sets itself."""
    own = sorted(set(params) & _LISTING_OWN_PARAMS)
    if own:
        raise AIGatewayInputError(
            f"{own} cannot be passed as extra query parameters of a listing: filters, window and search "
            "go in the LogQuery"
        )
    return dict(params)


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
        """One ``GET .../logs``: the rows and ``result_info`` (the page function of the walks)."""
        path = self._logs_path(gateway_id)
        request_params = dict(params)
        if filters:
            request_params["filters"] = encode_filters(filters)
        body = self._json(self._request("GET", path, params=request_params), "GET", path)
        result = body.get("result") or []
        if not isinstance(result, list):
            raise AIGatewayAPIError(
                f"The API answered a listing with a result that is not a list (GET {path})", method="GET", path=path
            )
        return result, body.get("result_info") or {}

    def iter_logs(
        self,
        query: LogQuery | None = None,
        *,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        per_page: int = MAX_PER_PAGE,
        max_results: int | None = None,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield the logs of ``query`` (default: every log of the default gateway) lazily, page by page.

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

        :param query: the gateway, filters, window and search
            (:meth:`LogQuery.of <airflow_provider_aigw.query.LogQuery.of>`).
        :param max_results: stop after this many logs without fetching further pages.
        :param params: further query parameters of the listing.
        """
        query = _checked_query(query)
        base_params = listing_params(order_by, order_by_direction, per_page, query.search)
        if max_results is not None:
            validate_positive(max_results, param="max_results")
        self._logs_path(query.gateway_id)  # validates the gateway now, not at the first next()
        base_params.update(_extra_params(params))
        fetch_page = functools.partial(self._list_page, query.gateway_id)
        if order_by == "created_at":
            walk = iter_keyset(fetch_page, query, order_by_direction == "desc", per_page, base_params)
        else:
            walk = iter_pages(fetch_page, query, per_page, base_params)
        return limited(walk, max_results)

    def list_logs(self, query: LogQuery | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """All logs of ``query`` as a list (see :meth:`iter_logs` for the arguments)."""
        return list(self.iter_logs(query, **kwargs))

    def count_logs(self, query: LogQuery | None = None, **params: Any) -> int:
        """Number of logs of ``query`` (one request, ``per_page=1``, ``total_count``)."""
        query = _checked_query(query)
        request_params = {**_extra_params(params), "page": 1, "per_page": 1}
        if query.search:
            request_params["search"] = query.search
        _, info = self._list_page(query.gateway_id, query.api_filters(), request_params)
        return self._total(info, query.gateway_id)

    def list_page(
        self,
        query: LogQuery | None = None,
        *,
        order_by: str = "created_at",
        order_by_direction: str = "desc",
        per_page: int = MAX_PER_PAGE,
    ) -> tuple[list[dict[str, Any]], int]:
        """The first page of the logs of ``query`` and how many match in all, in ONE request.

        Defaults to newest first (``order_by_direction="desc"``). Inputs are validated as in
        :meth:`iter_logs`, before the request. Used by the logs sensor and trigger.
        """
        query = _checked_query(query)
        params = {
            **listing_params(order_by, order_by_direction, per_page, query.search),
            "page": 1,
            "per_page": per_page,
        }
        rows, info = self._list_page(query.gateway_id, query.api_filters(), params)
        return rows, self._total(info, query.gateway_id)

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

    def patch_log(self, log_id: str, patch: LogPatch, gateway_id: str | None = None) -> dict[str, Any]:
        """Apply ``patch`` (:meth:`LogPatch.of <airflow_provider_aigw.patch.LogPatch.of>`) to one log.

        :returns: the API's ``result``.
        """
        if not isinstance(patch, LogPatch):
            raise AIGatewayInputError(
                "patch must be a LogPatch (LogPatch.of(feedback=..., score=..., metadata=...)), "
                f"got {type(patch).__name__}"
            )
        path = self._logs_path(gateway_id, validate_log_id(log_id))
        result = self._json(self._request("PATCH", path, json_body=patch.body()), "PATCH", path).get("result")
        return result if isinstance(result, dict) else {}

    # ---------------------------------------------------------------- delete

    def delete_logs(
        self,
        query: LogQuery,
        *,
        limit: int | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        allow_unfiltered: bool = False,
    ) -> None:
        """Delete up to ``limit`` (API default 10,000) logs of ``query`` in one call.

        Irreversible, and the API reports no count. Without filters or window the API
        deletes the gateway's oldest logs, so that needs ``allow_unfiltered=True``. Filter keys
        outside the documented set are refused: the API might ignore them and delete more.
        The API ignores filters it does not apply; for deletes that stay safe then, see
        :mod:`airflow_provider_aigw.deletion`.
        """
        query = _checked_query(query)
        params = delete_params(
            query,
            limit=limit,
            order_by=order_by,
            order_by_direction=order_by_direction,
            allow_unfiltered=allow_unfiltered,
        )
        path = self._logs_path(query.gateway_id)
        self._json(self._request("DELETE", path, params=params), "DELETE", path)

    # -------------------------------------------------------------- checking

    def check_access(self, gateway_id: str | None = None) -> int:
        """One cheap list call proving credentials, account and gateway; returns the log count."""
        return self.count_logs(LogQuery(gateway_id=gateway_id))
