"""Builds the tasks' runtime from settings: database sessions, API clients, poll policy."""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy import Engine

from api_client import AsyncDatasetsClient, DatasetsClient, RetryPolicy
from jobs import metrics
from jobs.poll_backoff import PollPolicy
from jobs.runtime import JobTuning, Runtime
from store.clock import use_database_clock
from store.db import make_engine, make_session_factory
from worker.settings import Settings


def job_tuning(settings: Settings) -> JobTuning:
    return JobTuning(
        lease_s=settings.lease_s,
        poll_batch_size=settings.poll_batch_size,
        poll_concurrency=settings.poll_concurrency,
        poll_round_budget_s=settings.poll_round_budget_s,
        poll_group_threshold=settings.poll_group_threshold,
        submit_max_retries=settings.submit_max_retries,
        submit_retry_backoff_s=settings.submit_retry_backoff_s,
        job_deadline_s=settings.job_deadline_s,
        stuck_remote_status_s=settings.stuck_remote_status_s,
        stale_pending_s=settings.stale_pending_s,
        skip_existing_refresh_s=settings.skip_existing_refresh_s,
        post_deadline_s=settings.api_timeout_s,
        schedule_settle_lag_s=settings.schedule_settle_lag_s,
        clock_offset_s=settings.clock_offset_s,
    )


def poll_policy(settings: Settings) -> PollPolicy:
    return PollPolicy(
        initial_interval_s=settings.poll_initial_interval_s,
        multiplier=settings.poll_multiplier,
        max_interval_s=settings.poll_max_interval_s,
        jitter_ratio=settings.poll_jitter_ratio,
        forecast_fraction=settings.poll_forecast_fraction,
    )


class KeptOpenClient(DatasetsClient):
    """The runtime's one sync client: tasks use it in a ``with`` block, which leaves it open for the next task.

    Opening an httpx client costs tens of milliseconds (it builds a TLS context) and then a new connection; for a
    submit, that was most of its time (``bench/submit.py``). One client per runtime, and so per worker process (the
    runtime is rebuilt after a fork), keeps its connections alive between tasks. httpx clients are thread-safe.
    """

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def ledger_engine(settings: Settings) -> Engine:
    """An engine on the ledger, as every process of the service opens it (tasks, stream consumer, beat)."""
    engine = make_engine(settings.database_url, **settings.engine_options())
    if settings.count_sql_statements:
        metrics.count_sql_statements(engine)
    return engine


def build_runtime(settings: Settings) -> Runtime:
    engine = ledger_engine(settings)
    api_key = settings.require_api_key()
    # Reads are retried inside the client; a POST import is not (no idempotency key): the submit task retries.
    retry = RetryPolicy(max_attempts=settings.api_max_attempts)

    lock = threading.Lock()
    kept: list[DatasetsClient] = []

    def client() -> DatasetsClient:
        with lock:
            if not kept:
                timeout_s = settings.api_timeout_s
                kept.append(KeptOpenClient(api_key, base_url=settings.api_base_url, timeout_s=timeout_s, retry=retry))
            return kept[0]

    def async_client() -> AsyncDatasetsClient:
        return AsyncDatasetsClient(
            api_key,
            base_url=settings.api_base_url,
            timeout_s=settings.api_timeout_s,
            retry=retry,
            max_connections=settings.api_max_connections,
        )

    return Runtime(
        # Leases and due times run on the database's clock, whatever this host's clock says (see store.clock).
        session_factory=use_database_clock(make_session_factory(engine)),
        client_factory=client,
        async_client_factory=async_client,
        poll_policy=poll_policy(settings),
        tuning=job_tuning(settings),
    )
