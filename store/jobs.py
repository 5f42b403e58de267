"""Reading and writing import jobs.

Every function takes the caller's Session and, when it writes, an explicit ``now``; none commits.
Claiming work (submit, poll, recovery leases) lives in ``store.leases`` and is re-exported here; turning
remote answers into job updates lives in ``jobs.transitions``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.clock import ledger_now
from store.errors import JobNotFoundError
from store.leases import acquire_lease, begin_submit, begin_submits, claim_due_jobs, lease_free, release_lease
from store.models import ACTIVE_JOB_STATUSES, ImportJob, ImportKind, JobEvent, JobStatus
from store.state_machine import apply_transition, new_event

__all__ = [
    "acquire_lease",
    "begin_submit",
    "begin_submits",
    "cancel_job",
    "claim_due_jobs",
    "create_job",
    "get_job",
    "get_job_by_key",
    "job_events",
    "jobs_with_key_prefix",
    "list_jobs",
    "overdue_jobs",
    "release_lease",
    "release_poll_claims",
    "require_job",
    "stale_jobs",
]


def create_job(
    session: Session,
    *,
    kind: ImportKind,
    dataset_id: str,
    params: Mapping[str, Any],
    idempotency_key: str,
    origin: str,
    deadline_at: datetime | None,
    now: datetime,
    skip_existing: bool = False,
) -> tuple[ImportJob, bool]:
    """Create a PENDING job, or return the job that already has ``idempotency_key``.

    Returns ``(job, created)``. A second request with a known key gets the first job back unchanged, even if
    its other arguments differ: the key, not the content, identifies a request. Safe against concurrent
    creators: the insert runs in a SAVEPOINT and a unique-key conflict falls back to reading the winner's row.
    """
    existing = get_job_by_key(session, idempotency_key)
    if existing is not None:
        return existing, False
    job = ImportJob(
        id=str(uuid.uuid4()),
        kind=ImportKind(kind),
        dataset_id=dataset_id,
        params=dict(params),
        idempotency_key=idempotency_key,
        origin=origin,
        status=JobStatus.PENDING,
        attempts=0,
        poll_count=0,
        deadline_at=deadline_at,
        skip_existing=skip_existing,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(job)
            new_event(job, None, JobStatus.PENDING, now=now, progress=None, message=None)
    except IntegrityError:
        winner = get_job_by_key(session, idempotency_key)
        if winner is None:
            raise
        return winner, False
    return job, True


def get_job(session: Session, job_id: str) -> ImportJob | None:
    """The job with ``job_id``, or None."""
    return session.get(ImportJob, job_id)


def require_job(session: Session, job_id: str, *, for_update: bool = False) -> ImportJob:
    """The job with ``job_id``, freshly read (and row-locked on PostgreSQL with ``for_update``).

    :raises JobNotFoundError: no such job.
    """
    job = session.get(ImportJob, job_id, with_for_update=for_update, populate_existing=True)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def get_job_by_key(session: Session, idempotency_key: str) -> ImportJob | None:
    """The job created for ``idempotency_key``, or None."""
    return session.scalars(
        select(ImportJob).where(ImportJob.idempotency_key == idempotency_key)
    ).one_or_none()


def jobs_with_key_prefix(session: Session, prefix: str) -> list[ImportJob]:
    """The jobs whose idempotency key starts with ``prefix``, oldest first (the chunks of one searched import)."""
    # LIKE's wildcards in the prefix are escaped: a key is compared character for character.
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.idempotency_key.like(f"{escaped}%", escape="\\"))
            .order_by(ImportJob.created_at, ImportJob.id)
        )
    )


def release_poll_claims(session: Session, job_ids: Collection[str], *, owner: str) -> int:
    """Drop ``owner``'s lease on RUNNING jobs it claimed but did not observe, so that the next round polls them.

    A job whose lease ``owner`` lost meanwhile (it expired and another poller took it), or that left RUNNING, is
    left alone. Returns how many jobs were released.
    """
    if not job_ids:
        return 0
    stmt = (
        update(ImportJob)
        .where(
            ImportJob.id.in_(list(job_ids)),
            ImportJob.status == JobStatus.RUNNING,
            ImportJob.lease_owner == owner,
        )
        .values(lease_owner=None, lease_expires_at=None, version=ImportJob.version + 1)
        .returning(ImportJob.id)
        .execution_options(synchronize_session=False)
    )
    return len(session.scalars(stmt).all())


def list_jobs(
    session: Session,
    *,
    status: JobStatus | Collection[JobStatus] | None = None,
    kind: ImportKind | None = None,
    dataset_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ImportJob]:
    """Jobs matching the filters, newest first."""
    query = select(ImportJob)
    if isinstance(status, JobStatus):
        query = query.where(ImportJob.status == status)
    elif status is not None:
        query = query.where(ImportJob.status.in_(list(status)))
    if kind is not None:
        query = query.where(ImportJob.kind == kind)
    if dataset_id is not None:
        query = query.where(ImportJob.dataset_id == dataset_id)
    query = query.order_by(ImportJob.created_at.desc(), ImportJob.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def job_events(session: Session, job_id: str) -> list[JobEvent]:
    """A job's status changes, oldest first."""
    query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.at, JobEvent.id)
    return list(session.scalars(query))


def stale_jobs(
    session: Session,
    *,
    status: JobStatus,
    older_than: datetime,
    limit: int,
    now: datetime | None = None,
) -> list[ImportJob]:
    """Jobs in ``status`` untouched since ``older_than`` and holding no lease live at ``now``, oldest first.

    ``now`` defaults to ``older_than``. For the recovery sweep: PENDING jobs whose submit message was lost
    (``older_than`` some minutes ago), and SUBMITTING jobs whose worker died mid-request (``older_than=now``:
    the expired lease is what matters).
    """
    if now is None:
        now = older_than
    query = (
        select(ImportJob)
        .where(
            ImportJob.status == status,
            ImportJob.updated_at <= older_than,
            lease_free(ledger_now(session, now)),
            # The API asked us to wait (Retry-After): the submit task's retry is already scheduled for then.
            or_(ImportJob.submit_not_before.is_(None), ImportJob.submit_not_before <= now),
        )
        .order_by(ImportJob.updated_at, ImportJob.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def overdue_jobs(session: Session, *, now: datetime, limit: int) -> list[ImportJob]:
    """Active jobs past their deadline and holding no live lease, earliest deadline first."""
    query = (
        select(ImportJob)
        .where(
            ImportJob.status.in_(list(ACTIVE_JOB_STATUSES)),
            ImportJob.deadline_at.is_not(None),
            ImportJob.deadline_at <= now,
            lease_free(ledger_now(session, now)),
        )
        .order_by(ImportJob.deadline_at, ImportJob.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def cancel_job(session: Session, job_id: str, *, now: datetime, message: str | None = None) -> ImportJob:
    """Stop tracking a job (CANCELLED_LOCALLY). The remote import, if one started, keeps running.

    :raises JobNotFoundError: no such job.
    :raises JobAlreadyFinishedError: the job already ended.
    """
    job = require_job(session, job_id, for_update=True)
    apply_transition(job, JobStatus.CANCELLED_LOCALLY, now=now, message=message or "cancelled locally")
    return job
