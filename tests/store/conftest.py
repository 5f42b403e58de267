"""Helpers for the ledger tests: a fixed clock, job builders and a way to run things at the same moment."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from store.jobs import begin_submit, create_job
from store.models import ImportJob, ImportKind
from store.scheduling import PollPolicy
from store.tracking import record_submit_accepted

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
    record_submit_accepted(
        submitted,
        remote_task_id=f"task-{key}",
        remote_status="RUNNING",
        progress=0,
        message=None,
        now=now,
        policy=POLICY,
        rng=random.Random(0),
    )
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
