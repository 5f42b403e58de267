"""How one observation of a remote task changes a job: pure functions, no I/O.

The poller gathers observations (a task body, a 404, or an error) and hands each one here with the job as it is in
the ledger; what comes back is applied in one transaction. Keeping this pure makes the whole state machine testable
without a broker, a database or a server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api_client import ApiError, DatasetImportTask, NotFoundError
from store.models import TERMINAL_JOB_STATUSES, ImportJob, JobStatus
from store.scheduling import PollPolicy, next_poll
from store.state_machine import apply_transition, remote_to_job_status


@dataclass(frozen=True)
class Observation:
    """What one poll learned about a job's remote task: exactly one of ``task`` and ``error`` is set."""

    task: DatasetImportTask | None = None
    error: ApiError | None = None


@dataclass
class Applied:
    """The effect of one observation, for the caller's report and the finalize step."""

    job_id: str
    finished: bool = False
    status: JobStatus | None = None
    progress_moved: bool = False
    notes: list[str] = field(default_factory=list)


def apply_observation(
    job: ImportJob,
    observation: Observation,
    *,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
    stuck_after_s: float,
) -> Applied:
    """Update ``job`` in place from ``observation`` and schedule its next poll if it is still running."""
    applied = Applied(job_id=job.id)
    job.poll_count = (job.poll_count or 0) + 1
    job.lease_owner = None
    job.lease_expires_at = None

    if observation.error is not None:
        return _apply_error(job, observation.error, applied, now=now, policy=policy, rng=rng)
    assert observation.task is not None
    return _apply_task(job, observation.task, applied, now=now, policy=policy, rng=rng, stuck_after_s=stuck_after_s)


def expire_if_past_deadline(job: ImportJob, *, now: datetime) -> bool:
    """End a job that is past its deadline; True when it did."""
    if job.deadline_at is None or now < job.deadline_at or job.status in TERMINAL_JOB_STATUSES:
        return False
    apply_transition(job, JobStatus.EXPIRED, now=now, message=f"still {job.remote_status or job.status} at deadline")
    job.next_poll_at = None
    job.lease_owner = None
    job.lease_expires_at = None
    return True


def _apply_task(
    job: ImportJob,
    task: DatasetImportTask,
    applied: Applied,
    *,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
    stuck_after_s: float,
) -> Applied:
    status = str(task.status)
    if status != job.remote_status:
        job.remote_status = status
        job.remote_status_since = now
    applied.progress_moved = task.progress is not None and task.progress != job.progress
    if task.progress is not None:
        job.progress = task.progress
    if task.message is not None:
        job.message = task.message
    if task.result is not None:
        job.requested_count = task.result.requested_record_count
        job.imported_count = task.result.imported_record_count
        job.skipped_count = task.result.skipped_record_count
    job.last_error = None

    terminal = remote_to_job_status(status)
    if terminal is not None:
        apply_transition(job, terminal, now=now, progress=job.progress, message=task.message)
        job.next_poll_at = None
        applied.finished = True
        applied.status = terminal
        return applied

    # CONTINUED_AS_NEW, UNKNOWN and strings we do not know yet keep the job polling; one that sits in such a
    # state for too long is flagged so an operator sees it, but never ended on a guess.
    if status not in ("RUNNING",) and job.remote_status_since is not None:
        stuck_s = (now - job.remote_status_since).total_seconds()
        if stuck_s >= stuck_after_s:
            job.last_error = f"remote status {status} for {int(stuck_s)} s"
            applied.notes.append(job.last_error)
    if expire_if_past_deadline(job, now=now):
        applied.finished = True
        applied.status = JobStatus.EXPIRED
        return applied
    _schedule(job, applied.progress_moved, now=now, policy=policy, rng=rng)
    return applied


def _apply_error(
    job: ImportJob,
    error: ApiError,
    applied: Applied,
    *,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> Applied:
    if isinstance(error, NotFoundError):
        apply_transition(job, JobStatus.LOST, now=now, message=f"remote task {job.remote_task_id} not found: {error}")
        job.last_error = str(error)
        job.next_poll_at = None
        applied.finished = True
        applied.status = JobStatus.LOST
        return applied
    # Anything else (5xx, 429, a transport error) says nothing about the remote task: keep it and back off.
    job.last_error = f"poll failed: {error}"
    if expire_if_past_deadline(job, now=now):
        applied.finished = True
        applied.status = JobStatus.EXPIRED
        return applied
    _schedule(job, False, now=now, policy=policy, rng=rng)
    return applied


def _schedule(job: ImportJob, progress_moved: bool, *, now: datetime, policy: PollPolicy, rng: random.Random) -> None:
    job.next_poll_at, job.poll_interval_s = next_poll(
        policy,
        previous_interval_s=job.poll_interval_s,
        progress_moved=progress_moved,
        now=now,
        rng=rng,
    )


def first_poll_at(now: datetime, policy: PollPolicy) -> datetime:
    """When a freshly accepted job is first polled."""
    return now + timedelta(seconds=policy.initial_interval_s)
