"""Reading a schedule's snapshots: the files taken, newest first, what is still to take, and a job's snapshot.

Writes are :mod:`store.snapshot_outbox`'s. Retention (:mod:`store.retention`) deletes none of these rows: they are
the record of which version of a dataset an evaluation ran on, and the files they name are the user's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.snapshot_models import DatasetSnapshot, SnapshotJob, SnapshotStatus

__all__ = ["JobSnapshot", "SnapshotBacklog", "list_snapshots", "snapshot_backlog", "snapshot_of_job"]


def list_snapshots(session: Session, schedule_id: str, *, limit: int | None = None) -> list[DatasetSnapshot]:
    """The snapshots of a schedule, newest first (``limit``: only that many)."""
    query = (
        select(DatasetSnapshot)
        .where(DatasetSnapshot.schedule_id == schedule_id)
        .order_by(DatasetSnapshot.created_at.desc(), DatasetSnapshot.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


@dataclass(frozen=True)
class SnapshotBacklog:
    """A schedule's completed jobs whose snapshot is not taken: pending (tried again) and given up."""

    pending: int
    failed: int
    last_error: str | None
    """The latest error written on a row not taken, if any."""


def snapshot_backlog(session: Session, schedule_id: str) -> SnapshotBacklog:
    counts: dict[str, int] = {
        str(status): count
        for status, count in session.execute(
            select(SnapshotJob.status, func.count())
            .where(SnapshotJob.schedule_id == schedule_id, SnapshotJob.status != SnapshotStatus.TAKEN)
            .group_by(SnapshotJob.status)
        )
    }
    last_error = session.scalars(
        select(SnapshotJob.last_error)
        .where(
            SnapshotJob.schedule_id == schedule_id,
            SnapshotJob.status != SnapshotStatus.TAKEN,
            SnapshotJob.last_error.is_not(None),
        )
        .order_by(SnapshotJob.completed_at.desc())
        .limit(1)
    ).first()
    pending, failed = counts.get(SnapshotStatus.PENDING, 0), counts.get(SnapshotStatus.FAILED, 0)
    return SnapshotBacklog(pending=pending, failed=failed, last_error=last_error)


@dataclass(frozen=True)
class JobSnapshot:
    """Where a job's snapshot is: its status, and the snapshot once taken."""

    status: SnapshotStatus
    attempts: int
    last_error: str | None
    snapshot: DatasetSnapshot | None


def snapshot_of_job(session: Session, job_id: str) -> JobSnapshot | None:
    """The snapshot after ``job_id``, or None when its schedule took none (or it is no schedule's job)."""
    row = session.get(SnapshotJob, job_id)
    if row is None:
        return None
    snapshot = None if row.snapshot_id is None else session.get(DatasetSnapshot, row.snapshot_id)
    return JobSnapshot(status=row.status, attempts=row.attempts, last_error=row.last_error, snapshot=snapshot)
