"""Turning what the API said into job updates: submit accepted, submit failed, a poll's answer.

These keep the job's bookkeeping consistent in one place: the raw remote status and when it last changed,
progress (unknown stays unknown), counts, the poll schedule and the lease. They change the ORM object and
add event rows; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.errors import InvalidTransition, JobAlreadyFinishedError
from store.models import TERMINAL_JOB_STATUSES, ImportJob, JobEvent, JobStatus
from store.scheduling import PollPolicy, UniformSource, next_poll
from store.state_machine import apply_transition, check_transition, record_progress, remote_to_job_status

__all__ = [
    "ImportCounts",
    "PollRecord",
    "record_poll",
    "record_submit_accepted",
    "record_submit_failed",
]


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """Record counts a finished remote import reports."""

    requested: int | None = None
    imported: int | None = None
    skipped: int | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What recording a poll did to the job."""

    event: JobEvent | None
    """The status-change event, when the job's status changed."""
    moved: bool
    """Progress or the raw remote status changed since the previous poll."""
    finished: bool
    """The job reached a terminal status."""


def _set_remote_status(job: ImportJob, remote_status: str, now: datetime) -> bool:
    if job.remote_status == remote_status:
        return False
    job.remote_status = remote_status
    job.remote_status_since = now
    return True


def _set_counts(job: ImportJob, counts: ImportCounts | None) -> None:
    if counts is None:
        return
    if counts.requested is not None:
        job.requested_count = counts.requested
    if counts.imported is not None:
        job.imported_count = counts.imported
    if counts.skipped is not None:
        job.skipped_count = counts.skipped


def _schedule(
    job: ImportJob, *, moved: bool, now: datetime, policy: PollPolicy, rng: UniformSource, first: bool
) -> None:
    job.next_poll_at, job.poll_interval_s = next_poll(
        policy,
        previous_interval_s=None if first else job.poll_interval_s,
        progress_moved=moved,
        now=now,
        rng=rng,
    )
    job.lease_owner = None
    job.lease_expires_at = None


def record_submit_accepted(
    job: ImportJob,
    *,
    remote_task_id: str,
    remote_status: str,
    progress: int | None,
    message: str | None,
    now: datetime,
    policy: PollPolicy,
    rng: UniformSource,
    counts: ImportCounts | None = None,
) -> JobEvent:
    """The API accepted a SUBMITTING job and returned its task.

    The job becomes RUNNING with its first poll scheduled, or goes straight to the terminal status the
    returned task already has. The submit lease is released.
    """
    terminal = remote_to_job_status(remote_status)
    check_transition(job.id, job.status, terminal or JobStatus.RUNNING)
    job.remote_task_id = remote_task_id
    job.submitted_at = now
    job.last_error = None
    _set_remote_status(job, remote_status, now)
    if terminal is not None:
        _set_counts(job, counts)
        return apply_transition(job, terminal, now=now, progress=progress, message=message)
    _schedule(job, moved=True, now=now, policy=policy, rng=rng, first=True)
    return apply_transition(job, JobStatus.RUNNING, now=now, progress=progress, message=message)


def record_submit_failed(
    job: ImportJob, *, error: str, retryable: bool, now: datetime, error_code: str | None = None
) -> JobEvent:
    """Sending a SUBMITTING job's request failed.

    ``retryable`` (network error, 5xx, 429: the API did not take the request) puts the job back to PENDING for
    another attempt; otherwise the API refused it for good and the job is REJECTED.
    """
    check_transition(job.id, job.status, JobStatus.PENDING if retryable else JobStatus.REJECTED)
    job.last_error = error
    if retryable:
        return apply_transition(job, JobStatus.PENDING, now=now)
    job.error_code = error_code
    return apply_transition(job, JobStatus.REJECTED, now=now, message=error)


def record_poll(
    job: ImportJob,
    *,
    remote_status: str,
    progress: int | None,
    message: str | None,
    now: datetime,
    policy: PollPolicy,
    rng: UniformSource,
    counts: ImportCounts | None = None,
) -> PollRecord:
    """A RUNNING job's remote task was fetched and reported ``remote_status``.

    A remote terminal status ends the job. Anything else (``RUNNING``, ``CONTINUED_AS_NEW``, ``UNKNOWN``,
    unknown strings) keeps it RUNNING and schedules the next poll: backoff grows while nothing moves and
    restarts when progress or the raw status changes. The poll lease is released either way.

    :raises InvalidTransition: the job is not RUNNING (for example, cancelled while it was being polled).
    """
    if job.status is not JobStatus.RUNNING:
        if job.status in TERMINAL_JOB_STATUSES:
            raise JobAlreadyFinishedError(job.id, job.status, JobStatus.RUNNING)
        raise InvalidTransition(job.id, job.status, JobStatus.RUNNING)
    job.poll_count += 1
    status_changed = _set_remote_status(job, remote_status, now)
    terminal = remote_to_job_status(remote_status)
    if terminal is not None:
        _set_counts(job, counts)
        event = apply_transition(job, terminal, now=now, progress=progress, message=message)
        return PollRecord(event=event, moved=True, finished=True)
    _set_counts(job, counts)
    moved = record_progress(job, now=now, progress=progress, message=message) or status_changed
    _schedule(job, moved=moved, now=now, policy=policy, rng=rng, first=False)
    return PollRecord(event=None, moved=moved, finished=False)
