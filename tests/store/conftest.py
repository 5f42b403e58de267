"""Helpers for the ledger tests: a fixed clock, job builders and a way to run things at the same moment."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from api_client import DatasetImportTask
from jobs import transitions
from jobs.poll_backoff import PollPolicy
from store.jobs import begin_submit, create_job
from store.models import ImportJob, ImportKind

T = TypeVar("T")

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(initial_interval_s=1.0, multiplier=2.0, max_interval_s=8.0, jitter_ratio=0.0)


def add_job(
    session: Session,
    key: str,
    *,
    now: datetime = NOW,
    dataset_id: str = "ds-1",
    deadline_at: datetime | None = None,
) -> ImportJob:
    job, created = create_job(
        session,
        kind=ImportKind.CAMPAIGN,
        dataset_id=dataset_id,
        params={"campaign_id": "c-1"},
        idempotency_key=key,
        origin="test",
        deadline_at=deadline_at,
        now=now,
    )
    assert created
    return job


def add_running_job(
    session: Session, key: str, *, next_poll_at: datetime, now: datetime = NOW, dataset_id: str = "ds-1"
) -> ImportJob:
    """A RUNNING job owning remote task ``task-<key>``, due at ``next_poll_at``."""
    job = add_job(session, key, now=now, dataset_id=dataset_id)
    submitted = begin_submit(session, job.id, owner="submitter", now=now, lease_s=30)
    assert submitted is not None
    transitions.accepted(submitted, remote_task(f"task-{key}", progress=0), now=now, policy=POLICY, message="accepted")
    submitted.next_poll_at = next_poll_at
    return submitted


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def run_concurrently(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0..count-1)`` on ``count`` threads released at the same instant; re-raise any failure."""
    barrier = threading.Barrier(count)

    def start(index: int) -> T:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start, index) for index in range(count)]
        return [future.result(timeout=60) for future in futures]


def remote_task(task_id: str, status: str = "RUNNING", progress: int | None = None) -> DatasetImportTask:
    """A task body as the API returns it."""
    return DatasetImportTask.model_validate(
        {
            "id": task_id, "created_at": "2026-01-01T11:59:00Z", "updated_at": "2026-01-01T12:00:00Z",
            "deleted_at": None, "creator_id": "u", "dataset_id": "ds-1", "workspace_id": "w",
            "status": status, "progress": progress, "message": None,
        }
    )  # fmt: skip


def observe(job: ImportJob, status: str, *, now: datetime, progress: int | None = None) -> None:
    """Apply one poll answer the way the poller does (jobs.transitions.apply_observation)."""
    observation = transitions.Observation(task=remote_task(job.remote_task_id or "t", status, progress))
    transitions.apply_observation(job, observation, now=now, policy=POLICY, rng=random.Random(0), stuck_after_s=600)
