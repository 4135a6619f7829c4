"""HTTP client for the Cloudflare AI Gateway Logs API.

The single HTTP code path of the provider: hooks, operators, sensors and the trigger
all go through :meth:`AIGatewayClient._request`, which owns auth, URL building, the
request budget, retries and error mapping. It knows nothing about Airflow connections.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import math
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_aigw import __version__

# The budget lives in its own module; these names stay importable from here.
from airflow_provider_aigw.budget import (
    DEFAULT_BUDGET_PERIOD,
    DEFAULT_BUDGET_REQUESTS,
    DEFAULT_BUDGET_STORAGE,
    Budget,
    shared_budget,
)
from airflow_provider_aigw.budget import RequestBudget as RequestBudget
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayConfigError,
    AIGatewayInputError,
    AIGatewayNotFoundError,
    AIGatewayRateLimitError,
)
from airflow_provider_aigw.filters import (
    CREATED_AT_RESOLUTION,
    Filter,
    TimeLike,
    check_delete_filter_keys,
    created_at_filter,
    encode_filters,
    normalize_filters,
    parse_created_at,
    validate_account_id,
    validate_gateway_id,
    validate_log_id,
    validate_window,
    window_filters,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
MAX_PER_PAGE = 50
MAX_DELETE_LIMIT = 10_000
LIST_ORDER_KEYS = frozenset({"created_at", "provider", "model", "model_type", "success", "cached"})
DELETE_ORDER_KEYS = LIST_ORDER_KEYS | {"cost", "tokens_in", "tokens_out", "duration", "feedback"}
#: Above this many logs sharing one ``created_at``, stop excluding them by id (the URL
#: would grow) and walk that instant by page numbers instead.
MAX_EXCLUDED_IDS = MAX_PER_PAGE
_NOT_SET: Any = object()


class _Transient(Exception):
    """Internal marker: a failed attempt that may be retried."""

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AIGatewayClient:
    """Client for one Cloudflare account's AI Gateway Logs API.

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

    def __init__(
        self,
        account_id: str,
        *,
        api_token: str | None = None,
        email: str | None = None,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        gateway_id: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 10,
        retry_deadline: float = 900.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        budget: Budget | None = None,
        budget_requests: int = DEFAULT_BUDGET_REQUESTS,
        budget_period: float = DEFAULT_BUDGET_PERIOD,
        budget_storage: str = DEFAULT_BUDGET_STORAGE,
        verify_ssl: bool = True,
        source: str = "the client settings",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_id = validate_account_id(account_id, source=source)
        self.gateway_id = validate_gateway_id(gateway_id) if gateway_id else None
        self.base_url = self._check_base_url(base_url, source)
        api_token = clean_credential(api_token, field="api_token", source=source)
        email = clean_credential(email, field="email", source=source)
        api_key = clean_credential(api_key, field="api_key", source=source)
        if api_token:
            auth_headers = {"Authorization": f"Bearer {api_token}"}
            secret = api_token
        elif email and api_key:
            auth_headers = {"X-Auth-Email": email, "X-Auth-Key": api_key}
            secret = api_key
        else:
            raise AIGatewayConfigError(
                f"No credentials in {source}: set an API token (password), or the account "
                "e-mail (login) with the Global API Key (password)"
            )
        for name, value, low in (
            ("timeout", timeout, 0.0),
            ("retry_deadline", retry_deadline, 0.0),
            ("backoff_base", backoff_base, 0.0),
            ("backoff_max", backoff_max, 0.0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= low:
                raise AIGatewayConfigError(f"{name} in {source} must be a positive number, got {value!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise AIGatewayConfigError(f"max_retries in {source} must be an integer >= 0, got {max_retries!r}")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.retry_deadline = float(retry_deadline)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.verify_ssl = verify_ssl
        if not verify_ssl:
            log.warning("TLS certificate verification is OFF for %s (verify_ssl=false)", source)
        # Cloudflare limits per user; the credential fingerprint stands for the user.
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:16]
        self.budget: Budget = budget or shared_budget(
            budget_storage, f"{self.base_url}|{fingerprint}", budget_requests, budget_period, source=source
        )
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._session = session or requests.Session()
        self._session.headers.update(auth_headers)
        self._session.headers["User-Agent"] = f"airflow-provider-aigw/{__version__}"
        self._session.mount("https://", HTTPAdapter(pool_maxsize=32))
        self._session.mount("http://", HTTPAdapter(pool_maxsize=32))
        self._verify: bool | str = verify_ssl
        if session is None:
            # requests re-reads proxies, the CA bundle and ~/.netrc from the environment on every
            # call: about a tenth of the client's CPU per listed log. Read them once, here.
            env = self._session.merge_environment_settings(self.base_url, {}, None, verify_ssl or None, None)
            self._session.proxies.update(env["proxies"])
            self._verify = (env["verify"] or True) if verify_ssl else False
            self._session.trust_env = False
        self.requests_sent = 0

    def __repr__(self) -> str:
        return (
            f"AIGatewayClient(account_id={self.account_id!r}, gateway_id={self.gateway_id!r}, "
            f"base_url={self.base_url!r})"
        )

    @staticmethod
    def _check_base_url(base_url: str, source: str) -> str:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise AIGatewayConfigError(f"API base URL in {source} must be an https:// URL, got {base_url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise AIGatewayConfigError(
                f"Refusing to send credentials over plain http:// to {parts.hostname} ({source}); "
                "use https:// (plain http is only allowed for loopback hosts such as the emulator)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise AIGatewayConfigError(f"API base URL in {source} must not carry a query, fragment or user info")
        return base_url.rstrip("/")

    # ------------------------------------------------------------------ paths

    def _logs_path(self, gateway_id: str | None, *suffix: str) -> str:
        gateway = validate_gateway_id(gateway_id or self.gateway_id)
        path = f"/accounts/{self.account_id}/ai-gateway/gateways/{gateway}/logs"
        for part in suffix:
            path += "/" + quote(part, safe="")
        return path

    # ------------------------------------------------------------ one HTTP path

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> requests.Response:
        """Send one API call with budget, retries and error mapping; return the 2xx response."""
        url = self.base_url + path
        if params:
            # The API reads JSON-style booleans; requests would send "True".
            params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}
            # Encoded once here rather than by requests on every attempt; ":" and "," stay
            # literal (legal in a query), which keeps the JSON ``filters`` short to send and
            # cheaper for urllib3 to re-check byte by byte.
            url += "?" + urlencode(params, doseq=True, quote_via=quote, safe=":,")
            params = None
        started = self._clock()

        def attempt() -> requests.Response:
            # Waiting for budget counts against the call's deadline (a trigger's, for one).
            left = self.retry_deadline - (self._clock() - started)
            ticket = self.budget.acquire(deadline=self.budget.clock() + left)
            self.requests_sent += 1
            try:
                # Never follow a redirect: it would carry the credentials to another route or host.
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    timeout=self.timeout,
                    verify=self._verify,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as err:
                if "CERTIFICATE_VERIFY_FAILED" not in str(err):
                    raise _Transient(_no_response(err, method, path)) from None
                # Not transient: retrying an untrusted certificate only delays the failure.
                raise AIGatewayAPIError(
                    f"TLS certificate verification failed for {urlsplit(url).hostname}. Install the issuing CA "
                    "(e.g. REQUESTS_CA_BUNDLE=/path/to/ca.pem); only for a test endpoint set the connection "
                    f"extra verify_ssl=false ({method} {path})",
                    method=method,
                    path=path,
                ) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                raise _Transient(_no_response(err, method, path)) from None
            except requests.RequestException as err:
                # Anything else requests raises (InvalidHeader, InvalidURL, ...) may quote a header
                # value, i.e. the credentials: keep its type only, and never chain it.
                raise AIGatewayAPIError(
                    f"The request could not be sent: {type(err).__name__} ({method} {path})",
                    method=method,
                    path=path,
                ) from None
            finally:
                self.budget.answered(ticket)
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                raise AIGatewayAPIError(
                    f"The API answered with a redirect (HTTP {response.status_code}); not following it, as it "
                    f"would carry the credentials elsewhere ({method} {path})",
                    status=response.status_code,
                    method=method,
                    path=path,
                )
            error = self._error_for(response, method, path)
            if response.status_code == 429:
                # Everyone sharing the budget waits too (a default pause without Retry-After),
                # never longer than a call may retry.
                pause = None if error.retry_after is None else min(error.retry_after, self.retry_deadline)
                self.budget.pause_for(pause)
                raise _Transient(error, error.retry_after)
            if response.status_code >= 500:
                raise _Transient(error)
            raise error

        def wait(state: tenacity.RetryCallState) -> float:
            assert state.outcome is not None
            failure = state.outcome.exception()
            if isinstance(failure, _Transient) and failure.retry_after:
                return failure.retry_after + self._random.uniform(0, 1)
            backoff = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
            return backoff * self._random.uniform(0.5, 1.0)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number > self.max_retries:
                return True
            return self._clock() - started + (state.upcoming_sleep or 0) > self.retry_deadline

        def before_sleep(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None
            log.warning(
                "%s; retry %d/%d in %.1fs",
                state.outcome.exception(),
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as final:
            error = final.error
            if isinstance(error, AIGatewayRateLimitError):
                raise error from None
            if isinstance(error, AIGatewayAPIError) and error.status == 429:
                raise AIGatewayRateLimitError(
                    f"Still rate limited after {self.requests_sent} requests (Cloudflare locks a user out for "
                    f"up to 5 minutes): {error}",
                    status=429,
                    method=method,
                    path=path,
                    codes=error.codes,
                    messages=error.messages,
                    retry_after=error.retry_after,
                ) from None
            raise error from None

    def _error_for(self, response: requests.Response, method: str, path: str) -> AIGatewayAPIError:
        status = response.status_code
        codes: list[int] = []
        messages: list[str] = []
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            for item in body.get("errors") or []:
                if isinstance(item, dict):
                    if isinstance(item.get("code"), int):
                        codes.append(item["code"])
                    if item.get("message"):
                        messages.append(str(item["message"]))
        detail = (
            "; ".join(f"[{code}] {message}" for code, message in zip(codes, messages, strict=False))
            or "; ".join(messages)
            or response.reason
            or "no details"
        )
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        kwargs: dict[str, Any] = {
            "status": status,
            "method": method,
            "path": path,
            "codes": codes,
            "messages": messages,
            "retry_after": retry_after,
        }
        # The explanation first (a task log view cuts long lines), the route last.
        where = f"(HTTP {status}; {method} {path})"
        if status == 403:
            permission = "AI Gateway Read" if method == "GET" else "AI Gateway Write (Edit)"
            return AIGatewayAPIError(
                f"Access denied: check that the credentials are valid and have the '{permission}' permission "
                f"on account {self.account_id}. The API said: {detail} {where}",
                **kwargs,
            )
        if status == 404:
            if path.endswith("/logs"):
                return AIGatewayNotFoundError(
                    "Gateway not found: the gateway does not exist, or the account logs through Workers "
                    "Observability (accounts created on or after 2026-09-24), where the legacy Logs API is "
                    f"unavailable. The API said: {detail} {where}",
                    **kwargs,
                )
            return AIGatewayNotFoundError(f"Not found: {detail} {where}", **kwargs)
        if status == 429:
            return AIGatewayAPIError(f"Rate limited (Retry-After: {retry_after}s): {detail} {where}", **kwargs)
        message = f"{detail} {where}"
        return AIGatewayAPIError(message, **kwargs)

    def _json(self, response: requests.Response, method: str, path: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise AIGatewayAPIError(
                f"The API answered with a non-JSON body (HTTP {response.status_code}; {method} {path})",
                status=response.status_code,
                method=method,
                path=path,
            ) from None
        if not isinstance(body, dict) or body.get("success") is False:
            raise self._error_for(response, method, path)
        return body

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
        that exists throughout, and N logs cost exactly ceil(N / per_page) requests.
        An instant (one millisecond) shared by more than ``per_page`` logs is walked by page
        numbers instead, pass after pass until a pass brings no new id, so that retention
        deleting the oldest logs mid-walk cannot make it skip one: M logs in such an instant
        cost about 2 * ceil(M / per_page) extra requests (one more pass per change seen).
        Other orders use page numbers and are only stable while the gateway is unchanged.
        All inputs are validated before the first request.
        """
        user_filters = normalize_filters(filters)
        start_dt, end_dt = validate_window(start, end)
        base_params = _listing_params(order_by, order_by_direction, per_page, search)
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
        ):
            raise AIGatewayInputError(f"max_results must be a positive integer or None, got {max_results!r}")
        self._logs_path(gateway_id)  # validates the gateway id now, not at the first next()
        reserved = sorted(set(params) & {"page", "per_page", "filters", "start", "end"})
        if reserved:
            raise AIGatewayInputError(f"{reserved} cannot be passed as extra query parameters of a listing")
        base_params.update(params)
        if order_by == "created_at":
            walk = self._iter_keyset(
                gateway_id, user_filters, start_dt, end_dt, order_by_direction == "desc", per_page, base_params
            )
        else:
            walk = self._iter_pages(gateway_id, user_filters + window_filters(start_dt, end_dt), per_page, base_params)
        return self._limited(walk, max_results)

    @staticmethod
    def _limited(walk: Generator[dict[str, Any], None, None], max_results: int | None) -> Iterator[dict[str, Any]]:
        if max_results is None:
            yield from walk
            return
        for count, item in enumerate(walk, start=1):
            yield item
            if count >= max_results:
                walk.close()
                return

    def _iter_pages(
        self,
        gateway_id: str | None,
        filters: list[Filter],
        per_page: int,
        params: Mapping[str, Any],
        *,
        skip_ids: set[str] | None = None,
    ) -> Generator[dict[str, Any], None, None]:
        page = 1
        while True:
            rows, info = self._list_page(gateway_id, filters, {**params, "page": page, "per_page": per_page})
            for row in rows:
                if skip_ids is None or row.get("id") not in skip_ids:
                    yield row
            total = info.get("total_count")
            if len(rows) < per_page or (isinstance(total, int) and page * per_page >= total):
                return
            page += 1

    def _iter_keyset(
        self,
        gateway_id: str | None,
        user_filters: list[Filter],
        start: dt.datetime | None,
        end: dt.datetime | None,
        descending: bool,
        per_page: int,
        params: Mapping[str, Any],
    ) -> Generator[dict[str, Any], None, None]:
        # The moving bound: inclusive at the last instant seen (minus the ids seen there),
        # or exclusive once that instant has been walked completely.
        cursor: dt.datetime | None = None
        cursor_inclusive = True
        tie_at: str | None = None
        tie_ids: set[str] = set()
        window = window_filters(start, end)
        while True:
            bounds = list(window)
            if cursor is not None:
                bounds = [f for f in bounds if f["operator"] != ("lt" if descending else "gt")]
                if descending:
                    edge = cursor + CREATED_AT_RESOLUTION if cursor_inclusive else cursor
                    bounds.append(created_at_filter("lt", edge))
                else:
                    edge = cursor - CREATED_AT_RESOLUTION if cursor_inclusive else cursor
                    bounds.append(created_at_filter("gt", edge))
            excluded = [{"key": "id", "operator": "neq", "value": sorted(tie_ids)}] if tie_ids else []
            filters = user_filters + bounds + excluded
            rows, info = self._list_page(gateway_id, filters, {**params, "page": 1, "per_page": per_page})
            fresh = 0
            for row in rows:
                log_id, created = row.get("id"), row.get("created_at")
                if log_id in tie_ids:
                    continue  # the API ignored the exclusion; never yield twice
                fresh += 1
                if created != tie_at:
                    tie_at, tie_ids = created, set()
                tie_ids.add(log_id)  # type: ignore[arg-type]
                yield row
            total = info.get("total_count")
            if len(rows) < per_page or (isinstance(total, int) and len(rows) >= total):
                return
            if tie_at is None:
                return
            cursor, cursor_inclusive = parse_created_at(tie_at), True
            if fresh == 0 or len(tie_ids) > MAX_EXCLUDED_IDS:
                # Many logs share one instant: walk it by page numbers, then move past it.
                instant = [
                    *user_filters,
                    created_at_filter("gt", cursor - CREATED_AT_RESOLUTION),
                    created_at_filter("lt", cursor + CREATED_AT_RESOLUTION),
                ]
                # Repeated until a pass brings no new id: oldest-first retention deleting logs of
                # this instant mid-pass shifts the pages, and a single pass could skip some.
                while True:
                    fresh = 0
                    for row in self._iter_pages(gateway_id, instant, per_page, params, skip_ids=tie_ids):
                        tie_ids.add(row.get("id"))  # type: ignore[arg-type]
                        fresh += 1
                        yield row
                    if not fresh:
                        break
                cursor_inclusive, tie_at, tie_ids = False, None, set()

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
        params = {**_listing_params(order_by, order_by_direction, per_page, search), "page": 1, "per_page": per_page}
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
        response = self._request("GET", path)
        # Bodies come as stored (the OpenAPI spec): JSON when JSON, else text (e.g. SSE); or wrapped
        # in the Cloudflare envelope (the seed API document), which is taken off.
        content_type = response.headers.get("Content-Type", "")
        if not content_type or "json" in content_type:
            try:
                return unwrap_envelope(response.json())
            except ValueError:
                pass
        return response.text

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
        user_filters = normalize_filters(filters)
        check_delete_filter_keys(user_filters)
        query_filters = user_filters + window_filters(start, end)
        if not query_filters and not allow_unfiltered:
            raise AIGatewayInputError(
                "delete_logs needs filters or a start/end window: without them the API deletes "
                "the gateway's oldest logs (pass allow_unfiltered=True if that is really meant)"
            )
        query: dict[str, Any] = {}
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_DELETE_LIMIT:
                raise AIGatewayInputError(f"limit must be an integer from 1 to {MAX_DELETE_LIMIT}, got {limit!r}")
            query["limit"] = limit
        if order_by is not None:
            if order_by not in DELETE_ORDER_KEYS:
                raise AIGatewayInputError(f"order_by must be one of {sorted(DELETE_ORDER_KEYS)}, got {order_by!r}")
            query["order_by"] = order_by
        if order_by_direction is not None:
            if order_by_direction not in ("asc", "desc"):
                raise AIGatewayInputError(f"order_by_direction must be 'asc' or 'desc', got {order_by_direction!r}")
            query["order_by_direction"] = order_by_direction
        if query_filters:
            query["filters"] = encode_filters(query_filters)
        path = self._logs_path(gateway_id)
        self._json(self._request("DELETE", path, params=query), "DELETE", path)

    # -------------------------------------------------------------- checking

    def check_access(self, gateway_id: str | None = None) -> int:
        """One cheap list call proving credentials, account and gateway; returns the log count."""
        return self.count_logs(gateway_id)


def _listing_params(order_by: str, order_by_direction: str, per_page: int, search: str | None) -> dict[str, Any]:
    """Validate the ordering and page size of a listing; the query parameters they make."""
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise AIGatewayInputError(f"per_page must be an integer from 1 to {MAX_PER_PAGE}, got {per_page!r}")
    if order_by not in LIST_ORDER_KEYS:
        raise AIGatewayInputError(f"order_by must be one of {sorted(LIST_ORDER_KEYS)}, got {order_by!r}")
    if order_by_direction not in ("asc", "desc"):
        raise AIGatewayInputError(f"order_by_direction must be 'asc' or 'desc', got {order_by_direction!r}")
    params: dict[str, Any] = {"order_by": order_by, "order_by_direction": order_by_direction}
    if search:
        params["search"] = search
    return params


def build_patch_body(*, feedback: Any = _NOT_SET, score: Any = _NOT_SET, metadata: Any = _NOT_SET) -> dict[str, Any]:
    """Validate PATCH fields (before any request) and return the JSON body."""
    body: dict[str, Any] = {}
    if feedback is not _NOT_SET:
        if feedback is not None and (
            isinstance(feedback, bool) or not isinstance(feedback, (int, float)) or not -1 <= feedback <= 1
        ):
            raise AIGatewayInputError(f"feedback must be a number from -1 to 1 (or None), got {feedback!r}")
        body["feedback"] = feedback
    if score is not _NOT_SET:
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100
        ):
            raise AIGatewayInputError(f"score must be a number from 0 to 100 (or None), got {score!r}")
        body["score"] = score
    if metadata is not _NOT_SET:
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise AIGatewayInputError(f"metadata must be a dict (or None), got {type(metadata).__name__}")
            if len(metadata) > 5:
                raise AIGatewayInputError(f"metadata holds at most 5 entries, got {len(metadata)}")
            for key, value in metadata.items():
                if not isinstance(key, str) or not key:
                    raise AIGatewayInputError(f"metadata keys must be non-empty strings, got {key!r}")
                if not isinstance(value, (str, int, float, bool)) or (
                    isinstance(value, float) and not math.isfinite(value)
                ):
                    raise AIGatewayInputError(
                        f"metadata[{key!r}] must be a string, finite number or boolean, got {value!r}"
                    )
            metadata = dict(metadata)
        body["metadata"] = metadata
    if not body:
        raise AIGatewayInputError("nothing to patch: give at least one of feedback, score, metadata")
    return body


_ENVELOPE_KEYS = frozenset({"success", "result", "errors", "messages"})


def unwrap_envelope(body: Any) -> Any:
    """``body["result"]`` when ``body`` is exactly a successful Cloudflare envelope, else ``body``.

    Exactly: a JSON object holding ``success: true`` and ``result``, and besides them at most
    ``errors`` and ``messages``. A stored provider body with other keys is never unwrapped.
    """
    if (
        isinstance(body, dict)
        and body.get("success") is True
        and "result" in body
        and _ENVELOPE_KEYS.issuperset(body)
    ):
        return body["result"]
    return body


def clean_credential(value: str | None, *, field: str, source: str) -> str | None:
    """A credential with surrounding whitespace stripped (e.g. a token read from a file).

    Refuses control characters and inner whitespace, naming ``field`` and never the value:
    requests would quote such a header value in its exception text.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise AIGatewayConfigError(f"the {field} of {source} must be a string, got {type(value).__name__}")
    text = value.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise AIGatewayConfigError(
            f"the {field} of {source} contains whitespace or control characters inside it (value not shown); "
            "paste it again without line breaks or spaces"
        )
    return text or None


def _no_response(err: Exception, method: str, path: str) -> AIGatewayAPIError:
    """A transport failure named by its type only: requests' texts may quote URLs and headers."""
    return AIGatewayAPIError(f"No response: {type(err).__name__} ({method} {path})", method=method, path=path)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
