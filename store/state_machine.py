"""Which status changes a job may make, and the one function that makes them.

Allowed transitions (anything not listed is refused with :class:`InvalidTransition`)::

    PENDING     -> SUBMITTING                  a worker takes the job and sends the request
                -> EXPIRED                     the deadline passed before it was sent
                -> CANCELLED_LOCALLY           a user stopped it before it was sent
                -> COMPLETED                   ``--skip-existing`` found every item in the dataset: nothing to send
                -> FAILED                      ``--skip-existing`` could not read what to check, to the last try
    SUBMITTING  -> RUNNING                     the API accepted; the remote task id is known
                -> COMPLETED, FAILED, CANCELED,
                   TERMINATED, TIMED_OUT       the API accepted and the task it returned had already ended
                -> PENDING                     retryable error before the API accepted (network, 5xx, 429)
                -> REJECTED                    the API refused the request (4xx); never retried
                -> EXPIRED                     the deadline passed while the request kept failing
                -> CANCELLED_LOCALLY           a user stopped it; a request already in flight may still
                                               start a remote import, which is then simply not tracked
    RUNNING     -> COMPLETED, FAILED, CANCELED,
                   TERMINATED, TIMED_OUT       the remote task ended
                -> LOST                        the remote task is gone (404)
                -> EXPIRED                     the deadline passed while the task was still running
                -> CANCELLED_LOCALLY           a user stopped tracking it
    terminal    -> nothing

Not allowed, on purpose: ``PENDING -> RUNNING`` (a task id can only come from a request that was sent, so a
job always passes through SUBMITTING, which is what recovery keys on); ``RUNNING -> PENDING`` (once the API
accepted, sending again would start a second remote import); ``RUNNING -> REJECTED`` (a refusal only happens
on submit); ``SUBMITTING -> LOST`` (there is no remote task to lose yet). A status never "changes" to itself:
progress and message updates on an unchanged status go through :func:`record_progress` and write no event.

Remote statuses ``CONTINUED_AS_NEW``, ``UNKNOWN`` and strings this code does not know keep a job RUNNING;
:func:`remote_to_job_status` maps only the remote terminal statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from sqlalchemy.orm import object_session

from store.errors import InvalidTransition, JobAlreadyFinishedError
from store.models import TERMINAL_JOB_STATUSES, ImportJob, JobEvent, JobStatus
from store.snapshot_outbox import enqueue_completion
from store.webhook_outbox import enqueue_ending

__all__ = [
    "ALLOWED_TRANSITIONS",
    "REMOTE_TERMINAL_STATUSES",
    "InvalidTransition",
    "apply_transition",
    "check_transition",
    "new_event",
    "record_progress",
    "remote_to_job_status",
]

_S = JobStatus
_REMOTE_ENDINGS = frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELED, _S.TERMINATED, _S.TIMED_OUT})

ALLOWED_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.SUBMITTING, _S.EXPIRED, _S.CANCELLED_LOCALLY, _S.COMPLETED, _S.FAILED}),
        _S.SUBMITTING: frozenset(
            {_S.RUNNING, _S.PENDING, _S.REJECTED, _S.EXPIRED, _S.CANCELLED_LOCALLY} | _REMOTE_ENDINGS
        ),
        _S.RUNNING: frozenset({_S.LOST, _S.EXPIRED, _S.CANCELLED_LOCALLY} | _REMOTE_ENDINGS),
        **{status: frozenset() for status in TERMINAL_JOB_STATUSES},
    }
)

#: Remote ``BaseTaskStatus`` values that end a task, and the job status each one ends the job in.
REMOTE_TERMINAL_STATUSES: Mapping[str, JobStatus] = MappingProxyType(
    {status.value: status for status in _REMOTE_ENDINGS}
)


def remote_to_job_status(remote_status: str) -> JobStatus | None:
    """The terminal job status for a remote task status, or None while the job should stay RUNNING.

    None covers ``RUNNING``, ``CONTINUED_AS_NEW``, ``UNKNOWN`` and any string this code does not know: the
    contract calls the status an open enum, and an unknown value is no reason to stop tracking an import.
    """
    return REMOTE_TERMINAL_STATUSES.get(remote_status)


def check_transition(job_id: str | None, old: JobStatus, new: JobStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is in :data:`ALLOWED_TRANSITIONS`."""
    if new in ALLOWED_TRANSITIONS[old]:
        return
    if old in TERMINAL_JOB_STATUSES:
        raise JobAlreadyFinishedError(job_id, old, new)
    raise InvalidTransition(job_id, old, new)


def new_event(
    job: ImportJob,
    old: JobStatus | None,
    new: JobStatus,
    *,
    now: datetime,
    progress: int | None,
    message: str | None,
) -> JobEvent:
    """Build the event row for a status change and attach it to the job's session (if it has one)."""
    event = JobEvent(
        job_id=job.id, at=now, old_status=old, new_status=new, progress=progress, message=message
    )
    session = object_session(job)
    if session is not None:
        session.add(event)
    return event


def apply_transition(
    job: ImportJob,
    new_status: JobStatus,
    *,
    now: datetime,
    progress: int | None = None,
    message: str | None = None,
) -> JobEvent:
    """Move ``job`` to ``new_status`` and write the event row; the caller commits.

    ``progress`` and ``message``, when given, are stored on the job as well as on the event; None leaves the
    job's value alone (an unknown progress never overwrites a known one). Entering a terminal status sets
    ``finished_at``, drops the lease and the next poll time and writes the webhook deliveries of the ending (the
    outbox, :mod:`store.webhook_outbox`: every ending passes here, so every ending is told, in its own transaction)
    and, for a completed job of a schedule that takes snapshots, its pending snapshot (:mod:`store.snapshot_outbox`);
    entering RUNNING makes the job due at once unless a poll time was already set; going back to PENDING drops the
    lease.
    """
    old = job.status
    check_transition(job.id, old, new_status)
    if progress is not None:
        job.progress = progress
    if message is not None:
        job.message = message
    job.status = new_status
    job.updated_at = now
    if new_status in TERMINAL_JOB_STATUSES:
        job.finished_at = now
        job.next_poll_at = None
        job.lease_owner = None
        job.lease_expires_at = None
    elif new_status is JobStatus.RUNNING:
        if job.next_poll_at is None:
            job.next_poll_at = now
    elif new_status is JobStatus.PENDING:
        job.lease_owner = None
        job.lease_expires_at = None
    event = new_event(job, old, new_status, now=now, progress=job.progress, message=message)
    session = object_session(job)
    if session is not None and new_status in TERMINAL_JOB_STATUSES:
        enqueue_ending(session, job, now=now)
        enqueue_completion(session, job, now=now)
    return event


def record_progress(
    job: ImportJob, *, now: datetime, progress: int | None = None, message: str | None = None
) -> bool:
    """Store progress and message on a job whose status does not change; no event is written.

    Returns True when the known progress moved. None for ``progress`` means "not reported" and keeps the
    last known value.
    """
    moved = progress is not None and progress != job.progress
    if progress is not None:
        job.progress = progress
    if message is not None:
        job.message = message
    job.updated_at = now
    return moved
