"""Domain exceptions of the provider.

All derive from :class:`AirflowException` so Airflow treats them as task failures.
None of them ever carries credentials: messages are built from the method, the
path (account id, gateway id, log id) and what the API answered.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_aigw.compat import AirflowException


class AIGatewayError(AirflowException):
    """Base class of every error raised by this provider."""


class AIGatewayInputError(AIGatewayError, ValueError):
    """A caller-supplied value is invalid; raised before any request is sent."""


class AIGatewayConfigError(AIGatewayError):
    """The Airflow connection is incomplete or unsafe (missing account id, plain http, ...)."""


class AIGatewayAPIError(AIGatewayError):
    """The AI Gateway API answered with an error (or could not be reached).

    :param message: human-readable summary.
    :param status: HTTP status, ``None`` when no response was received.
    :param method: HTTP method of the failed call.
    :param path: API path of the failed call (never contains credentials).
    :param codes: Cloudflare error codes from the ``errors`` array.
    :param messages: Cloudflare error messages from the ``errors`` array.
    :param retry_after: seconds the API asked us to wait (429), if given.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        codes: Sequence[int] = (),
        messages: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.codes = list(codes)
        self.messages = list(messages)
        self.retry_after = retry_after


class AIGatewayNotFoundError(AIGatewayAPIError):
    """HTTP 404: the gateway, log or stored body does not exist."""


class AIGatewayURLTooLongError(AIGatewayAPIError):
    """HTTP 414: the request's URL is longer than the API (or Cloudflare's edge) accepts.

    Never retried as it is (nothing of it was applied); a delete halves its batch and sends the
    halves, and raises this, listing what was and was not deleted, when even a small one is refused.
    """


class AIGatewayListingError(AIGatewayAPIError):
    """A listing cannot go on exactly: the API answered a page that contradicts the request, or the
    walk reached a limit of the request it would have to send next.

    Raised after the one request that showed it, before its offending row is passed on: a page
    that brings no log the walk has not seen (a repeated page), a row earlier than the keyset
    cursor or later than the window's far end (the API did not apply the ``created_at``
    filter), a row that contradicts the caller's filters (checked by the export), or more logs
    in one ``created_at`` millisecond than one request's URL can exclude by id.
    """


class AIGatewayRateLimitError(AIGatewayAPIError):
    """HTTP 429 persisted past the retry deadline (Cloudflare's lock-out lasts up to 5 minutes)."""


class AIGatewayBudgetTimeoutError(AIGatewayRateLimitError):
    """The client-side request budget has no room before the call's deadline (nothing was sent).

    ``retry_after`` holds the seconds until the next request may go.
    """


class AIGatewayBudgetStorageError(AIGatewayError):
    """The shared request budget's storage (``budget_storage``, Redis) is unreachable.

    Raised when the budget is created and the server does not answer, or when it is lost
    mid-run and does not come back before the call's deadline; never a silent fallback.
    """


class AIGatewayLateLogsError(AIGatewayError):
    """More logs match an exported window now than the export wrote: some arrived late.

    Raised by the delete operator before deleting anything (or as soon as it notices).
    """


class AIGatewayUnsafeDeleteError(AIGatewayError):
    """The API did not apply a filter of a DELETE (it deleted a log it was not asked to, or left
    a named one); the delete stopped at once."""


class AIGatewayBodyError(AIGatewayError):
    """Request/response bodies of an export could not be fetched (see ``on_body_error``), or
    bodies of logs a delete was asked to remove were never archived."""


class AIGatewayExportConflictError(AIGatewayError):
    """Another export of the same window and format holds its lock, or committed meanwhile.

    Raised before anything is written (lock held, overlapping window) or before the commit
    (the committed export changed while this one ran); the committed export stays as it was.
    """


def is_transient(error: BaseException) -> bool:
    """Whether a failed call is worth repeating later (the logs check's next poll).

    Rate limiting (429), server errors (5xx) and failures without a response (timeouts,
    dropped connections) are transient; every other API answer (400, 403, 404, ...) and
    every configuration or input error is permanent.
    """
    if not isinstance(error, AIGatewayAPIError):
        return False
    return error.status is None or error.status == 429 or error.status >= 500


def outage_message(error: BaseException) -> str:
    """Why a sensor whose API still failed at its timeout fails instead of timing out."""
    return (
        f"The AI Gateway API was still failing when the sensor's timeout ran out: {error}. "
        "Failing rather than timing out, so that soft_fail never mistakes an outage for a window without logs"
    )
