"""What every API route shares: the operation wrapper (stats, latency, auth, faults, error
answers) and small request helpers (JSON bodies, uuid path ids, pagination)."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from .config import FaultRule
from .errors import (
    AUTH_UNAUTHORIZED,
    ApiProblem,
    http_validation_error,
    validation_error,
)
from .faults import FaultInjector, fault_response
from .stats import Stats
from .wire import dumps, page_json

__all__ = [
    "Handler",
    "Operations",
    "canonical_uuid",
    "json_object",
    "json_response",
    "no_content",
    "page_links",
    "page_params",
    "path_uuid",
    "raw_json",
    "require_str",
    "require_str_list",
]

Handler = Callable[[Request], Awaitable[Response]]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_UNAUTHORIZED = dumps({"detail": {"message": "Missing or invalid API key", "error_code": AUTH_UNAUTHORIZED}})


class Operations:
    """Wraps route handlers with the behaviour shared by every API call."""

    def __init__(self, *, stats: Stats, faults: FaultInjector, api_key: str | None) -> None:
        self._stats = stats
        self._faults = faults
        self._api_key = api_key.encode() if api_key else None

    def wrap(self, name: str, handler: Handler, *, auth: bool = True) -> Handler:
        stats, faults = self._stats, self._faults

        async def endpoint(request: Request) -> Response:
            stats.count_request(name)
            delay = faults.latency_s(name)
            late = delay > 0 and faults.latency_after()
            if delay > 0 and not late:
                await asyncio.sleep(delay)
            if auth and not self._authorized(request):
                response = Response(
                    _UNAUTHORIZED,
                    status_code=401,
                    media_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                stats.count_response(name, 401)
                return response
            rule = faults.take(name)
            if rule is not None and rule.phase == "before" and rule.kind != "slow":
                return await self._spoil(name, rule, request, None)
            if rule is not None and rule.phase == "before":
                # Read the body first: the handler must find it even if the client has given up meanwhile.
                await request.body()
                await _delay(rule)
            try:
                response = await handler(request)
            except ApiProblem as problem:
                response = json_response(problem.body, problem.status, problem.headers)
            if late:
                # The work is done (an import task exists); only the answer is slow, as when an upstream keeps
                # working while a gateway or a client gives up on it.
                await asyncio.sleep(delay)
            if rule is not None and rule.phase == "after":
                return await self._spoil(name, rule, request, response)
            stats.count_response(name, response.status_code)
            return response

        return endpoint

    async def _spoil(self, name: str, rule: FaultRule, request: Request, response: Response | None) -> Response:
        """The answer a fault leaves of ``response`` (None: the handler did not run)."""
        if rule.kind == "slow":
            await _delay(rule)
            assert response is not None
        elif rule.kind == "reset" and self._faults.reset(request.scope.get("client")):
            self._stats.count_response(name, "reset")
            # Let the server see the connection gone, so it drops the answer below instead of writing it.
            for _ in range(3):
                await asyncio.sleep(0)
            return no_content()
        else:
            response = fault_response(rule)
        self._stats.count_response(name, response.status_code)
        return response

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization")
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self._api_key is None or hmac.compare_digest(token.encode(), self._api_key)


async def _delay(rule: FaultRule) -> None:
    await asyncio.sleep((rule.delay_ms or 0.0) / 1000.0)


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


async def json_object(request: Request, *, fastapi_style: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 problem."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if fastapi_style:
            raise http_validation_error(["body"], "JSON decode error", "json_invalid") from exc
        raise validation_error("Request body is not valid JSON") from exc
    if not isinstance(body, dict):
        if fastapi_style:
            raise http_validation_error(["body"], "Input should be a valid dictionary", "dict_type")
        raise validation_error("Request body must be a JSON object")
    return body


def canonical_uuid(value: str) -> str | None:
    if len(value) == 36 and _UUID.match(value) and value == value.lower():
        return value
    if _UUID.match(value):
        return str(uuid.UUID(value))
    return None


def path_uuid(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    canonical = canonical_uuid(value)
    if canonical is None:
        raise validation_error(f"path.{name}: Input should be a valid UUID, got {value!r}")
    return canonical


def require_str(body: Mapping[str, Any], key: str, *, uuid_format: bool = False) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise validation_error(f"body.{key}: Field required (a string)")
    if uuid_format:
        canonical = canonical_uuid(value)
        if canonical is None:
            raise validation_error(f"body.{key}: Input should be a valid UUID, got {value!r}")
        return canonical
    return value


def require_str_list(body: Mapping[str, Any], key: str, *, uuid_format: bool = False) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(f"body.{key}: Field required (a list of strings)")
    if not uuid_format:
        return list(value)
    result: list[str] = []
    for index, item in enumerate(value):
        canonical = canonical_uuid(item)
        if canonical is None:
            raise validation_error(f"body.{key}.{index}: Input should be a valid UUID, got {item!r}")
        result.append(canonical)
    return result


def _query_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation_error(f"query.{name}: Input should be a valid integer, got {raw!r}") from None


def page_params(
    request: Request,
    *,
    default_size: int = 50,
    max_size: int = 100,
    first_page: int = 1,
    fastapi_style: bool = False,
) -> tuple[int, int]:
    """(page, page_size) from the query; 422 when page < first_page or page_size outside 1..max."""
    page = _query_int(request, "page", first_page)
    size = _query_int(request, "page_size", default_size)
    problem: str | None = None
    if page < first_page:
        problem = f"query.page: Input should be greater than or equal to {first_page}"
    elif not 1 <= size <= max_size:
        problem = f"query.page_size: Input should be between 1 and {max_size}"
    if problem is not None:
        if fastapi_style:
            raise http_validation_error(["query", "page" if "page:" in problem else "page_size"], problem)
        raise validation_error(problem)
    return page, size


def page_links(request: Request, page: int, size: int, count: int) -> tuple[str | None, str | None]:
    """URLs of the next and previous 1-based pages (null at the ends)."""
    last = (count + size - 1) // size
    next_url = str(request.url.include_query_params(page=page + 1, page_size=size)) if page < last else None
    previous_url = (
        str(request.url.include_query_params(page=min(page - 1, max(last, 1)), page_size=size)) if page > 1 else None
    )
    return next_url, previous_url


class _Named(Protocol):
    name: str
    created_at: float
    deleted_at: float | None


_T = TypeVar("_T", bound=_Named)


def name_search_page(request: Request, objects: Iterable[_T], *, key: str, to_json: Callable[[_T], object]) -> Response:
    """A 1-based page of live ``objects`` whose name holds ``q`` (any case), newest first, wrapped under ``key``.

    The caller holds the world's lock: the objects are read here.
    """
    page, size = page_params(request)
    query = (request.query_params.get("q") or "").lower()
    items = [o for o in objects if o.deleted_at is None and (not query or query in o.name.lower())]
    # Newest first; equal times keep the newest insertion first.
    items.reverse()
    items.sort(key=lambda o: o.created_at, reverse=True)
    results = [to_json(o) for o in items[(page - 1) * size : page * size]]
    next_url, previous_url = page_links(request, page, size, len(items))
    return json_response({key: page_json(results, len(items), next_url, previous_url)})
