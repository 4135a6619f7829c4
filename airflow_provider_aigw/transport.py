"""The one HTTP path of the provider: auth, URL building, the request budget, retries and error mapping.

:class:`APITransport` is the base of :class:`~airflow_provider_aigw.client.AIGatewayClient`
(the one way in): every call of the hooks, operators, sensors and the trigger goes through
:meth:`APITransport._request`. It knows nothing about Airflow connections, listings or log fields.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_aigw import __version__
from airflow_provider_aigw.budget import (
    DEFAULT_BUDGET_PERIOD,
    DEFAULT_BUDGET_REQUESTS,
    DEFAULT_BUDGET_STORAGE,
    Budget,
    shared_budget,
)
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayConfigError,
    AIGatewayNotFoundError,
    AIGatewayRateLimitError,
    AIGatewayURLTooLongError,
)
from airflow_provider_aigw.jsoncodec import decode_json
from airflow_provider_aigw.validation import validate_account_id, validate_gateway_id, validate_positive

# The client's log lines (retries, TLS warnings) keep the logger name users already filter on.
log = logging.getLogger("airflow_provider_aigw.client")

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
#: Longest request-target (path and query) sent: Cloudflare's edge answers 414 above 32 KB, and the
#: limit of the API behind it is unknown; a delete halves its batch on a 414 below this.
MAX_URL_CHARS = 16_000


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


class APITransport:
    """Credentials, session, budget and retries of one account's Logs API; the one HTTP path.

    Not used on its own: :class:`~airflow_provider_aigw.client.AIGatewayClient` documents
    the parameters.
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
        self._base_path_chars = len(urlsplit(self.base_url).path)
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
        for name, value in (
            ("timeout", timeout),
            ("retry_deadline", retry_deadline),
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
        ):
            validate_positive(value, param=f"{name} in {source}", integer=False, error=AIGatewayConfigError)
        validate_positive(max_retries, param=f"max_retries in {source}", allow_zero=True, error=AIGatewayConfigError)
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
        # What Session.request would pass to Session.send, resolved once (a given session that
        # trusts the environment has them resolved per call, as Session.request does).
        self._send_settings: dict[str, Any] = {
            "proxies": self._session.proxies,
            "stream": self._session.stream,
            "verify": self._verify,
            "cert": self._session.cert,
        }
        self.requests_sent = 0

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
        query = ""
        if params:
            # The API reads JSON-style booleans; requests would send "True".
            params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}
            # Encoded once here rather than by requests on every attempt; ":" and "," stay
            # literal (legal in a query), which keeps the JSON ``filters`` short to send and
            # cheaper for urllib3 to re-check byte by byte.
            query = "?" + urlencode(params, doseq=True, quote_via=quote, safe=":,")
        target = self._base_path_chars + len(path) + len(query)
        if target > MAX_URL_CHARS:
            # Refused here rather than by the API (a 414 at Cloudflare's edge, or a lower limit behind it).
            raise AIGatewayURLTooLongError(
                f"The request's URL would be {target} characters long, over the {MAX_URL_CHARS} this client "
                f"sends; nothing was sent ({method} {path})",
                method=method,
                path=path,
            )
        started = self._clock()

        def attempt() -> requests.Response:
            # Waiting for budget counts against the call's deadline (a trigger's, for one).
            left = self.retry_deadline - (self._clock() - started)
            return self._check(self._send(method, path, query, json_body, left), method, path)

        try:
            # Most calls are answered at once: only a failed first attempt enters the retry loop
            # (tenacity's bookkeeping costs about 0.05 ms a call), which takes it as its first.
            return attempt()
        except _Transient as failure:
            failed = [failure]

        def first_then_again() -> requests.Response:
            if failed:
                raise failed.pop()
            return attempt()

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
            return retrying(first_then_again)
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

    def _send(self, method: str, path: str, query: str, json_body: Any, wait_s: float) -> requests.Response:
        """One attempt on the wire within the budget (waiting at most ``wait_s`` for it); a failure
        to get an answer is mapped to a transient or a final error that quotes no header.

        What ``Session.request`` does, minus per-call work: the request is prepared from the
        session's headers, cookies, auth and hooks as they are, without the merged copies
        ``Session.prepare_request`` makes (about 0.1 ms a call); requests prepares the URL
        without the query, which is already in the form requests would give it and is appended
        as is (requests would re-check its ~500 characters byte by byte in Python on every
        attempt); and the send settings are the ones resolved with the session. No ``~/.netrc``
        login replaces the client's credentials, as it would for a session trusting the
        environment.
        """
        ticket = self.budget.acquire(deadline=self.budget.clock() + wait_s)
        self.requests_sent += 1
        url = self.base_url + path
        session = self._session
        try:
            # PreparedRequest.prepare, step by step, with the URL of the path prepared once.
            prepared = requests.PreparedRequest()
            prepared.prepare_method(method)
            prepared.url = _prepared_url(url) + query
            prepared.prepare_headers(session.headers)
            prepared.prepare_cookies(session.cookies)
            prepared.prepare_body(None, None, json_body)
            prepared.prepare_auth(session.auth, url)
            prepared.prepare_hooks(session.hooks)
            settings: Mapping[str, Any] = self._send_settings
            if session.trust_env:
                settings = session.merge_environment_settings(prepared.url, {}, None, self._verify, None)
            # Never follow a redirect: it would carry the credentials to another route or host.
            return session.send(prepared, timeout=self.timeout, allow_redirects=False, **settings)
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

    def _check(self, response: requests.Response, method: str, path: str) -> requests.Response:
        """The 2xx response, or the error its status means: 429 and 5xx are transient (a 429
        pauses the whole budget), redirects and other 4xx are final."""
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
                    "Gateway not found: check the account_id in the connection's extra (now "
                    f"{self.account_id}; a wrong one makes every gateway 'not found') and the gateway id. Else "
                    "the account logs through Workers Observability (accounts created on or after 2026-09-24), "
                    f"where the legacy Logs API is unavailable. The API said: {detail} {where}",
                    **kwargs,
                )
            return AIGatewayNotFoundError(f"Not found: {detail} {where}", **kwargs)
        if status == 414:
            # Final, never retried as it is: nothing of the request was applied.
            return AIGatewayURLTooLongError(
                f"The API refused the request's URL as too long: nothing of it was applied {where}",
                **kwargs,
            )
        if status == 429:
            return AIGatewayAPIError(f"Rate limited (Retry-After: {retry_after}s): {detail} {where}", **kwargs)
        message = f"{detail} {where}"
        return AIGatewayAPIError(message, **kwargs)

    def _json(self, response: requests.Response, method: str, path: str) -> dict[str, Any]:
        try:
            # From the bytes (JSON is UTF-8, RFC 8259): Response.json would first decode the whole
            # page to text.
            body = decode_json(response.content)
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


@functools.lru_cache(maxsize=64)
def _prepared_url(url: str) -> str:
    """``url`` as requests prepares it (the same few paths are prepared for every page)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    assert prepared.url is not None
    return prepared.url


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
