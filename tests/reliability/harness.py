"""What the fault tests share: Redis databases of their own, requests by stream message, and the final count.

The final count compares the ledger with the emulator's stats. A job is *lost* when its request never became a
job, or the job never reached a terminal state. A remote import is *doubled* when the emulator started a task that
no job owns, or two jobs own the same task: either way something was imported twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.jobs import get_job_by_key
from store.models import TERMINAL_JOB_STATUSES, ImportJob, JobEvent
from tests.fixtures.redis_db import redis_test_url
from triggers.messages.message_model import idempotency_key

STREAM = "dsimport:requests"

# Settings that make a crash cost seconds instead of minutes: short leases (a SUBMITTING job left by a broken
# submit is looked at after lease_s), a frequent recovery sweep, quick re-sends of PENDING jobs, and stream
# entries taken over soon after a failure.
FAST_RECOVERY_ENV = {
    "DSIMPORT_LEASE_S": "3",
    # A call made under a lease must end within it (checked at start-up): 1.4 s x 2 attempts < 3 s.
    "DSIMPORT_API_TIMEOUT_S": "1.4",
    "DSIMPORT_API_MAX_ATTEMPTS": "2",
    "DSIMPORT_RECOVERY_INTERVAL_S": "1",
    "DSIMPORT_STALE_PENDING_S": "3",
    "DSIMPORT_STREAM_BLOCK_S": "0.5",
    "DSIMPORT_STREAM_CLAIM_MIN_IDLE_S": "2",
    "DSIMPORT_STREAM_CLAIM_INTERVAL_S": "0.5",
    "DSIMPORT_STREAM_BACKOFF_MAX_S": "1",
}


def shared_redis_url(db: int) -> str:
    """Database ``db`` of the shared test Redis server (the one ``DSIMPORT_TEST_REDIS_URL`` names)."""
    shared = redis_test_url("DSIMPORT_TEST_REDIS_URL", 11)
    base = shared.rsplit("/", 1)[0] if shared.count("/") > 2 else shared
    return f"{base}/{db}"


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.2)


def explorer_message(message_id: str, dataset_id: str, event_id: str) -> bytes:
    body = {"id": message_id, "kind": "explorer", "dataset_id": dataset_id, "completion_event_ids": [event_id]}
    return json.dumps(body).encode()


def message_jobs(sessions: sessionmaker[Session], message_ids: Iterable[str]) -> dict[str, str | None]:
    """The job id of each message (None while no worker has turned it into a job)."""
    with sessions() as session:
        found = {}
        for message_id in message_ids:
            job = get_job_by_key(session, idempotency_key(message_id))
            found[message_id] = job.id if job is not None else None
        return found


def all_jobs(sessions: sessionmaker[Session]) -> dict[str, ImportJob]:
    with sessions() as session:
        jobs = {job.id: job for job in session.scalars(select(ImportJob))}
        session.expunge_all()
    return jobs


@dataclass
class Count:
    """The figures of a run: what was asked, what ended how, what was lost or doubled."""

    requested: int
    jobs: int
    by_status: dict[str, int]
    lost: int
    doubled: int
    remote_tasks: int
    # Jobs holding a remote task of another kind than their own: adopted another job's import.
    mislabelled: int = 0
    not_terminal: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"requested={self.requested} jobs={self.jobs} remote_tasks={self.remote_tasks} "
            f"lost={self.lost} doubled={self.doubled} mislabelled={self.mislabelled} "
            f"statuses={dict(sorted(self.by_status.items()))}"
        )


def count(jobs: dict[str, ImportJob], stats: dict[str, Any], *, requested: int) -> Count:
    """Compare the ledger's jobs with the tasks the emulator started (``stats`` with tasks)."""
    owners = Counter(job.remote_task_id for job in jobs.values() if job.remote_task_id)
    shared = sum(n - 1 for n in owners.values() if n > 1)
    not_terminal = [job_id for job_id, job in jobs.items() if job.status not in TERMINAL_JOB_STATUSES]
    # tasks_created counts every task ever started, deleted ones included; the task list shows the live ones.
    created = sum(stats["tasks_created"].values())
    unowned = set(stats["tasks"]) - set(owners)
    assert created >= len(owners), "a job owns a remote task the emulator never started"
    return Count(
        requested=requested,
        jobs=len(jobs),
        by_status=dict(Counter(str(job.status) for job in jobs.values())),
        lost=max(requested - len(jobs), 0) + len(not_terminal),
        doubled=shared + max(created - len(owners), len(unowned)),
        remote_tasks=created,
        mislabelled=sum(
            1
            for job in jobs.values()
            if job.remote_task_id in stats["tasks"] and stats["tasks"][job.remote_task_id]["kind"] != str(job.kind)
        ),
        not_terminal=not_terminal,
    )


def recovered(sessions: sessionmaker[Session]) -> int:
    """Jobs that needed the recovery sweep: re-sent, or given a remote task found after a broken submit."""
    with sessions() as session:
        rows = session.scalars(
            select(JobEvent.job_id).where(
                (JobEvent.message.like("adopted%")) | (JobEvent.message.like("no remote task%"))
            )
        )
        adopted_or_reset = set(rows)
        resubmitted = set(session.scalars(select(ImportJob.id).where(ImportJob.attempts > 1)))
    return len(adopted_or_reset | resubmitted)
