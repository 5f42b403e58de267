"""The recovery sweep: jobs a crash or a lost message left behind.

- A PENDING job nobody has touched for a while lost its submit message (the broker was down when it was sent, or
  the sender died after the commit): send it again. Sending twice is harmless, ``begin_submit`` lets one through.
- A SUBMITTING job whose lease ran out was being POSTed by a worker that died or could not tell whether the API
  got the request. The API has no idempotency key, so before any second POST we look for a remote task on that
  dataset created while the job was being submitted and owned by no other job, and adopt it. Only when there is
  none does the job go back to PENDING to be sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api_client import ApiError, DatasetImportTask, DatasetsClient
from store.jobs import overdue_jobs, remote_task_ids_for_dataset, stale_jobs
from store.leases import acquire_lease, release_lease
from store.models import ImportJob, JobStatus
from store.state_machine import apply_transition, remote_to_job_status

from .outcomes import first_poll_at
from .runtime import Runtime

log = logging.getLogger(__name__)

# Clocks differ between us and the API; a remote task created slightly "before" our submit can still be ours.
CLOCK_SKEW = timedelta(seconds=5)
# Pages of list_tasks read when looking for a task to adopt; recent tasks come first in practice.
ADOPTION_PAGES = 5


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
                apply_transition(job, JobStatus.EXPIRED, now=at, message="never submitted before its deadline")
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


def _resolve_submitting(
    runtime: Runtime,
    client: DatasetsClient,
    job_id: str,
    *,
    owner: str,
    now: Callable[[], datetime],
    report: RecoveryReport,
) -> None:
    # Take the job first, so two sweeps never both adopt or reset it; the lookup happens outside any
    # transaction (an HTTP call must not hold SQLite's write lock).
    with runtime.session_factory() as session:
        job = acquire_lease(
            session, job_id, status=JobStatus.SUBMITTING, owner=owner, now=now(), lease_s=runtime.tuning.lease_s
        )
        if job is None:
            return
        dataset_id, started = job.dataset_id, job.submit_started_at
        owned = remote_task_ids_for_dataset(session, dataset_id)
        session.commit()
    try:
        candidate = find_adoptable_task(client, dataset_id, started, owned=owned, lease_s=runtime.tuning.lease_s)
    except ApiError as exc:
        # Without the list we cannot rule out a remote task: leave the job for the next sweep.
        log.warning("job %s: cannot look for its remote task yet: %s", job_id, exc, extra={"job_id": job_id})
        with runtime.session_factory() as session:
            release_lease(session, job_id, owner=owner)
            session.commit()
        return

    with runtime.session_factory() as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status != JobStatus.SUBMITTING or job.lease_owner != owner:
            return
        at = now()
        job.lease_owner = None
        job.lease_expires_at = None
        if candidate is None:
            if job.attempts > runtime.tuning.submit_max_retries:
                apply_transition(
                    job, JobStatus.FAILED, now=at, message=f"gave up after {job.attempts} interrupted submits"
                )
                report.finished.append((job.id, str(JobStatus.FAILED)))
            else:
                apply_transition(
                    job, JobStatus.PENDING, now=at, message="no remote task found after an interrupted submit"
                )
                report.reset.append(job.id)
            session.commit()
            return
        job.remote_task_id = candidate.id
        job.remote_status = str(candidate.status)
        job.remote_status_since = at
        job.progress = candidate.progress
        job.submitted_at = at
        job.last_error = None
        apply_transition(job, JobStatus.RUNNING, now=at, message=f"adopted remote task {candidate.id}")
        terminal = remote_to_job_status(str(candidate.status))
        if terminal is not None:
            apply_transition(job, terminal, now=at, progress=candidate.progress, message=candidate.message)
            report.finished.append((job.id, str(terminal)))
        else:
            job.poll_interval_s = runtime.poll_policy.initial_interval_s
            job.next_poll_at = first_poll_at(at, runtime.poll_policy)
        report.adopted.append((job.id, candidate.id))
        session.commit()
    log.info("job %s adopted remote task %s", job_id, candidate.id, extra={"job_id": job_id})


def find_adoptable_task(
    client: DatasetsClient,
    dataset_id: str,
    submit_started_at: datetime | None,
    *,
    owned: set[str],
    lease_s: float,
) -> DatasetImportTask | None:
    """The earliest remote task on the dataset created during the submit window and owned by no job."""
    if submit_started_at is None:
        return None
    window_start = submit_started_at - CLOCK_SKEW
    # A request cannot outlive the lease: past it the submitting worker had given up or died.
    window_end = submit_started_at + timedelta(seconds=lease_s) + CLOCK_SKEW
    candidates: list[DatasetImportTask] = []
    for page_number in range(1, ADOPTION_PAGES + 1):
        page = client.list_tasks(dataset_id, page=page_number, page_size=100)
        for task in page.results or []:
            if task.id not in owned and window_start <= task.created_at <= window_end:
                candidates.append(task)
        if page_number * 100 >= page.count or not page.results:
            break
    if not candidates:
        return None
    return min(candidates, key=lambda task: task.created_at)
