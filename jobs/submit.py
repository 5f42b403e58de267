"""Submitting one import job: the function behind the ``submit`` task.

The API has no idempotency key, so the POST is the one dangerous step: the job row is moved to SUBMITTING (under a
lease) before the request and to RUNNING, with the remote task id, right after. Outcomes:

- accepted: RUNNING, first poll scheduled;
- refused (4xx other than 408/429): REJECTED with the API's message and error code, never retried;
- failed before the API could have acted (429, 408, a connection that could not be opened): back to PENDING and
  retried with backoff by the caller (never before the API's ``Retry-After``); after the last retry, FAILED;
- ambiguous (the request may have reached the API): the job stays SUBMITTING under its lease, and once the lease
  runs out the recovery sweep first looks for the remote task it may have started (see :mod:`jobs.recover`)
  before it ever POSTs again. Every 5xx is ambiguous, 503 included: a gateway answers 502/504 precisely when the
  upstream is slow and may still be working, and the contract does not promise that a 503 means "not started"
  (the SDK itself retries 503 on imports, which can double one). So are a read timeout, a reset, an answer that
  cannot be read, and a POST that outlives its overall deadline;
- past its deadline: EXPIRED, nothing is sent.

What could still break "one POST per job, every answer recorded", and what stops it:

- *A late answer.* A POST slower than the lease (a slow server, a long SQLite busy wait before the write) lets
  recovery take the job over and adopt or re-send. Every write after the POST is conditional on the job being
  SUBMITTING under this worker's claim (lease owner and row version from ``begin_submit``): a writer that lost
  its claim writes nothing but an event saying what it saw, and adopts nothing. The POST has an overall deadline
  (``post_deadline_s``, below the lease: checked at start-up) so that the answer normally arrives in time.
- *Two deliveries of the submit message.* ``begin_submit`` lets one through.
- *A retry after the deadline.* Each attempt checks the deadline before it claims the job.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from api_client import (
    ApiError,
    DatasetImportTask,
    DatasetsClient,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    call_with_deadline,
)
from jobs import own_creators, transitions
from jobs.poll_backoff import PollPolicy
from store import guarantees
from store.jobs import begin_submit
from store.models import ImportJob, JobStatus
from store.state_machine import new_event

log = logging.getLogger(__name__)


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETRY = "retry"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    EXPIRED = "expired"
    # The answer came after another worker took the job over: recorded as an event only.
    SUPERSEDED = "superseded"
    # Not sent yet: the API asked for a wait (Retry-After) that has not passed; nothing changed.
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    # Claimed in a batch but not sent (an earlier POST of its dataset got no acceptance, or time ran out):
    # PENDING again, its claim undone (see jobs.submit_batch).
    HANDED_BACK = "handed_back"
    # --skip-existing found every item in the target already: COMPLETED without a POST (see jobs.skip_existing).
    NOTHING_NEW = "nothing_new"


@dataclass(frozen=True)
class SubmitResult:
    outcome: SubmitOutcome
    job_id: str
    detail: str = ""
    retry_after_s: float | None = None
    finished: bool = False


@dataclass(frozen=True)
class SubmitClaim:
    """What ``begin_submit`` gave this worker: writes after the POST are conditional on it."""

    job_id: str
    owner: str
    version: int


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
    post_deadline_s: float | None = None,
) -> SubmitResult:
    """Submit ``job_id`` once; the caller decides on retry from the outcome.

    ``post_deadline_s`` bounds the POST as a whole (default: half the lease).
    """
    with session_factory() as session:
        found = session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
        early = before_claim(found, job_id, now=now())
        if early is not None:
            session.commit()  # an EXPIRED job's transition; nothing otherwise
            return early
        job = begin_submit(session, job_id, owner=owner, now=now(), lease_s=lease_s)
        if job is None:
            return SubmitResult(SubmitOutcome.SKIPPED, job_id, "job is no longer PENDING")
        claim = SubmitClaim(job_id, owner, job.version)
        kind, dataset_id, params = job.kind, job.dataset_id, dict(job.params)
        session.commit()

    deadline_s = post_deadline_s if post_deadline_s is not None else lease_s / 2
    try:
        task = call_with_deadline(
            lambda: client.start_import(dataset_id, kind, params),
            deadline_s=deadline_s,
            operation=f"start_import {kind}",
            on_late=lambda late: log_late_answer(job_id, late),
        )
    except ApiError as exc:
        return _record_failure(claim, exc, session_factory=session_factory, now=now, final_attempt=final_attempt)
    return _record_accepted(claim, task, session_factory=session_factory, now=now, policy=policy)


def before_claim(job: ImportJob | None, job_id: str, *, now: datetime) -> SubmitResult | None:
    """What a submit ends with before it claims ``job`` (read row-locked), or None when it may claim it.

    SKIPPED when it is not PENDING; EXPIRED (written on ``job``) past its deadline: nothing is sent for it;
    DEFERRED while the API's last Retry-After for it has not passed. Shared by the one-job and the batch submit.
    """
    if job is None or job.status != JobStatus.PENDING:
        state = job.status if job is not None else "missing"
        return SubmitResult(SubmitOutcome.SKIPPED, job_id, f"job is {state}, not PENDING")
    if job.deadline_at is not None and now >= job.deadline_at:
        transitions.expired(job, now=now, message="never submitted before its deadline")
        return SubmitResult(SubmitOutcome.EXPIRED, job_id, "past its deadline before it was sent", finished=True)
    if job.submit_not_before is not None and job.submit_not_before > now:
        wait_s = (job.submit_not_before - now).total_seconds()
        return SubmitResult(SubmitOutcome.DEFERRED, job_id, f"Retry-After: {wait_s:.1f} s left", wait_s)
    return None


def _record_accepted(
    claim: SubmitClaim,
    task: DatasetImportTask,
    *,
    session_factory: sessionmaker[Session],
    now: Callable[[], datetime],
    policy: PollPolicy,
) -> SubmitResult:
    with session_factory() as session:
        result = write_answer(session, claim, accepted_writer(claim, task, policy), at=now(), seen=accepted_seen(task))
        session.commit()
    after_accepted(claim, task, result)
    return result


def accepted_writer(claim: SubmitClaim, task: DatasetImportTask, policy: PollPolicy) -> Writer:
    """The write for an accepted POST: RUNNING with the remote task id (or already at its ending)."""

    def write(job: ImportJob, at: datetime) -> SubmitResult:
        ended = transitions.accepted(job, task, now=at, policy=policy, message=f"remote task {task.id}")
        return SubmitResult(SubmitOutcome.ACCEPTED, claim.job_id, task.id, finished=ended is not None)

    return write


def accepted_seen(task: DatasetImportTask) -> str:
    return f"the API accepted it as remote task {task.id}"


def after_accepted(claim: SubmitClaim, task: DatasetImportTask, result: SubmitResult) -> None:
    # Ours whether or not it was recorded: recovery tells our tasks from other users' by this id.
    own_creators.remember(task.creator_id)
    if result.outcome is SubmitOutcome.ACCEPTED:
        log.info("job %s accepted as remote task %s", claim.job_id, task.id, extra={"job_id": claim.job_id})


Writer = Callable[[ImportJob, datetime], SubmitResult]


def write_answer(session: Session, claim: SubmitClaim, write: Writer, *, at: datetime, seen: str) -> SubmitResult:
    """Apply ``write`` if the job is still SUBMITTING under ``claim``; else record ``seen`` as an event only.

    Runs in the caller's transaction (several answers can share one): the check and the write are one step, since
    SQLite holds its write lock from BEGIN, PostgreSQL's row lock (FOR UPDATE) holds the row, and the version
    column makes the UPDATE itself fail if the row moved anyway. The write is flushed in a SAVEPOINT, so a failed
    one is undone alone and the answer is kept as an event.
    """
    job = session.get(ImportJob, claim.job_id, with_for_update=True, populate_existing=True)
    if job is None:
        return SubmitResult(SubmitOutcome.SKIPPED, claim.job_id, "job vanished")
    if _still_ours(job, claim):
        try:
            with session.begin_nested():
                result = write(job, at)
            return result
        except StaleDataError:
            pass
    return _note_superseded(session, claim, seen, at=at)


def _still_ours(job: ImportJob, claim: SubmitClaim) -> bool:
    if not guarantees.enabled("lease-check"):
        return job.status == JobStatus.SUBMITTING
    return job.status == JobStatus.SUBMITTING and job.lease_owner == claim.owner and job.version == claim.version


def _note_superseded(session: Session, claim: SubmitClaim, seen: str, *, at: datetime) -> SubmitResult:
    """A late writer: the job was taken over (recovery adopted or re-sent it, or it was cancelled) meanwhile."""
    note = f"late submit answer from {claim.owner}, not applied (the job was taken over meanwhile): {seen}"
    job = session.get(ImportJob, claim.job_id, populate_existing=True)
    if job is not None:
        new_event(job, job.status, job.status, now=at, progress=job.progress, message=note)
    log.warning("job %s: %s", claim.job_id, note, extra={"job_id": claim.job_id})
    return SubmitResult(SubmitOutcome.SUPERSEDED, claim.job_id, note)


def log_late_answer(job_id: str, late: object) -> None:
    """What a POST abandoned at its deadline finally returned: only logged, recovery owns the job now."""
    what = f"remote task {late.id}" if isinstance(late, DatasetImportTask) else f"{type(late).__name__}: {late}"
    log.warning(
        "job %s: answer after the submit deadline, left to recovery: %s", job_id, what, extra={"job_id": job_id}
    )


def may_have_arrived(exc: ApiError) -> bool:
    """True when the API may have started an import although we saw no accepted answer."""
    if isinstance(exc, UnexpectedResponseError):
        return True
    if isinstance(exc, ServerError):
        if not guarantees.enabled("ambiguous-5xx"):
            return exc.status_code == 500
        return True
    if isinstance(exc, TransportError):
        # Only a failure to connect proves the request never left.
        return exc.may_have_reached_server
    return False


def is_retryable(exc: ApiError) -> bool:
    if isinstance(exc, (ServerError, RateLimitedError, TransportError)):
        return True
    return exc.status_code == 408


def _record_failure(
    claim: SubmitClaim,
    exc: ApiError,
    *,
    session_factory: sessionmaker[Session],
    now: Callable[[], datetime],
    final_attempt: bool,
) -> SubmitResult:
    with session_factory() as session:
        result = write_answer(
            session, claim, failure_writer(claim, exc, final_attempt), at=now(), seen=failure_seen(exc)
        )
        session.commit()
    return result


def failure_seen(exc: ApiError) -> str:
    return f"the submit failed: {exc}"


def failure_writer(claim: SubmitClaim, exc: ApiError, final_attempt: bool) -> Writer:
    """The write for a POST that got no accepted answer: ambiguous, retried, given up or refused."""
    reason = str(exc)
    job_id = claim.job_id

    def write(job: ImportJob, at: datetime) -> SubmitResult:
        if may_have_arrived(exc):
            # Leave it SUBMITTING and keep the lease: when the lease runs out, every POST that was in flight at
            # the same time has been answered and recorded, so the recovery sweep can tell an orphan remote task
            # of this job from another job's, and adopt it before any second POST.
            transitions.ambiguous(job, exc, now=at)
            log.warning(
                "job %s: submit outcome unknown (%s); recovery will check", job_id, reason, extra={"job_id": job_id}
            )
            return SubmitResult(SubmitOutcome.AMBIGUOUS, job_id, reason)
        if is_retryable(exc):
            if final_attempt:
                transitions.gave_up(job, exc, now=at)
                return SubmitResult(SubmitOutcome.FAILED, job_id, reason, finished=True)
            transitions.retry_later(job, exc, now=at)
            return SubmitResult(SubmitOutcome.RETRY, job_id, reason, retry_after_s=exc.retry_after_s)
        # The API looked at the request and refused it: sending it again cannot help.
        transitions.refused(job, exc, now=at)
        return SubmitResult(SubmitOutcome.REJECTED, job_id, reason, finished=True)

    return write
