"""The recovery sweep: jobs a crash or a lost message left behind.

- A PENDING job nobody has touched for a while lost its submit message (the broker was down when it was sent, or
  the sender died after the commit): send it again. Sending twice is harmless, ``begin_submit`` lets one through.
- A SUBMITTING job whose lease ran out was being POSTed by a worker that died or could not tell whether the API
  got the request. The API has no idempotency key, so before any second POST we look for a remote task on that
  dataset created while the job was being submitted and owned by no other job, and adopt it. Only when a complete
  scan of the dataset's tasks (:mod:`jobs.orphan_scan`) found none does the job go back to PENDING to be sent
  again, or end EXPIRED if it is past its deadline: nothing is sent for a job past its deadline. A scan that could
  not finish says nothing: the jobs keep waiting, their leases released, until a later sweep completes one.

Interrupted submits on one dataset whose windows overlap are resolved together, since a task in the window may be
any one's (tasks do not say what they import), and not while any of them is still being submitted (its lease is
live: its task, if any, is not recorded yet and could be taken for another's). With as many tasks as jobs, or more,
every request arrived: tasks are paired with jobs in order of time. With none, none arrived: all are sent again.
With fewer, identical requests share out the tasks and the rest are sent again. Different requests cannot be told
apart then: they are paired in order of time too (the request sent first is the likelier to have arrived), and the
guess is written on each job's history and logged as a warning, because a wrong one imports one request twice and
another never. Only an idempotency key in the API, or one submit at a time per dataset, would rule it out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_client import ApiError, DatasetImportTask, DatasetsClient
from jobs import metrics, own_creators, transitions
from jobs.orphan_scan import ADOPTION_MAX_PAGES, ScanIncomplete, find_orphan_tasks
from jobs.runtime import Runtime
from store import guarantees
from store.jobs import overdue_jobs, stale_jobs
from store.leases import acquire_lease
from store.models import ImportJob, JobStatus
from store.task_ownership import owned_task_ids

log = logging.getLogger(__name__)

# Clocks differ between us and the API; a remote task created slightly "before" our submit can still be ours.
CLOCK_SKEW = timedelta(seconds=5)
# Share of the lease one lookup may take: the group's leases must outlive it, or another sweep could take the
# jobs while this one still decides for them (its writes would then be dropped, but its API calls wasted).
SCAN_LEASE_FRACTION = 0.5
# Most interrupted submits resolved together (a bound on the lookup, not a limit anyone should reach).
_MAX_GROUP = 50


@dataclass
class RecoveryReport:
    resent: list[str] = field(default_factory=list)
    adopted: list[tuple[str, str]] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    finished: list[tuple[str, str]] = field(default_factory=list)


def recover(
    runtime: Runtime,
    *,
    owner: str,
    now: Callable[[], datetime],
    resend: Callable[[str], None],
    limit: int = 200,
) -> RecoveryReport:
    report = RecoveryReport()
    at = now()
    tuning = runtime.tuning
    with runtime.session_factory() as session:
        stale_pending = stale_jobs(
            session, status=JobStatus.PENDING, older_than=at - timedelta(seconds=tuning.stale_pending_s), limit=limit
        )
        # A request nobody could submit before its deadline is not sent late: it ends EXPIRED. (A SUBMITTING job
        # may have a remote task, so it goes through adoption below; RUNNING ones expire at their next poll.)
        for job in overdue_jobs(session, now=at, limit=limit):
            if job.status == JobStatus.PENDING:
                transitions.expired(job, now=at, message="never submitted before its deadline")
                report.finished.append((job.id, str(JobStatus.EXPIRED)))
        for job in stale_pending:
            if job.status != JobStatus.PENDING:
                continue
            job.updated_at = at
            report.resent.append(job.id)
        stuck = stale_jobs(session, status=JobStatus.SUBMITTING, older_than=at, limit=limit)
        stuck_ids = [job.id for job in stuck]
        session.commit()

    if stuck_ids:
        with runtime.client_factory() as client:
            for job_id in stuck_ids:
                _resolve_submitting(runtime, client, job_id, owner=owner, now=now, report=report)

    for job_id in report.resent + report.reset:
        resend(job_id)
    return report


@dataclass(frozen=True)
class _Interrupted:
    """One job of a group of interrupted submits, as plain values read under the group's leases."""

    job_id: str
    started: datetime | None
    request: str


