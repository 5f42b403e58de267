"""Jobs-page fixtures: a ledger with jobs in every interesting state, the app on it, and Redis database 9."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from store.jobs import create_job
from store.models import ImportJob, ImportKind, JobStatus
from store.state_machine import apply_transition
from tests.fixtures.redis_db import flushed_redis, redis_test_url

from .server import serve

TEST_REDIS_URL = redis_test_url("DSIMPORT_TEST_DASHBOARD_REDIS_URL", 9)
USER = "watcher"
PASSWORD = "s3cret-pass-for-tests"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def auth_header(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def add_job(
    session: Session,
    key: str,
    *,
    kind: ImportKind = ImportKind.CAMPAIGN,
    dataset_id: str = "ds-1",
    created: datetime = NOW - timedelta(minutes=5),
) -> ImportJob:
    job, was_created = create_job(
        session,
        kind=kind,
        dataset_id=dataset_id,
        params={"campaign_id": "c-1"},
        idempotency_key=key,
        origin="test",
        deadline_at=None,
        now=created,
    )
    assert was_created
    return job


def move(job: ImportJob, *statuses: JobStatus, progress: int | None = None, message: str | None = None) -> None:
    at = job.created_at
    for status in statuses:
        at = at + timedelta(seconds=10)
        apply_transition(job, status, now=at, progress=progress, message=message)


@dataclass(frozen=True)
class Ledger:
    """Ids of the jobs the ``ledger`` fixture wrote."""

    pending: str
    running: str
    completed: str
    failed: str
    explorer: str


@pytest.fixture
def ledger(session_factory: sessionmaker[Session]) -> Ledger:
    with session_factory() as session:
        pending = add_job(session, "pending")
        running = add_job(session, "running")
        move(running, JobStatus.SUBMITTING, JobStatus.RUNNING, progress=40)
        completed = add_job(session, "completed")
        move(completed, JobStatus.SUBMITTING, JobStatus.RUNNING)
        apply_transition(completed, JobStatus.COMPLETED, now=NOW - timedelta(minutes=1), progress=100)
        completed.imported_count = 7
        failed = add_job(session, "failed")
        move(failed, JobStatus.SUBMITTING)
        failed.last_error = "HTTP 422: campaign c-1 has no events"
        apply_transition(failed, JobStatus.REJECTED, now=NOW - timedelta(minutes=2), message="the API refused it")
        explorer = add_job(
            session, "explorer", kind=ImportKind.EXPLORER, dataset_id="ds-2", created=NOW - timedelta(minutes=1)
        )
        session.commit()
        return Ledger(pending.id, running.id, completed.id, failed.id, explorer.id)


@pytest.fixture
def config(database_url: str) -> DashboardConfig:
    return DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, refresh_s=3)


@pytest.fixture
def client(config: DashboardConfig) -> Iterator[httpx.Client]:
    with serve(build_app(config, now=lambda: NOW)) as http:
        yield http


@pytest.fixture
def metrics_redis() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url
