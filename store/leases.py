"""Claiming jobs so that exactly one worker acts on each.

Each claim ends in a conditional ``UPDATE … RETURNING`` whose WHERE clause re-checks the claim's conditions,
so the database decides who wins. On PostgreSQL the poller's candidates are picked with ``FOR UPDATE SKIP
LOCKED`` first, so concurrent pollers split the due jobs between them instead of queueing on the same rows.
On SQLite everything runs under the database's single write lock (sessions begin with ``BEGIN IMMEDIATE``,
see ``store.db``), which gives the same guarantee. Every claim bumps ``ImportJob.version``, so a worker still
holding an object from before the claim cannot flush over it.

Leases are granted and compared at the ledger's time (:func:`store.clock.ledger_now`): the database's clock for the
service's sessions, so a worker whose own clock is off neither takes a lease another still holds nor grants one
that is already over for the others, and due polls are claimed when the database's clock says they are due. The
``now`` the functions take is used only by sessions that do not run on the database's clock (tests driving time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from store.clock import ledger_now
from store.models import ImportJob, JobStatus
from store.state_machine import check_transition, new_event

__all__ = ["acquire_lease", "begin_submit", "begin_submits", "claim_due_jobs", "lease_free", "release_lease"]


def lease_free(now: datetime) -> ColumnElement[bool]:
    """SQL condition: the job holds no lease that is still live at ``now``.

    Pass the ledger's time (``ledger_now(session, caller_now)``), never a host's own clock.
    """
    return or_(ImportJob.lease_expires_at.is_(None), ImportJob.lease_expires_at <= now)


def _returning_jobs(session: Session, stmt: Any) -> list[ImportJob]:
    # populate_existing: objects already in the session are refreshed from the returned row, so the caller
    # sees the new status, lease and version.
    return list(session.scalars(stmt.returning(ImportJob).execution_options(populate_existing=True)))


def begin_submit(
    session: Session, job_id: str, *, owner: str, now: datetime, lease_s: float
) -> ImportJob | None:
    """Move a PENDING job to SUBMITTING and lease it to ``owner``; None if the job is not PENDING.

    This is the guard that keeps two deliveries of the same submit message from both sending the request:
    only one conditional update can match. Counts the attempt and records when the submit began (recovery
    looks for remote tasks created after that moment).
    """
    jobs = begin_submits(session, [job_id], owner=owner, now=now, lease_s=lease_s)
    return jobs[0] if jobs else None


def begin_submits(
    session: Session,
    job_ids: Sequence[str],
    *,
    owner: str,
    now: datetime,
    lease_s: float,
    start_offset: timedelta = timedelta(0),
) -> list[ImportJob]:
    """:func:`begin_submit` for several jobs in one statement: those still PENDING move to SUBMITTING.

    The same conditional update, so a job another delivery already took is simply not returned. Every job of
    the statement gets the same lease; its submit start is ``start_offset`` after the lease's start (a batch
    stamps the order in which its POSTs on one dataset will go, which is what recovery pairs tasks by).
    """
    if not job_ids:
        return []
    for job_id in job_ids:
        check_transition(job_id, JobStatus.PENDING, JobStatus.SUBMITTING)
    # The submit's start is the ledger's time too: recovery compares it with lease lengths and remote task times.
    now = ledger_now(session, now)
    stmt = (
        update(ImportJob)
        .where(ImportJob.id.in_(list(job_ids)), ImportJob.status == JobStatus.PENDING)
        .values(
            status=JobStatus.SUBMITTING,
            submit_started_at=now + start_offset,
            attempts=ImportJob.attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
            version=ImportJob.version + 1,
        )
    )
    jobs = _returning_jobs(session, stmt)
    for job in jobs:
        new_event(job, JobStatus.PENDING, JobStatus.SUBMITTING, now=now, progress=job.progress, message=None)
    return jobs


def claim_due_jobs(
    session: Session, *, owner: str, now: datetime, lease_s: float, limit: int
) -> list[ImportJob]:
    """Lease up to ``limit`` RUNNING jobs whose ``next_poll_at`` has come, most overdue first.

    Jobs leased by another worker are skipped until that lease expires. Two concurrent callers never get the
    same job.
    """
    if limit <= 0:
        return []
    now = ledger_now(session, now)
    # Two statements on purpose. Folding the SELECT into ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE
    # SKIP LOCKED)`` lets PostgreSQL re-run the subquery during the update and claim more than ``limit`` rows.
    due = (
        select(ImportJob.id)
        .where(ImportJob.status == JobStatus.RUNNING, ImportJob.next_poll_at <= now, lease_free(now))
        .order_by(ImportJob.next_poll_at, ImportJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered only on PostgreSQL
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    # The conditions are checked again against the current rows: on SQLite that is what makes a claim from a
    # session that did not take the write lock at BEGIN safe (it fails instead of claiming twice).
    stmt = (
        update(ImportJob)
        .where(ImportJob.id.in_(ids), ImportJob.status == JobStatus.RUNNING, lease_free(now))
        .values(
            lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_s), version=ImportJob.version + 1
        )
    )
    jobs = _returning_jobs(session, stmt)
    # RETURNING gives no order guarantee.
    jobs.sort(key=lambda job: (job.next_poll_at or now, job.id))
    return jobs


def acquire_lease(
    session: Session, job_id: str, *, status: JobStatus, owner: str, now: datetime, lease_s: float
) -> ImportJob | None:
    """Lease one job to ``owner`` if it is in ``status`` and nobody holds a live lease; else None.

    For the recovery sweep, so two sweeps never recover the same SUBMITTING job at once.
    """
    now = ledger_now(session, now)
    stmt = (
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == status, lease_free(now))
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            version=ImportJob.version + 1,
        )
    )
    jobs = _returning_jobs(session, stmt)
    return jobs[0] if jobs else None


def release_lease(session: Session, job_id: str, *, owner: str) -> bool:
    """Drop ``owner``'s lease on a job; False when ``owner`` no longer holds it (it expired and was taken)."""
    stmt = (
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, version=ImportJob.version + 1)
    )
    return bool(_returning_jobs(session, stmt))