def _resolve_submitting(
    runtime: Runtime,
    client: DatasetsClient,
    job_id: str,
    *,
    owner: str,
    now: Callable[[], datetime],
    report: RecoveryReport,
) -> None:
    # Take the jobs first, so two sweeps never both adopt or reset them; the lookup happens outside any
    # transaction (an HTTP call must not hold SQLite's write lock).
    lease_s = runtime.tuning.lease_s
    with runtime.session_factory() as session:
        at = now()
        group = _lease_group(session, job_id, owner=owner, now=at, lease_s=lease_s)
        if group is None:
            session.rollback()
            metrics.record_lease_conflicts("recover")
            return
        dataset_id = group[0].dataset_id
        members = sorted(
            (_Interrupted(job.id, job.submit_started_at, _request_key(job)) for job in group),
            key=lambda member: (member.started or at, member.job_id),
        )
        session.commit()

    def owned(task_ids: Collection[str]) -> set[str]:
        with runtime.session_factory() as session:
            return owned_task_ids(session, task_ids)

    starts = [member.started for member in members if member.started is not None]
    try:
        candidates = (
            find_orphan_tasks(
                client,
                dataset_id,
                since=min(starts) - CLOCK_SKEW,
                # A request cannot outlive the lease: past it the submitting worker had given up or died. Nor can a
                # task of ours be younger than this sweep: one that is was started by a submit begun since.
                until=min(max(starts) + timedelta(seconds=lease_s) + CLOCK_SKEW, at),
                owned=owned,
                creators=own_creators.learn(runtime.session_factory, client),
                max_pages=ADOPTION_MAX_PAGES,
                time_budget_s=lease_s * SCAN_LEASE_FRACTION,
            )
            if starts and guarantees.enabled("adoption")
            else []
        )
    except (ApiError, ScanIncomplete) as exc:
        # Without the whole list we cannot rule out a remote task: leave the jobs for the next sweep.
        log.warning("job %s: cannot look for its remote task yet: %s", job_id, exc, extra={"job_id": job_id})
        _wait_for_next_sweep(runtime, members, owner=owner, reason=str(exc))
        return

    plan, guessed = pair_tasks(members, candidates)
    guess = _guess_note(members, candidates) if guessed else None
    with runtime.session_factory() as session:
        for member in members:
            # Row-locked (PostgreSQL; SQLite holds its write lock from BEGIN): the check and the write are one step.
            job = session.get(ImportJob, member.job_id, with_for_update=True, populate_existing=True)
            if job is None or job.status != JobStatus.SUBMITTING or job.lease_owner != owner:
                continue
            job.lease_owner = None
            job.lease_expires_at = None
            task = plan[member.job_id]
            if task is None:
                _send_again(job, runtime, now=now(), report=report, note=guess)
            else:
                _adopt(job, task, runtime, now=now(), report=report, note=guess)
        session.commit()


def _wait_for_next_sweep(runtime: Runtime, members: list[_Interrupted], *, owner: str, reason: str) -> None:
    """Release the group's leases and say on each job why it still waits (its outcome is unknown)."""
    with runtime.session_factory() as session:
        for member in members:
            job = session.get(ImportJob, member.job_id)
            if job is None or job.status != JobStatus.SUBMITTING or job.lease_owner != owner:
                continue
            job.lease_owner = None
            job.lease_expires_at = None
            job.last_error = f"submit outcome unknown, its remote task not looked up yet: {reason}"
        session.commit()


