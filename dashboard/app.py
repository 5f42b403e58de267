"""The jobs page: a small read-only Starlette app over the ledger.

Routes (all behind basic auth except the last two):

- ``/``: jobs (newest first; ``?status=`` and ``?kind=`` filter), counts by status, schedules, dead letters;
- ``/jobs/{id}``: one job, its event history and last error;
- ``/webhooks``: the webhooks and their delivery log (:mod:`dashboard.webhooks_page`);
- ``/metrics``: Prometheus text (counts only, see :mod:`dashboard.metrics`);
- ``/healthz``: 200 when the ledger answers a query at the expected schema, else 503;
- ``/api/v1/...``: the HTTP API (:mod:`dashboard.api`), behind bearer tokens instead of the login.

Templates are Jinja2 with autoescaping on for everything, so a dataset name, message or request body holding HTML
stays text. Handlers are plain functions: Starlette runs them in its thread pool, so the blocking database reads
never stall the event loop. Sessions are read-only (on SQLite they take no write lock).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import redis
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates

from jobs.metrics import WorkerMetrics, read_metrics
from store.db import check_migrated, make_engine, make_session_factory
from store.dead_letters import count_dead_letters
from store.errors import StoreError
from store.models import ImportKind, JobStatus, Schedule
from store.webhooks import delivery_counts

from . import formatting, queries
from .api import API_PREFIX, ApiOptions, build_api
from .auth import BasicAuthMiddleware
from .config import DashboardConfig
from .metrics import CONTENT_TYPE, LedgerNumbers, render
from .webhooks_page import webhooks_handler

__all__ = ["PUBLIC_PATHS", "build_app"]

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/metrics", "/healthz")
_REDIS_TIMEOUT_S = 1.0


def _environment() -> Environment:
    # Autoescaping on for every template, whatever its file name, and a typo in a template fails loudly.
    env = Environment(
        loader=PackageLoader("dashboard", "templates"), autoescape=True, undefined=StrictUndefined
    )
    env.globals.update(age=formatting.age, timestamp=formatting.timestamp)
    return env


class _Pages:
    """The route handlers, sharing the session factory and the config."""

    def __init__(
        self,
        config: DashboardConfig,
        sessions: sessionmaker[Session],
        engine: Engine,
        metrics_client: redis.Redis | None,
        now: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.engine = engine
        self.metrics_client = metrics_client
        self.now = now
        self.templates = Jinja2Templates(env=_environment())

    def _page(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        base = {"refresh_s": self.config.refresh_s, "now": self.now()}
        return self.templates.TemplateResponse(
            request,
            name,
            {**base, **context},
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    def index(self, request: Request) -> Response:
        status_text = request.query_params.get("status") or None
        kind_text = request.query_params.get("kind") or None
        try:
            status = None if status_text is None else JobStatus(status_text)
            kind = None if kind_text is None else ImportKind(kind_text)
        except ValueError:
            message = (
                f"unknown filter: status must be one of {', '.join(JobStatus)}; kind one of {', '.join(ImportKind)}"
            )
            return self._page(request, "error.html", {"title": "Bad filter", "message": message}, status_code=400)
        now = self.now()
        with self.sessions() as session:
            jobs = queries.jobs(session, status=status, kind=kind, limit=self.config.page_size)
            counts = queries.counts_by_status_and_kind(session)
            schedules = queries.schedules(session, now=now)
            letters, letters_waiting = queries.dead_letters(session)
        by_status = {s.value: sum(n for (st, _), n in counts.items() if st == s.value) for s in JobStatus}
        return self._page(
            request,
            "index.html",
            {
                "jobs": jobs,
                "status": status_text or "",
                "kind": kind_text or "",
                "statuses": [s.value for s in JobStatus],
                "kinds": [k.value for k in ImportKind],
                "by_status": by_status,
                "total": sum(by_status.values()),
                "schedules": schedules,
                "dead_letters": letters,
                "dead_letters_waiting": letters_waiting,
                "page_size": self.config.page_size,
            },
        )

    def job(self, request: Request) -> Response:
        job_id = str(request.path_params["job_id"])
        detail = None
        # Job ids are UUIDs: anything else names no job, and must not reach the database (PostgreSQL refuses NUL).
        if _is_uuid(job_id):
            with self.sessions() as session:
                detail = queries.job_detail(session, job_id)
        if detail is None:
            return self._page(
                request, "error.html", {"title": "No such job", "message": f"no job {job_id}"}, status_code=404
            )
        return self._page(request, "job.html", {"detail": detail, "job": detail.job})

    def metrics(self, request: Request) -> Response:
        now = self.now()
        return Response(render(self._ledger_numbers(), self._worker_metrics(), now=now), media_type=CONTENT_TYPE)

    def _ledger_numbers(self) -> LedgerNumbers | None:
        try:
            with self.sessions() as session:
                return LedgerNumbers(
                    jobs=queries.counts_by_status_and_kind(session),
                    oldest_due_poll=queries.oldest_due_poll(session),
                    dead_letters_waiting=count_dead_letters(session, include_retried=False),
                    schedules=_schedule_states(session),
                    webhook_deliveries=delivery_counts(session),
                )
        except Exception as exc:  # an unreachable or broken ledger is reported by the up gauge, not a 500
            log.warning("metrics: cannot read the ledger: %s", exc)
            return None

    def _worker_metrics(self) -> WorkerMetrics | None:
        if self.metrics_client is None:
            return None
        try:
            return read_metrics(self.metrics_client)
        except redis.RedisError as exc:
            log.warning("metrics: cannot read the workers' metrics: %s", exc)
            return None

    def healthz(self, request: Request) -> Response:
        try:
            check_migrated(self.engine)
        except StoreError as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})


def _schedule_states(session: Session) -> dict[str, int]:
    query = select(Schedule.paused, Schedule.finished_at.is_not(None), func.count()).group_by(
        Schedule.paused, Schedule.finished_at.is_not(None)
    )
    states: dict[str, int] = {}
    for paused, finished, count in session.execute(query):
        state = "finished" if finished else ("paused" if paused else "active")
        states[state] = states.get(state, 0) + int(count)
    return states


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build_app(
    config: DashboardConfig,
    *,
    sessions: sessionmaker[Session] | None = None,
    now: Callable[[], datetime] = _utcnow,
    api: ApiOptions | None = None,
) -> Starlette:
    """The jobs page for ``config``; ``sessions`` replaces the read-only session factory built from its URL;
    ``api`` configures the HTTP API (the only part that writes to the ledger)."""
    engine = make_engine(config.database_url)
    metrics_client = None
    if config.metrics_redis_url:
        metrics_client = redis.Redis.from_url(
            config.metrics_redis_url, socket_connect_timeout=_REDIS_TIMEOUT_S, socket_timeout=_REDIS_TIMEOUT_S
        )
    read_sessions = sessions or make_session_factory(engine, read_only=True)
    pages = _Pages(config, read_sessions, engine, metrics_client, now)
    routes = [
        Route("/", pages.index, name="index"),
        Route("/jobs/{job_id}", pages.job, name="job"),
        Route("/webhooks", webhooks_handler(pages.sessions, pages._page), name="webhooks"),
        Route("/metrics", pages.metrics, name="metrics"),
        Route("/healthz", pages.healthz, name="healthz"),
        Mount(API_PREFIX, app=build_api(read_sessions, make_session_factory(engine), api or ApiOptions(), now=now)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()
            if metrics_client is not None:
                metrics_client.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(
        BasicAuthMiddleware,
        username=config.username,
        password=config.password,
        realm=config.realm,
        public_paths=PUBLIC_PATHS,
        # The API checks its own bearer tokens (dashboard/api/auth.py).
        public_prefixes=(API_PREFIX + "/",),
    )
    return app
