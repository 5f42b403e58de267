"""The jobs page: a small read-only Starlette app over the ledger.

Routes (all behind basic auth except the last two):

- ``/``: jobs, newest first, a page at a time (``?cursor=``, see :mod:`dashboard.paging`), filtered by ``?status=``,
  ``?kind=`` and a search ``?q=`` (job id, idempotency key or its prefix, dataset id or name); counts by status; the
  two charts over the last ``?hours=`` (:mod:`dashboard.charts`); schedules; dead letters;
- ``/datasets/{id}``: one dataset: its name, counts, jobs (paged and filtered the same way), schedules and charts;
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
from urllib.parse import quote

import redis
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
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

from . import chart_data, charts, formatting, queries
from .api import API_PREFIX, ApiOptions, build_api
from .auth import BasicAuthMiddleware
from .config import DashboardConfig
from .dataset_names import DatasetNames, api_fetcher
from .listing import BadQuery, ListQuery, read_query
from .metrics import CONTENT_TYPE, LedgerNumbers, render
from .ttl_cache import TtlCache
from .webhooks_page import webhooks_handler

__all__ = ["PUBLIC_PATHS", "build_app"]

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/metrics", "/healthz")
_REDIS_TIMEOUT_S = 1.0
# Longer than any dataset id the ledger holds (64): such a path names no dataset.
_MAX_DATASET_ID_CHARS = 64
# Charts drawn faster than this are drawn on every request (always current); slower ones are kept chart_ttl_s.
_CHART_CACHE_AFTER_S = 0.1


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
        fetch = None
        if config.api_base_url and config.api_key:
            fetch = api_fetcher(config.api_base_url, config.api_key)
        self.names = DatasetNames(fetch)
        self.charts: TtlCache[tuple[Markup, Markup]] = TtlCache(config.chart_ttl_s, min_cost_s=_CHART_CACHE_AFTER_S)

    def _page(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        base = {"refresh_s": self.config.refresh_s, "now": self.now()}
        return self.templates.TemplateResponse(
            request,
            name,
            {**base, **context},
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    def _bad_query(self, request: Request, exc: BadQuery) -> Response:
        return self._page(request, "error.html", {"title": "Bad filter", "message": str(exc)}, status_code=400)

    def _listing(
        self, session: Session, query: ListQuery, names: dict[str, str], path: str, dataset_id: str | None
    ) -> dict[str, Any]:
        """What the jobs list and its charts need, on the front page and on a dataset's page."""
        page = queries.job_page(session, query.filters, query.cursor, limit=self.config.page_size)
        scope = "" if dataset_id is None else f" on {names.get(dataset_id, dataset_id)}"

        def draw() -> tuple[Markup, Markup]:
            window = chart_data.chart_window(self.now(), query.hours)
            finished = chart_data.finished_per_bucket(session, window, dataset_id=dataset_id)
            lag = chart_data.detection_lag(session, window, dataset_id=dataset_id)
            return (
                charts.finished_chart(finished, window, scope=scope),
                charts.detection_lag_chart(lag, window, scope=scope),
            )

        # On a busy ledger the charts cost more than the rest of the page and move by the minute: drawn once for
        # the reloads of a few seconds (on a quiet one they are cheap, and drawn every time).
        finished_chart, lag_chart = self.charts.get((dataset_id, query.hours, scope), draw)
        return {
            "jobs": page.jobs,
            "older_url": None if page.older is None else query.link(path, page.older),
            "newer_url": None if page.newer is None else query.link(path, page.newer),
            "first_page": query.cursor is None,
            "query": query,
            "path": path,
            "names": names,
            "statuses": [s.value for s in JobStatus],
            "kinds": [k.value for k in ImportKind],
            "finished_chart": finished_chart,
            "lag_chart": lag_chart,
        }

    def index(self, request: Request) -> Response:
        names = self.names.names()
        try:
            query = read_query(request.query_params, names)
        except BadQuery as exc:
            return self._bad_query(request, exc)
        with self.sessions() as session:
            listing = self._listing(session, query, names, "/", None)
            by_status = queries.counts_by_status(session)
            schedules = queries.schedules(session, now=self.now(), lag_alert_s=self.config.watermark_lag_alert_s)
            letters, letters_waiting = queries.dead_letters(session)
        return self._page(
            request,
            "index.html",
            {
                **listing,
                "by_status": by_status,
                "total": sum(by_status.values()),
                "schedules": schedules,
                "dead_letters": letters,
                "dead_letters_waiting": letters_waiting,
            },
        )

    def dataset(self, request: Request) -> Response:
        dataset_id = str(request.path_params["dataset_id"])
        if len(dataset_id) > _MAX_DATASET_ID_CHARS or "\x00" in dataset_id:
            message = f"no dataset {dataset_id[:_MAX_DATASET_ID_CHARS]}"
            return self._page(request, "error.html", {"title": "No such dataset", "message": message}, 404)
        names = self.names.names()
        try:
            query = read_query(request.query_params, names, dataset_id=dataset_id)
        except BadQuery as exc:
            return self._bad_query(request, exc)
        path = "/datasets/" + quote(dataset_id, safe="")
        with self.sessions() as session:
            listing = self._listing(session, query, names, path, dataset_id)
            by_status = queries.counts_by_status(session, dataset_id=dataset_id)
            schedules = queries.schedules(
                session, now=self.now(), dataset_id=dataset_id, lag_alert_s=self.config.watermark_lag_alert_s
            )
        return self._page(
            request,
            "dataset.html",
            {
                **listing,
                "dataset_id": dataset_id,
                "dataset_name": names.get(dataset_id),
                "by_status": by_status,
                "total": sum(by_status.values()),
                "schedules": schedules,
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
        return self._page(request, "job.html", {"detail": detail, "job": detail.job, "names": self.names.names()})

    def metrics(self, request: Request) -> Response:
        now = self.now()
        return Response(render(self._ledger_numbers(now), self._worker_metrics(), now=now), media_type=CONTENT_TYPE)

    def _ledger_numbers(self, now: datetime) -> LedgerNumbers | None:
        try:
            with self.sessions() as session:
                return LedgerNumbers(
                    jobs=queries.counts_by_status_and_kind(session),
                    oldest_due_poll=queries.oldest_due_poll(session),
                    dead_letters_waiting=count_dead_letters(session, include_retried=False),
                    schedules=_schedule_states(session),
                    webhook_deliveries=delivery_counts(session),
                    partial_jobs=queries.partial_counts_by_kind(session),
                    duplicates_skipped=queries.duplicates_skipped_by_kind(session),
                    watermark_lags=queries.watermark_lags(session, now=now),
                    watermark_lag_alert_s=self.config.watermark_lag_alert_s,
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
        Route("/datasets/{dataset_id:path}", pages.dataset, name="dataset"),
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
