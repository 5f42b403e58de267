"""Building the Starlette application that serves an `Emulator`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from .clock import Clock
from .config import EmulatorSettings
from .errors import UNKNOWN_ERROR, observability_error, route_not_found
from .routes_admin import admin_routes
from .routes_datasets import dataset_routes
from .routes_files import file_routes
from .routes_playground import conversation_routes
from .routes_records import record_routes
from .routes_sources import source_routes
from .routes_spans import span_routes
from .runtime import Emulator
from .web import json_response

__all__ = ["build_app"]


async def _http_error(request: Request, exc: Exception) -> Response:
    """The framework's own answers (no such route, wrong method) in the API's error shape.

    Starlette would answer ``{"detail": "Not Found"}``, which the SDK cannot parse as an ``ObservabilityError``.
    """
    if not isinstance(exc, HTTPException):
        problem = observability_error(500, UNKNOWN_ERROR, "Internal Server Error")
    elif exc.status_code == 404:
        problem = route_not_found(request.method, request.url.path)
    elif exc.status_code == 405:
        problem = observability_error(405, None, f"Method Not Allowed: {request.method} {request.url.path}")
    else:
        problem = observability_error(exc.status_code, None, str(exc.detail))
    headers = dict(getattr(exc, "headers", None) or {})
    if problem.status == 405:
        # Starlette names only the first route that matched the path; a path has one route per method here.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return json_response(problem.body, problem.status, headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE and isinstance(route, Route) and route.methods:
            allowed |= route.methods
    return sorted(allowed)


def build_app(settings: EmulatorSettings | None = None, *, clock: Clock | None = None) -> Starlette:
    """The emulator as an ASGI app; ``app.state.emulator`` is the `Emulator` behind it.

    The state file (or the seed fixture) is loaded here; the state is saved on shutdown.
    """
    emulator = Emulator(settings or EmulatorSettings(), clock=clock)
    emulator.boot()
    world, ops = emulator.world, emulator.ops

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        emulator.save()

    routes = [
        *dataset_routes(world, ops, emulator.stats),
        *record_routes(world, ops),
        *span_routes(world, ops),
        *source_routes(world, ops),
        *conversation_routes(world, ops),
        *file_routes(world, ops),
        *admin_routes(emulator),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
    app.state.emulator = emulator
    return app
