"""``POST /v1/observability/spans/search`` (SDK ``beta.observability.spans.search_spans``; CONTRACT-3x.md §3).

Query ``from``, ``to`` (ISO-8601; a span is in the window when ``from <= start_time < to``), ``page_size``
(1..100, default 50) and ``cursor``; body ``{"search_expression": str | null}`` (`span_search`). Answer
``{"spans": {"results": [GetSpan ...], "next": url | null, "cursor": str | null}}``, newest span first.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .clock import parse_iso
from .errors import TRACES_FILTER_QUERY_PARSE_ERROR, observability_error, validation_error
from .models import Span
from .span_search import SearchExpressionError, compile_search_expression
from .telemetry import SPAN_FIELDS
from .web import Operations, json_object, json_response, page_params
from .world import World

__all__ = ["SPANS", "span_routes"]

SPANS = "/v1/observability/spans"

SortKey = tuple[float, str, str]


def span_routes(world: World, ops: Operations) -> list[Route]:
    async def search_spans(request: Request) -> Response:
        body = await json_object(request)
        expression = body.get("search_expression")
        if expression is not None and not isinstance(expression, str):
            raise validation_error("body.search_expression: Input should be a string or null")
        try:
            predicate = compile_search_expression(expression, SPAN_FIELDS)
        except SearchExpressionError as exc:
            raise observability_error(400, TRACES_FILTER_QUERY_PARSE_ERROR, f"search_expression: {exc}") from exc
        low, high = _time("from", request), _time("to", request)
        if low is not None and high is not None and low > high:
            raise validation_error("query.from: must not be after query.to")
        _, size = page_params(request)
        after = _decode_cursor(request.query_params.get("cursor"))
        with world.lock:
            found = [
                span
                for span in world.spans.values()
                if (low is None or span.start_ts >= low)
                and (high is None or span.start_ts < high)
                and (after is None or _sort_key(span) < after)
                and predicate(span.data)
            ]
            found.sort(key=_sort_key, reverse=True)
            chunk = found[:size]
            results = [span.data for span in chunk]
            cursor = next_url = None
            if len(found) > size:
                cursor = _encode_cursor(_sort_key(chunk[-1]))
                next_url = str(request.url.include_query_params(cursor=cursor, page_size=size))
            return json_response({"spans": {"results": results, "next": next_url, "cursor": cursor}})

    return [Route(SPANS + "/search", ops.wrap("search_spans", search_spans), methods=["POST"], name="search_spans")]


def _sort_key(span: Span) -> SortKey:
    return (span.start_ts, span.trace_id, span.span_id)


def _time(name: str, request: Request) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise validation_error(f"query.{name}: Input should be a valid datetime, got {raw!r}") from None


def _encode_cursor(key: SortKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> SortKey | None:
    if not cursor:
        return None
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ts, trace_id, span_id = raw
        return float(ts), str(trace_id), str(span_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise validation_error(f"query.cursor: invalid cursor {cursor!r}") from exc
