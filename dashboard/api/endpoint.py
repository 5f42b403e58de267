"""What every API handler shares: the token check, the body read with a size limit, and the thread pool.

A handler is a plain function of a :class:`Call`; :func:`endpoint` makes it a Starlette endpoint that checks the
token first (so a refused caller never gets its body read), reads the body up to the limit, and runs the handler
in Starlette's thread pool, where its blocking ledger reads and writes cannot stall the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.errors import DatabaseUnavailableError
from store.lock_retry import DatabaseLockedError
from store.models import TokenScope
from triggers.messages.intake import Intake

from .auth import Caller, TokenCheck
from .errors import ApiProblem
from .sender import ApiSender

__all__ = ["ApiContext", "Call", "answer", "endpoint", "json_body"]


@dataclass(frozen=True)
class ApiContext:
    """What the handlers work with: read-only and writing sessions, the intake of import requests, the sender."""

    read_sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    tokens: TokenCheck
    intake: Intake
    sender: ApiSender | None
    now: Callable[[], datetime]
    max_body_bytes: int


@dataclass(frozen=True)
class Call:
    """One request, authenticated: its path parameters, query, headers, caller and body."""

    request: Request
    caller: Caller
    body: bytes

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


def answer(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        model.model_dump(mode="json"), status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


async def _read_body(request: Request, max_bytes: int) -> bytes:
    # Read in pieces and stop past the limit: a client cannot make the server hold an unbounded body.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiProblem(413, f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(
    ctx: ApiContext, needed: TokenScope, handler: Callable[[Call], Response]
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running ``handler`` for callers whose token covers ``needed``."""

    async def run(request: Request) -> Response:
        caller = await run_in_threadpool(ctx.tokens.caller, request.headers.get("authorization"), needed)
        body = await _read_body(request, ctx.max_body_bytes)
        try:
            return await run_in_threadpool(handler, Call(request, caller, body))
        except (DatabaseUnavailableError, DatabaseLockedError) as exc:
            # The ledger is down or stayed locked past its retry budget: nothing was written, try again later.
            raise ApiProblem(503, f"the ledger cannot answer now: {exc}") from None

    run.__name__ = handler.__name__
    return run


def json_body(call: Call) -> Any:
    """The request body as JSON, or a 422 saying why it is not."""
    try:
        return json.loads(call.body)
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(422, f"the body is not JSON: {str(exc).split(':')[0]}") from None
