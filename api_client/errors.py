"""Every error the client raises, and how an HTTP answer maps onto them.

One tree, rooted at :class:`ApiError`; httpx and pydantic exceptions never cross the package boundary (they are
kept as ``__cause__`` through ``raise ... from exc``)::

    ApiError                        anything that went wrong talking to the API
    ├── InvalidRequestError         the arguments cannot form a valid request; nothing was sent
    ├── TransportError              no answer: connect/read/write error, timeout
    ├── UnexpectedResponseError     an answer the contract does not allow (status, content type, body)
    ├── RateLimitedError            429: come back later (``retry_after_s``)
    ├── ServerError                 5xx
    └── ClientError                 a 4xx refusal not covered below (405, 408, 413, ...)
        ├── ValidationError         400, 422
        ├── AuthenticationError     401, 403
        ├── NotFoundError           404
        │   └── RouteNotFoundError  404 without an error code on an Observability route: no such route
        └── ConflictError           409

``RateLimitedError`` is not a ``ClientError`` on purpose: callers treat a ``ClientError`` as "the API looked at the
request and refused it, sending it again cannot help", which is false for 429.

Errors carry the request's method and URL, the status and a truncated excerpt of the body when there was an
answer, and the ``message``/``error_code`` of an ``ObservabilityError`` body
(``{"detail": {"message": ..., "error_code": ...}}``). They never carry headers, so the API key cannot leak
through an error message.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ClientError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "RateLimitedError",
    "RouteNotFoundError",
    "ServerError",
    "TransportError",
    "UnexpectedResponseError",
    "UnexpectedResponseReason",
    "ValidationError",
    "error_class_for_status",
]

UnexpectedResponseReason = Literal[
    "status", "content_type", "json", "model", "incomplete_body", "decoding", "redirects"
]


class ApiError(Exception):
    """Raised when a call to the API did not produce the value the contract promises."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
        error_code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status_code = status_code
        self.body = body
        self.error_code = error_code
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by state, not by constructor arguments (subclasses take keyword-only ones): a Celery prefork
        # worker pickles the exception a task raised to hand it to the parent process.
        return (_restore, (type(self), self.message, dict(self.__dict__)))

    def __str__(self) -> str:
        parts = [self.message]
        if self.method and self.url:
            where = f"{self.method} {self.url}"
            parts.append(f"({where} -> {self.status_code})" if self.status_code is not None else f"({where})")
        if self.error_code:
            parts.append(f"[{self.error_code}]")
        return " ".join(parts)


class InvalidRequestError(ApiError, ValueError):
    """Raised before sending when the arguments cannot form the request the contract describes."""


class TransportError(ApiError):
    """Raised when no HTTP answer arrived: connection refused or reset, timeout, protocol error."""

    def __init__(
        self, message: str, *, method: str, url: str, may_have_reached_server: bool = True
    ) -> None:
        super().__init__(message, method=method, url=url)
        # False only when the connection could not even be opened, so the server cannot have seen the request.
        self.may_have_reached_server = may_have_reached_server


class UnexpectedResponseError(ApiError):
    """Raised when an answer arrived but breaks the contract: wrong success status, content type or body."""

    def __init__(
        self,
        message: str,
        *,
        reason: UnexpectedResponseReason,
        method: str,
        url: str,
        status_code: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, status_code=status_code, body=body)
        self.reason: UnexpectedResponseReason = reason


class RateLimitedError(ApiError):
    """Raised on 429 Too Many Requests; ``retry_after_s`` is the server's ``Retry-After``, if it sent one."""


class ServerError(ApiError):
    """Raised on a 5xx answer."""


class ClientError(ApiError):
    """Raised on a 4xx answer that no narrower class covers (e.g. 405, 408 Request Timeout, 413)."""


class ValidationError(ClientError):
    """Raised on 400 Bad Request and 422 Unprocessable Entity; ``error_code`` says which check failed."""


class AuthenticationError(ClientError):
    """Raised on 401 Unauthorized and 403 Forbidden: the key is missing, wrong, or lacks the right."""


class NotFoundError(ClientError):
    """Raised on 404: the dataset, task, campaign, event, file or conversation does not exist."""


class RouteNotFoundError(NotFoundError):
    """Raised on a 404 that names no missing object: the API has no such route (any more).

    The Observability API answers a missing object with an ``ObservabilityError`` that carries a code
    (``DATASET_NOT_FOUND``, ``DATASET_TASK_NOT_FOUND``, ...). A 404 without a code is the web framework's answer to a
    path it does not route, e.g. ``{"detail": "Not Found"}``: an operation the API no longer offers (3.x dropped
    the campaign and explorer imports), or a base URL that points at the wrong place. Only raised for
    Observability paths (``Endpoint.coded_errors``); other APIs' 404s stay :class:`NotFoundError`.
    """


class ConflictError(ClientError):
    """Raised on 409 Conflict."""


def _restore(cls: type[ApiError], message: str, state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class_for_status(status_code: int) -> type[ApiError] | None:
    """The class raised for an error status (4xx or 5xx); None for any other status."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if 400 <= status_code < 500:
        return ClientError
    if 500 <= status_code < 600:
        return ServerError
    return None
