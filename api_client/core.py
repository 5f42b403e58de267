"""What the sync and async clients share: configuration, the API key, turning a :class:`RequestSpec` into an
``httpx.Request``, translating httpx failures, logging, and attempt bookkeeping for retries.

The clients only move bytes: build a request here, send it, hand the answer back here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from .errors import (
    ApiError,
    InvalidRequestError,
    TransportError,
    UnexpectedResponseError,
    UnexpectedResponseReason,
)
from .responses import body_excerpt, interpret_response, safe_url
from .retry import RetryPolicy
from .spec import RequestSpec

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_USER_AGENT", "Attempts", "ClientCore", "logger"]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.mistral.ai"
DEFAULT_USER_AGENT = "dsimport/0.1"

logger = logging.getLogger("api_client")

# Failures that happen before a single byte of the request can have left: the server never saw it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class ClientCore:
    """Configuration and request/response handling, with no I/O of its own."""

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str,
        timeout_s: float,
        retry: RetryPolicy | None,
        user_agent: str,
        clock: Callable[[], float],
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not isinstance(key, str):
            raise TypeError("api_key must be a str or a pydantic SecretStr")
        # Kept only as a SecretStr so that no repr, traceback local or debugger view shows it.
        self._authorization = SecretStr(_authorization_value(key)) if key.strip() else None
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        # A path prefix is kept ("http://host/prefix" -> "http://host/prefix/v1/..."), as the SDK does.
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent
        self.clock = clock

    def __repr__(self) -> str:
        return f"ClientCore(base_url={self.base_url!r})"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client``/``httpx.AsyncClient``; no credentials among them."""
        return {
            "timeout": httpx.Timeout(self.timeout_s),
            # As the SDK's clients; httpx drops Authorization when a redirect leaves the origin.
            "follow_redirects": True,
            "headers": {"User-Agent": self.user_agent, "Accept": "application/json"},
        }

    def build_request(self, http: httpx.Client | httpx.AsyncClient, spec: RequestSpec[Any]) -> httpx.Request:
        endpoint = spec.endpoint
        headers: dict[str, str] = {}
        if endpoint.authenticated and self._authorization is not None:
            headers["Authorization"] = self._authorization.get_secret_value()
        if not endpoint.authenticated:
            headers["Accept"] = "*/*"
        if spec.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            url = self._url(spec)
            return http.build_request(
                endpoint.method,
                url,
                params=list(spec.query) if spec.query else None,
                headers=headers,
                content=spec.body,
                data=dict(spec.form) if spec.form else None,
                files=list(spec.files) if spec.files else None,
            )
        except httpx.InvalidURL as exc:
            raise InvalidRequestError(f"{endpoint.operation}: invalid URL: {exc}") from exc

    def _url(self, spec: RequestSpec[Any]) -> httpx.URL:
        if not spec.external:
            return httpx.URL(self.base_url + spec.path)
        url = httpx.URL(spec.path)
        # A server-issued URL may be relative to the API's base URL.
        return url if url.is_absolute_url else httpx.URL(self.base_url + "/").join(url)

    def send_failed(self, spec: RequestSpec[Any], request: httpx.Request, exc: Exception) -> ApiError:
        """The error for a request that got no answer (raise it ``from exc``)."""
        operation, url = spec.endpoint.operation, safe_url(spec, request)
        if isinstance(exc, httpx.TooManyRedirects | httpx.InvalidURL):
            return UnexpectedResponseError(
                f"{operation}: bad redirect: {exc}", reason="redirects", method=request.method, url=url
            )
        error = TransportError(
            f"{operation}: {type(exc).__name__}: {exc}".rstrip(": "),
            method=request.method,
            url=url,
            may_have_reached_server=not isinstance(exc, _NOT_SENT),
        )
        logger.debug("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return error

    def read_failed(self, spec: RequestSpec[Any], response: httpx.Response, exc: Exception) -> ApiError:
        """The error for an answer whose body could not be read to the end (raise it ``from exc``)."""
        request = response.request
        reason: UnexpectedResponseReason = (
            "decoding" if isinstance(exc, httpx.DecodingError) else "incomplete_body"
        )
        logger.debug("%s %s -> %d, body unreadable: %s", request.method, request.url.path, response.status_code,
                     type(exc).__name__)
        return UnexpectedResponseError(
            f"{spec.endpoint.operation}: the response body could not be read: {type(exc).__name__}: {exc}",
            reason=reason,
            method=request.method,
            url=safe_url(spec, request),
            status_code=response.status_code,
            body=_excerpt_if_read(response) if reason == "decoding" else None,
        )

    def interpret(self, spec: RequestSpec[T], response: httpx.Response, started: float) -> T:
        """Log the answer of an attempt started at ``started``, then return its value or raise its error."""
        request = response.request
        logger.debug(
            "%s %s -> %d in %.3fs",
            request.method,
            request.url.path,
            response.status_code,
            self.clock() - started,
        )
        return interpret_response(spec, response)

    def attempts(self, spec: RequestSpec[Any]) -> Attempts:
        return Attempts(self, spec)


class Attempts:
    """Counts the attempts of one call and asks the retry policy what to do after each failure."""

    def __init__(self, core: ClientCore, spec: RequestSpec[Any]) -> None:
        self._core = core
        self._spec = spec
        self._first_started = core.clock()
        self.made = 0

    def begin(self) -> float:
        """Mark the start of an attempt; returns its start time."""
        self.made += 1
        return self._core.clock()

    def delay_after(self, error: ApiError) -> float | None:
        """Seconds to wait before trying again, or None to raise ``error``."""
        core = self._core
        delay = core.retry.next_delay_s(
            error,
            creates=self._spec.endpoint.creates,
            attempts_made=self.made,
            elapsed_s=core.clock() - self._first_started,
        )
        if delay is not None:
            logger.info(
                "%s failed (%s); retrying in %.2fs (attempt %d of %d)",
                self._spec.endpoint.operation,
                error.status_code if error.status_code is not None else type(error).__name__,
                delay,
                self.made + 1,
                core.retry.max_attempts,
            )
        return delay


def _authorization_value(key: str) -> str:
    # A key that already carries the scheme is sent unchanged, as the SDK does.
    return key if key[:7].lower() == "bearer " else f"Bearer {key}"


def _excerpt_if_read(response: httpx.Response) -> str | None:
    # A streamed body that failed to decode on a real socket was never read whole: there is nothing to show.
    try:
        return body_excerpt(response)
    except httpx.ResponseNotRead:
        return None
