"""Submitting one import job: the function behind the ``submit`` task.

The API has no idempotency key, so the POST is the one dangerous step: the job row is moved to SUBMITTING (under a
lease) before the request and to RUNNING, with the remote task id, right after. Outcomes:

- accepted: RUNNING, first poll scheduled;
- refused (4xx other than 408/429): REJECTED with the API's message and error code, never retried;
- failed before the API could have acted (502, 503, 504, 429, 408, connection refused): back to PENDING and
  retried with backoff by the caller; after the last retry, FAILED with the reason;
- ambiguous (the request may have reached the API: a 500, a read timeout, a reset, an unreadable answer): the
  job stays SUBMITTING under its lease, and once the lease runs out the recovery sweep first looks for the remote
  task it may have started (see :mod:`tasks.recovery`) before it ever POSTs again.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from api_client import (
    ApiError,
    DatasetsClient,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from store.jobs import begin_submit, get_job
from store.models import JobStatus
from store.scheduling import PollPolicy
from store.state_machine import apply_transition, remote_to_job_status

from .outcomes import first_poll_at

log = logging.getLogger(__name__)


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETRY = "retry"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class SubmitResult:
    outcome: SubmitOutcome
    job_id: str
    detail: str = ""
    retry_after_s: float | None = None
    finished: bool = False


def submit_job(
    job_id: str,
    *,
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    owner: str,
    now: Callable[[], datetime],
    policy: PollPolicy,
    lease_s: float,
    final_attempt: bool,
) -> SubmitResult:
    """Submit ``job_id`` once; the caller decides on retry from the outcome."""
    with session_factory() as session:
        job = begin_submit(session, job_id, owner=owner, now=now(), lease_s=lease_s)
        if job is None:
            existing = get_job(session, job_id)
            state = existing.status if existing is not None else "missing"
            return SubmitResult(SubmitOutcome.SKIPPED, job_id, f"job is {state}, not PENDING")
        kind, dataset_id, params = job.kind, job.dataset_id, dict(job.params)
        session.commit()

    try:
        task = client.start_import(dataset_id, kind, params)
    except ApiError as exc:
        return _record_failure(job_id, exc, session_factory=session_factory, now=now, final_attempt=final_attempt)

    with session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None
        at = now()
        job.remote_task_id = task.id
        job.remote_status = str(task.status)
        job.remote_status_since = at
        job.progress = task.progress
        job.message = task.message
        job.submitted_at = at
        job.lease_owner = None
        job.lease_expires_at = None
        job.last_error = None
        terminal = remote_to_job_status(str(task.status))
        apply_transition(job, JobStatus.RUNNING, now=at, progress=task.progress, message=f"remote task {task.id}")
        finished = False
        if terminal is not None:
            apply_transition(job, terminal, now=at, progress=task.progress, message=task.message)
            job.next_poll_at = None
            finished = True
        else:
            job.poll_interval_s = policy.initial_interval_s
            job.next_poll_at = first_poll_at(at, policy)
        session.commit()
    log.info("job %s accepted as remote task %s", job_id, task.id, extra={"job_id": job_id})
    return SubmitResult(SubmitOutcome.ACCEPTED, job_id, task.id, finished=finished)


def _may_have_arrived(exc: ApiError) -> bool:
    """True when the API may have started an import although we saw no accepted answer."""
    if isinstance(exc, UnexpectedResponseError):
        return True
    if isinstance(exc, ServerError) and exc.status_code == 500:
        # 502/503/504 come from a gateway or an unavailable service that did not act; a 500 may have been
        # raised after the import was started.
        return True
    if isinstance(exc, TransportError):
        # Only a failure to connect proves the request never left.
        return exc.may_have_reached_server
    return False


def _is_retryable(exc: ApiError) -> bool:
    if isinstance(exc, (ServerError, RateLimitedError)):
        return True
    return exc.status_code == 408


def _record_failure(
    job_id: str,
    exc: ApiError,
    *,
    session_factory: sessionmaker[Session],
    now: Callable[[], datetime],
    final_attempt: bool,
) -> SubmitResult:
    reason = str(exc)
    with session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None
        at = now()
        job.last_error = reason
        if _may_have_arrived(exc):
            # Leave it SUBMITTING and keep the lease: when the lease runs out, every POST that was in flight at
            # the same time has been answered and recorded, so the recovery sweep can tell an orphan remote task
            # of this job from another job's, and adopt it before any second POST.
            session.commit()
            log.warning(
                "job %s: submit outcome unknown (%s); recovery will check",
                job_id,
                reason,
                extra={"job_id": job_id},
            )
            return SubmitResult(SubmitOutcome.AMBIGUOUS, job_id, reason)
        if isinstance(exc, TransportError) or _is_retryable(exc):
            if final_attempt:
                job.error_code = getattr(exc, "error_code", None)
                apply_transition(job, JobStatus.FAILED, now=at, message=f"gave up submitting: {reason}")
                session.commit()
                return SubmitResult(SubmitOutcome.FAILED, job_id, reason, finished=True)
            job.lease_owner = None
            job.lease_expires_at = None
            apply_transition(job, JobStatus.PENDING, now=at, message=f"submit will be retried: {reason}")
            session.commit()
            retry_after = exc.retry_after_s if isinstance(exc, RateLimitedError) else None
            return SubmitResult(SubmitOutcome.RETRY, job_id, reason, retry_after_s=retry_after)
        # The API looked at the request and refused it: sending it again cannot help.
        job.error_code = getattr(exc, "error_code", None)
        job.message = getattr(exc, "message", None) or reason
        apply_transition(job, JobStatus.REJECTED, now=at, message=job.message)
        session.commit()
        return SubmitResult(SubmitOutcome.REJECTED, job_id, reason, finished=True)
