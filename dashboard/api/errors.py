"""The one shape of every error the HTTP API answers, and the handlers that give it to Starlette's own errors.

Every error (400, 401, 403, 404, 405, 409, 413, 422, 500, 503) is::

    {"error": {"status": 422, "code": "invalid_request", "message": "one line", "details": [...]}}

``code`` is stable for programs, ``message`` is for people, ``details`` (possibly empty) lists what was wrong
field by field when there is more than one thing to say.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["CODES", "ApiProblem", "error_response", "exception_handlers"]

log = logging.getLogger(__name__)

CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}
"""The status codes the API answers with an error, and the ``code`` each carries."""


class ApiProblem(Exception):
    """Raised by a handler to answer with an error: the status, one line, and optional details and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Sequence[Any] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        super().__init__(message)


def error_response(
    status: int, message: str, *, details: Sequence[Any] = (), headers: Mapping[str, str] | None = None
) -> Response:
    body = {"error": {"status": status, "code": CODES[status], "message": message, "details": list(details)}}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return error_response(exc.status, exc.message, details=exc.details, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own: a path no route matches (404) or a method a route does not take (405, with its Allow).
    assert isinstance(exc, HTTPException)
    status = exc.status_code if exc.status_code in CODES else 400
    message = {404: f"no such resource: {request.url.path}", 405: f"{request.method} is not allowed here"}.get(
        status, str(exc.detail)
    )
    return error_response(status, message, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (Starlette re-raises after answering); the caller learns only that it failed.
    log.error("api: %s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return error_response(500, "the request failed on the server; its log says why")


def exception_handlers() -> dict[Any, Any]:
    return {ApiProblem: _problem, HTTPException: _http_error, Exception: _crash}
