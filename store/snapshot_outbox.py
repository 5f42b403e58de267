"""The snapshot outbox: one row per completed job of a schedule that takes snapshots, claimed by takers, closed by the
snapshot that covers it.

Guarantees:

- **Written with the ending.** :func:`enqueue_completion` runs inside :func:`store.state_machine.apply_transition`,
  so the row joins the transaction that moves a schedule's job to COMPLETED: a completed job whose snapshot was not
  taken (the worker died, the API was down) is still pending afterwards, and the next taker finds it.
- **One snapshot per job.** The job id is the row's key, and a snapshot is recorded (:func:`record_taken`) only for
  the rows its taker still holds: two takers never both cover a job.
- **Claimed by one taker at a time.** :func:`claim_due` leases due rows with a conditional update (candidates picked
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under SQLite's single write lock there), like the webhook outbox. The
  rows of one schedule and dataset that are due together are one group: one export covers them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store.clock import ledger_now
from store.models import ImportJob, JobStatus, Schedule
from store.snapshot_models import DatasetSnapshot, SnapshotJob, SnapshotStatus
from store.webhook_outbox import schedule_of

__all__ = [
    "ClaimedGroup",
    "claim_due",
    "enqueue_completion",
    "record_failure",
    "record_taken",
]

# The schedules that take snapshots (name -> id), per transaction: a poll round completes many jobs in one.
_CACHE_KEY = "dsimport.snapshot_schedules"


def _snapshot_schedules(session: Session) -> dict[str, str]:
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is transaction:
        return dict(cached[1])
    rows = session.execute(select(Schedule.name, Schedule.id).where(Schedule.snapshot_dir.is_not(None))).all()
    schedules = {row.name: row.id for row in rows}
    session.info[_CACHE_KEY] = (transaction, schedules)
    return schedules


def enqueue_completion(session: Session, job: ImportJob, *, now: datetime) -> SnapshotJob | None:
    """Add the pending snapshot row of ``job``, a job that just completed, when its schedule takes snapshots; the
    caller commits. Runs without autoflush, like the webhook outbox (the job's version check is the caller's)."""
    if job.status is not JobStatus.COMPLETED:
        return None
    name = schedule_of(job)
    if name is None:
        return None
    with session.no_autoflush:
        schedule_id = _snapshot_schedules(session).get(name)
        if schedule_id is None:
            return None
        row = SnapshotJob(
            job_id=job.id,
            schedule_id=schedule_id,
            dataset_id=job.dataset_id,
            status=SnapshotStatus.PENDING,
            completed_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        session.add(row)
        return row


@dataclass(frozen=True)
class ClaimedGroup:
    """Pending rows of one schedule and dataset leased to one taker: one export covers them all."""

    schedule_id: str
    schedule_name: str | None
    snapshot_dir: str | None
    """The schedule's folder now (None: it no longer takes snapshots, or it was forgotten)."""
    dataset_id: str
    job_ids: tuple[str, ...]
    """Ordered by completion, the last completed last."""
    attempts: int
    """The most attempts any of the rows has had, this one included."""


def _lease_free(now: datetime) -> Any:
    return or_(SnapshotJob.lease_expires_at.is_(None), SnapshotJob.lease_expires_at <= now)


def claim_due(session: Session, *, owner: str, now: datetime, lease_s: float, limit: int) -> list[ClaimedGroup]:
    """Lease up to ``limit`` due pending rows, grouped by schedule and dataset; two callers never get the same row.

    Counts the attempt at the claim, so rows whose taker dies on them still back off.
    """
    if limit <= 0:
        return []
    now = ledger_now(session, now)
    due = (
        select(SnapshotJob.job_id)
        .where(
            SnapshotJob.status == SnapshotStatus.PENDING,
            SnapshotJob.next_attempt_at <= now,
            _lease_free(now),
        )
        .order_by(SnapshotJob.next_attempt_at, SnapshotJob.job_id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered only on PostgreSQL
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    claimed = list(
        session.scalars(
            update(SnapshotJob)
            .where(SnapshotJob.job_id.in_(ids), SnapshotJob.status == SnapshotStatus.PENDING, _lease_free(now))
            .values(
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=SnapshotJob.attempts + 1,
            )
            .returning(SnapshotJob.job_id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return []
    rows = session.execute(
        select(SnapshotJob, Schedule.name, Schedule.snapshot_dir)
        .outerjoin(Schedule, Schedule.id == SnapshotJob.schedule_id)
        .where(SnapshotJob.job_id.in_(claimed))
        .order_by(SnapshotJob.completed_at, SnapshotJob.job_id)
        .execution_options(populate_existing=True)
    ).all()
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.SnapshotJob.schedule_id, row.SnapshotJob.dataset_id), []).append(row)
    return [
        ClaimedGroup(
            schedule_id=schedule_id,
            schedule_name=members[0].name,
            snapshot_dir=members[0].snapshot_dir,
            dataset_id=dataset_id,
            job_ids=tuple(member.SnapshotJob.job_id for member in members),
            attempts=max(member.SnapshotJob.attempts for member in members),
        )
        for (schedule_id, dataset_id), members in groups.items()
    ]


def record_taken(
    session: Session,
    group: ClaimedGroup,
    *,
    owner: str,
    path: str,
    record_count: int,
    sha256: str,
    size_bytes: int,
    now: datetime,
) -> DatasetSnapshot | None:
    """Record the snapshot written for ``group``, covering the rows ``owner`` still holds; the caller commits.

    None when it holds none of them any more (its lease ran out and another taker claimed them): nothing is written,
    and the caller removes its file.
    """
    snapshot = DatasetSnapshot(
        schedule_id=group.schedule_id,
        dataset_id=group.dataset_id,
        job_ids=[],
        path=path,
        record_count=record_count,
        sha256=sha256,
        bytes=size_bytes,
        created_at=now,
    )
    # Inserted first: the rows point at it (the key is checked at once on SQLite).
    session.add(snapshot)
    session.flush()
    covered = set(
        session.scalars(
            update(SnapshotJob)
            .where(
                SnapshotJob.job_id.in_(group.job_ids),
                SnapshotJob.lease_owner == owner,
                SnapshotJob.status == SnapshotStatus.PENDING,
            )
            .values(
                status=SnapshotStatus.TAKEN,
                snapshot_id=snapshot.id,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=None,
                last_error=None,
            )
            .returning(SnapshotJob.job_id)
            .execution_options(synchronize_session=False)
        )
    )
    if not covered:
        session.delete(snapshot)
        session.flush()
        return None
    snapshot.job_ids = [job_id for job_id in group.job_ids if job_id in covered]
    return snapshot


def record_failure(
    session: Session,
    group: ClaimedGroup,
    *,
    owner: str,
    error: str,
    next_attempt_at: datetime | None,
) -> int:
    """Write why ``group``'s snapshot was not taken, on the rows ``owner`` still holds; returns how many.

    With ``next_attempt_at`` the rows stay pending and are tried again then; without, they are given up (FAILED).
    """
    values: dict[str, Any] = {
        "last_error": error,
        "lease_owner": None,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at,
    }
    if next_attempt_at is None:
        values["status"] = SnapshotStatus.FAILED
    result = session.execute(
        update(SnapshotJob)
        .where(
            SnapshotJob.job_id.in_(group.job_ids),
            SnapshotJob.lease_owner == owner,
            SnapshotJob.status == SnapshotStatus.PENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
