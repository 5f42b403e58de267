"""Building the Starlette application that serves an `Emulator`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .clock import Clock
from .config import EmulatorSettings
from .routes_admin import admin_routes
from .routes_datasets import dataset_routes
from .routes_files import file_routes
from .routes_playground import conversation_routes
from .routes_sources import source_routes
from .runtime import Emulator
from .web import json_response

__all__ = ["build_app"]


async def _http_error(_: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return json_response({"detail": detail}, status, getattr(exc, "headers", None))


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
        *source_routes(world, ops),
        *conversation_routes(world, ops),
        *file_routes(world, ops),
        *admin_routes(emulator),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.emulator = emulator
    return app
