"""Every job transition that follows an API answer, in one place: pure functions on the ORM object, no I/O.

The callers own the I/O and the conditions under which a write may happen (a submit writes only while it still holds
the job's claim, recovery only under its group's leases, the poller only while its poll lease holds); what the job
becomes for each answer is decided here, and nowhere else:

- :func:`accepted`: the API accepted the POST (or recovery adopted the task an interrupted POST started):
  SUBMITTING -> RUNNING with the remote task id, then straight to the task's ending if it had already ended;
- :func:`refused`: the API looked at the request and refused it: REJECTED with its error code, never re-sent (an
  import route the API no longer has is said so, with :data:`IMPORT_KIND_NOT_OFFERED` as the code);
- :func:`ambiguous`: the request may have reached the API: the job stays SUBMITTING under its lease for recovery;
- :func:`retry_later` and :func:`gave_up`: the API did not act (429, 408, no connection): PENDING again, or FAILED
  after the last attempt;
- :func:`not_found`: recovery found no task of an interrupted submit: PENDING to be sent again (or FAILED after too
  many interrupted submits, EXPIRED past the deadline);
- :func:`apply_observation`: a poll's answer: progress, an ending, a 404 (LOST) or an error that says nothing; and
  when the job is polled next: forecast from its progress rate while a RUNNING task moves
  (:mod:`jobs.poll_forecast`), by backoff otherwise (:mod:`jobs.poll_backoff`);
- :func:`expire_if_past_deadline` and :func:`expired`: the deadline passed (EXPIRED).

The status rules themselves (which change is allowed) are :mod:`store.state_machine`'s; each function here goes
through :func:`store.state_machine.apply_transition`, so an event row records every change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api_client import ApiError, DatasetImportTask, NotFoundError, RouteNotFoundError
from jobs.outcomes import mark_ending, record_result
from jobs.poll_backoff import PollPolicy, next_poll
from jobs.poll_forecast import ProgressTrack, next_poll_after
from store.models import TERMINAL_JOB_STATUSES, ImportJob, ImportKind, JobEvent, JobStatus
from store.state_machine import apply_transition, remote_to_job_status

# The error code of a job refused because the API has no route for its kind (the API itself gives none).
IMPORT_KIND_NOT_OFFERED = "IMPORT_KIND_NOT_OFFERED"
# The kinds today's API (SDK 3.x) has no operation for, and what to do instead.
_DROPPED_KINDS: dict[str, str] = {
    ImportKind.CAMPAIGN: "import the campaign's events as a JSONL file (dsimport import file) instead",
    ImportKind.EXPLORER: "import the completion events as a JSONL file (dsimport import file) instead",
}


@dataclass(frozen=True)
class Observation:
    """What one poll learned about a job's remote task: exactly one of ``task`` and ``error`` is set.

    ``at`` is when the answer arrived: its progress is dated then, since a write may come a while later (the
    poller writes in slices). Without it, the write's ``now`` stands for it.
    """

    task: DatasetImportTask | None = None
    error: ApiError | None = None
    at: datetime | None = None


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
    seen_at = min(observation.at, now) if observation.at is not None else now
    return _apply_task(
        job,
        observation.task,
        applied,
        now=now,
        seen_at=seen_at,
        policy=policy,
        rng=rng,
        stuck_after_s=stuck_after_s,
    )


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
    seen_at: datetime,
    policy: PollPolicy,
    rng: random.Random,
    stuck_after_s: float,
) -> Applied:
    status = str(task.status)
    if status != job.remote_status:
        job.remote_status = status
        job.remote_status_since = now
    before = _track(job)
    applied.progress_moved = task.progress is not None and task.progress != job.progress
    after = before.after(task.progress, seen_at)
    job.progress, job.progress_at, job.progress_rate = after.progress, after.since, after.rate
    if task.message is not None:
        job.message = task.message
    record_result(job, task)
    job.last_error = None

    terminal = remote_to_job_status(status)
    if terminal is not None:
        job.remote_ended_at = task.updated_at
        mark_ending(job, terminal)
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
    # While the task's progress gives a rate, near when it can end; by backoff otherwise.
    job.next_poll_at, job.poll_interval_s = next_poll_after(
        policy,
        before,
        seen=task.progress,
        running=status == "RUNNING",
        previous_interval_s=job.poll_interval_s,
        seen_at=seen_at,
        now=now,
        rng=rng,
    )
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


def _track(job: ImportJob) -> ProgressTrack:
    return ProgressTrack(job.progress, job.progress_at, job.progress_rate)


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


def accepted(
    job: ImportJob,
    task: DatasetImportTask,
    *,
    now: datetime,
    policy: PollPolicy,
    message: str,
    note: str | None = None,
) -> JobStatus | None:
    """A SUBMITTING job's request started ``task`` (its POST answered, or recovery found the task).

    The job becomes RUNNING with the task id and its first poll scheduled, or, when the task had already ended,
    goes on at once to that ending; returns the terminal status in that case, else None. The claim is released.
    ``note`` (why recovery paired this task with this job, when it had to guess) stays visible as the last error.
    """
    job.remote_task_id = task.id
    job.remote_status = str(task.status)
    job.remote_status_since = now
    job.progress = task.progress
    # The first point of the progress rate: the next poll that sees it move can forecast the end.
    job.progress_at = now if task.progress is not None else None
    job.progress_rate = None
    job.message = task.message
    job.submitted_at = now
    job.last_error = note
    job.lease_owner = None
    job.lease_expires_at = None
    job.submit_not_before = None
    apply_transition(job, JobStatus.RUNNING, now=now, progress=task.progress, message=message)
    terminal = remote_to_job_status(str(task.status))
    if terminal is not None:
        job.remote_ended_at = task.updated_at
        record_result(job, task)
        mark_ending(job, terminal)
        apply_transition(job, terminal, now=now, progress=task.progress, message=task.message)
        job.next_poll_at = None
        return terminal
    job.poll_interval_s = policy.initial_interval_s
    job.next_poll_at = first_poll_at(now, policy)
    return None


def refused(job: ImportJob, error: ApiError, *, now: datetime) -> JobEvent:
    """The API looked at the request and refused it (a 4xx other than 408 and 429): REJECTED, never sent again.

    A 404 that names no missing object (:class:`~api_client.RouteNotFoundError`) means the API has no route for
    this import: the job says so, with :data:`IMPORT_KIND_NOT_OFFERED`, rather than a bare "Not Found".
    """
    job.last_error = str(error)
    if isinstance(error, RouteNotFoundError):
        job.error_code = IMPORT_KIND_NOT_OFFERED
        job.message = route_missing_message(str(job.kind))
    else:
        job.error_code = error.error_code
        job.message = error.message or str(error)
    return apply_transition(job, JobStatus.REJECTED, now=now, message=job.message)


def route_missing_message(kind: str) -> str:
    """Why an import of ``kind`` was refused with a 404 that names no missing object, and what to do."""
    if kind in _DROPPED_KINDS:
        return f"the API no longer offers imports from {kind} (route not found): {_DROPPED_KINDS[kind]}"
    # The kinds the API still documents: the request most likely went to the wrong place.
    return (
        f"the API has no route for imports from {kind} (route not found): check DSIMPORT_API_BASE_URL, "
        "or whether the API still offers this import"
    )


def ambiguous(job: ImportJob, error: ApiError, *, now: datetime) -> None:
    """The request may have reached the API (a 5xx, a reset, a read timeout): the job stays SUBMITTING.

    The lease is kept: when it runs out, recovery looks for the task this POST may have started before anything
    is sent again (see :mod:`jobs.recover`). A ``Retry-After`` is kept too, so a later send honours it.
    """
    job.last_error = str(error)
    _note_retry_after(job, error, now=now)


def retry_later(job: ImportJob, error: ApiError, *, now: datetime) -> JobEvent:
    """The API did not act on the request (429, 408, no connection): PENDING again, not before its Retry-After."""
    job.last_error = str(error)
    _note_retry_after(job, error, now=now)
    return apply_transition(job, JobStatus.PENDING, now=now, message=f"submit will be retried: {error}")


def handed_back(job: ImportJob, *, now: datetime, reason: str) -> JobEvent:
    """A job claimed for a batch submit whose POST was never sent: PENDING again, as if never claimed.

    The attempt is not counted and the submit start is cleared: nothing went out, so recovery has nothing to look
    for, and the submit task sends it again.
    """
    job.attempts = max(0, job.attempts - 1)
    job.submit_started_at = None
    return apply_transition(job, JobStatus.PENDING, now=now, message=reason)


def gave_up(job: ImportJob, error: ApiError, *, now: datetime) -> JobEvent:
    """The last attempt failed like the others, without the API acting on any of them: FAILED."""
    job.last_error = str(error)
    job.error_code = error.error_code
    return apply_transition(job, JobStatus.FAILED, now=now, message=f"gave up submitting: {error}")


def not_found(job: ImportJob, *, now: datetime, max_attempts: int, note: str | None = None) -> JobStatus:
    """Recovery found no task started by an interrupted submit: send it again, unless that has happened too often
    or its deadline has passed. Returns the status the job is left in (PENDING, FAILED or EXPIRED)."""
    if job.deadline_at is not None and job.deadline_at <= now:
        expired(job, now=now, message="no remote task found after an interrupted submit, past its deadline")
        return JobStatus.EXPIRED
    if job.attempts > max_attempts:
        apply_transition(job, JobStatus.FAILED, now=now, message=f"gave up after {job.attempts} interrupted submits")
        return JobStatus.FAILED
    message = "no remote task found after an interrupted submit" + (f" ({note})" if note else "")
    apply_transition(job, JobStatus.PENDING, now=now, message=message)
    if note:
        job.last_error = note
    if job.skip_existing:
        # Its items may have arrived after all (the recovery's pairing is a guess when several submits of one
        # dataset were cut at once): they are checked again, from a fresh record list, before the next POST.
        job.deduped_at = None
    return JobStatus.PENDING


def expired(job: ImportJob, *, now: datetime, message: str) -> JobEvent:
    """The job's deadline passed before it could end otherwise: EXPIRED (nothing is sent for it any more)."""
    event = apply_transition(job, JobStatus.EXPIRED, now=now, message=message)
    job.next_poll_at = None
    return event


def _note_retry_after(job: ImportJob, error: ApiError, *, now: datetime) -> None:
    if error.retry_after_s is not None:
        # Neither the task's retry nor the recovery sweep sends it again before the API said to.
        job.submit_not_before = now + timedelta(seconds=error.retry_after_s)