def _lease_group(
    session: Session, job_id: str, *, owner: str, now: datetime, lease_s: float
) -> list[ImportJob] | None:
    """``job_id`` and every interrupted submit on its dataset whose window overlaps, leased to ``owner``.

    None when one of them is still being submitted or resolved (its lease is live): its task, if any, is not
    recorded yet, so it could be taken for another's. The caller rolls back the leases taken so far.
    """
    first = acquire_lease(session, job_id, status=JobStatus.SUBMITTING, owner=owner, now=now, lease_s=lease_s)
    if first is None:
        return None
    group = {first.id: first}
    frontier = [first]
    # Windows [start - skew, start + lease + skew] of two jobs overlap when their starts are this close.
    reach = timedelta(seconds=lease_s) + 2 * CLOCK_SKEW
    while frontier:
        current = frontier.pop()
        if current.submit_started_at is None:
            continue
        query = (
            select(ImportJob)
            .where(
                ImportJob.dataset_id == first.dataset_id,
                ImportJob.status == JobStatus.SUBMITTING,
                ImportJob.submit_started_at >= current.submit_started_at - reach,
                ImportJob.submit_started_at <= current.submit_started_at + reach,
                ImportJob.id.not_in(list(group)),
            )
            .order_by(ImportJob.submit_started_at, ImportJob.id)
            .limit(_MAX_GROUP)
        )
        for other in session.scalars(query).all():
            if acquire_lease(session, other.id, status=JobStatus.SUBMITTING, owner=owner, now=now, lease_s=lease_s):
                group[other.id] = other
                frontier.append(other)
            else:
                return None
    return list(group.values())


def pair_tasks(
    members: list[_Interrupted], candidates: list[DatasetImportTask]
) -> tuple[dict[str, DatasetImportTask | None], bool]:
    """Which task each interrupted submit started (None: none, send it again), and whether that is a guess.

    ``members`` in order of submit start, ``candidates`` in order of creation; they are paired in that order.
    """
    tasks: list[DatasetImportTask | None] = [*candidates[: len(members)]]
    tasks += [None] * (len(members) - len(tasks))
    plan = {member.job_id: task for member, task in zip(members, tasks, strict=True)}
    # Exact when every request arrived (as many tasks as jobs), when none did, or when the requests are the same
    # (any of them may take any task); otherwise nothing says which requests are the ones that arrived.
    guessed = 0 < len(candidates) < len(members) and len({member.request for member in members}) > 1
    return plan, guessed


def _guess_note(members: list[_Interrupted], candidates: list[DatasetImportTask]) -> str:
    return (
        f"a guess: {len(candidates)} remote task(s) for {len(members)} interrupted submits of different imports "
        f"on this dataset (jobs {', '.join(member.job_id for member in members)}), paired in order of time"
    )


def _request_key(job: ImportJob) -> str:
    return json.dumps([str(job.kind), job.params], sort_keys=True)


def _adopt(
    job: ImportJob,
    task: DatasetImportTask,
    runtime: Runtime,
    *,
    now: datetime,
    report: RecoveryReport,
    note: str | None = None,
) -> None:
    message = f"adopted remote task {task.id}" + (f" ({note})" if note else "")
    ended = transitions.accepted(job, task, now=now, policy=runtime.poll_policy, message=message, note=note)
    if ended is not None:
        report.finished.append((job.id, str(ended)))
    report.adopted.append((job.id, task.id))
    if note:
        log.warning("job %s adopted remote task %s, %s", job.id, task.id, note, extra={"job_id": job.id})
    else:
        log.info("job %s adopted remote task %s", job.id, task.id, extra={"job_id": job.id})


def _send_again(
    job: ImportJob, runtime: Runtime, *, now: datetime, report: RecoveryReport, note: str | None = None
) -> None:
    left = transitions.not_found(job, now=now, max_attempts=runtime.tuning.submit_max_retries, note=note)
    if left is not JobStatus.PENDING:
        report.finished.append((job.id, str(left)))
        return
    if note:
        log.warning("job %s sent again, %s", job.id, note, extra={"job_id": job.id})
    report.reset.append(job.id)
