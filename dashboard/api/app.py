"""The HTTP API as a Starlette app, mounted by the jobs page at :data:`API_PREFIX` behind its own bearer tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from triggers.messages.intake import Intake
from triggers.messages.message_model import DEFAULT_MAX_BYTES

from .auth import TokenCheck
from .endpoint import ApiContext
from .errors import exception_handlers
from .jobs_routes import job_routes
from .openapi import openapi_document
from .schedules_routes import schedule_routes
from .sender import ApiSender

__all__ = ["API_PREFIX", "ApiOptions", "build_api"]

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class ApiOptions:
    """How the API requests imports: ``sender`` hands new jobs and manual fires to the workers (None: new jobs
    wait for the recovery sweep, run-now answers 503); ``job_deadline_s`` and ``max_message_bytes`` are the
    service's (``DSIMPORT_JOB_DEADLINE_S``, ``DSIMPORT_MESSAGE_MAX_BYTES``), so a request over HTTP gets the
    deadline and size limit a queue message gets."""

    sender: ApiSender | None = None
    job_deadline_s: float = 6 * 3600.0
    max_message_bytes: int = DEFAULT_MAX_BYTES


def _no_send(job_id: str) -> None:
    """Without a broker the job stays PENDING; the recovery sweep sends it."""


def build_api(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    options: ApiOptions,
    *,
    now: Callable[[], datetime],
) -> Starlette:
    sender = options.sender
    intake = Intake(
        session_factory=write_sessions,
        send=sender.submit if sender is not None else _no_send,
        deadline_s=options.job_deadline_s,
        max_bytes=options.max_message_bytes,
        now=now,
    )
    ctx = ApiContext(
        read_sessions=read_sessions,
        write_sessions=write_sessions,
        tokens=TokenCheck(read_sessions, write_sessions, now),
        intake=intake,
        sender=sender,
        now=now,
        max_body_bytes=options.max_message_bytes,
    )

    def document(request: Request) -> Response:
        return JSONResponse(openapi_document())

    routes = [
        *job_routes(ctx),
        *schedule_routes(ctx),
        Route("/openapi.json", document, methods=["GET"], name="openapi"),
    ]
    return Starlette(routes=routes, exception_handlers=exception_handlers())
