"""Reading answers: the decoders a success status goes through, and the mapping of every other answer onto the
error tree. Shared by both clients; no I/O here (the body has already been read).
"""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from .errors import NotFoundError, RouteNotFoundError, UnexpectedResponseError, error_class_for_status
from .retry import parse_retry_after
from .spec import DecodeFailure, RequestSpec

__all__ = [
    "BODY_EXCERPT_CHARS",
    "JsonBody",
    "NoBody",
    "RawBody",
    "interpret_response",
    "safe_url",
    "summarize_validation_error",
]

T = TypeVar("T")

# Enough to read a server's error message, not enough to flood a log line or a database column.
BODY_EXCERPT_CHARS = 500
_MAX_VALIDATION_ERRORS = 3


class JsonBody(Generic[T]):
    """``application/json`` body validated by ``adapter``, optionally after taking one key of a wrapper object."""

    def __init__(self, adapter: pydantic.TypeAdapter[T], *, key: str | None = None) -> None:
        self._adapter = adapter
        self._key = key

    def decode(self, response: httpx.Response) -> T:
        content_type = response.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise DecodeFailure("content_type", f"expected application/json, got {content_type or 'nothing'!r}")
        try:
            data = json.loads(response.content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
            raise DecodeFailure("json", f"malformed JSON: {exc}") from exc
        except RecursionError as exc:  # arrays or objects nested thousands deep
            raise DecodeFailure("json", "malformed JSON: nested too deeply") from exc
        if self._key is not None:
            if not isinstance(data, dict) or self._key not in data:
                raise DecodeFailure("model", f"expected an object with key {self._key!r}")
            data = data[self._key]
        try:
            return self._adapter.validate_python(data)
        except pydantic.ValidationError as exc:
            raise DecodeFailure("model", summarize_validation_error(exc)) from exc


class NoBody:
    """An answer whose body is ignored (204 No Content); any content type is accepted, as in the SDK."""

    def decode(self, response: httpx.Response) -> None:
        return None


class RawBody:
    """The body as bytes, whatever its content type (a file download)."""

    def decode(self, response: httpx.Response) -> bytes:
        return response.content


def interpret_response(spec: RequestSpec[T], response: httpx.Response) -> T:
    """The value of a success answer, or the :class:`ApiError` that describes any other answer."""
    endpoint = spec.endpoint
    method, url = response.request.method, safe_url(spec, response.request)
    status = response.status_code
    if status == endpoint.success_status:
        try:
            return endpoint.decoder.decode(response)
        except DecodeFailure as exc:
            raise UnexpectedResponseError(
                f"{endpoint.operation}: unexpected response body: {exc.detail}",
                reason=exc.reason,
                method=method,
                url=url,
                status_code=status,
                body=body_excerpt(response),
            ) from exc.__cause__
    error_class = error_class_for_status(status)
    if error_class is None:
        raise UnexpectedResponseError(
            f"{endpoint.operation}: expected status {endpoint.success_status}, got {status}",
            reason="status",
            method=method,
            url=url,
            status_code=status,
            body=body_excerpt(response),
        )
    message, error_code = _error_details(response)
    # A missing object has a code (DATASET_NOT_FOUND, ...); a 404 without one is a path nothing routes.
    if error_class is NotFoundError and error_code is None and endpoint.coded_errors:
        error_class = RouteNotFoundError
    raise error_class(
        f"{endpoint.operation}: {message}",
        method=method,
        url=url,
        status_code=status,
        body=body_excerpt(response),
        error_code=error_code,
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
    )


def safe_url(spec: RequestSpec[Any], request: httpx.Request) -> str:
    """The request URL for errors and logs; a server-issued URL loses its query, which holds its signature."""
    url = request.url
    return str(url.copy_with(query=None, fragment=None)) if spec.external else str(url)


def body_excerpt(response: httpx.Response) -> str | None:
    """The start of the body as text, marked when cut; None when empty."""
    content = response.content
    if not content:
        return None
    text = content[: BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    if len(text) > BODY_EXCERPT_CHARS or len(content) > BODY_EXCERPT_CHARS * 4:
        return text[:BODY_EXCERPT_CHARS] + "…"
    return text


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """``message`` and ``error_code`` from an ObservabilityError body; a fallback message otherwise."""
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return fallback, None
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        code = detail.get("error_code")
        return detail["message"], code if isinstance(code, str) else None
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list):
        # FastAPI's HTTPValidationError (the Conversations API uses it for 422).
        messages = [
            f"{_location(item.get('loc'))}: {item.get('msg')}"
            for item in detail[:_MAX_VALIDATION_ERRORS]
            if isinstance(item, dict)
        ]
        if messages:
            return "; ".join(messages), None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None
    return fallback, None


def _location(loc: Any) -> str:
    # A server's error body is not ours to trust: a location that is not a list is shown as it is.
    return ".".join(str(part) for part in loc) if isinstance(loc, list) else str(loc if loc is not None else "")


def summarize_validation_error(exc: pydantic.ValidationError) -> str:
    """The first few problems of a validation error, without the (possibly large) input values."""
    errors = exc.errors(include_url=False, include_input=False)
    shown = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
        for error in errors[:_MAX_VALIDATION_ERRORS]
    )
    more = len(errors) - _MAX_VALIDATION_ERRORS
    return f"{shown} (and {more} more)" if more > 0 else shown

