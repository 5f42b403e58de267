"""The snapshot tables: the versions of a dataset taken after a schedule's imports, and the completed jobs each covers.

A :class:`SnapshotJob` row is written in the same transaction as a schedule job's move to COMPLETED when the schedule
has a snapshot folder (see :mod:`store.snapshot_outbox`): it is the to-do entry of that job's snapshot, then the
record of which snapshot covers the job. Its primary key is the job id, so a job is covered by one snapshot at most.
A :class:`DatasetSnapshot` row is written once its JSONL file is in place.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _str_enum

__all__ = ["DatasetSnapshot", "SnapshotJob", "SnapshotStatus"]


class SnapshotStatus(StrEnum):
    """Where the snapshot after one completed job is."""

    PENDING = "pending"
    """Not taken yet; tried at ``next_attempt_at``."""
    TAKEN = "taken"
    """A snapshot covers the job (``snapshot_id``)."""
    FAILED = "failed"
    """Given up: the dataset is gone, or the schedule no longer takes snapshots (``last_error`` says which)."""


def _new_id() -> str:
    return str(uuid.uuid4())


class DatasetSnapshot(Base):
    """One JSONL export of a dataset, written after one or more of a schedule's imports completed.

    ``job_ids`` are the completed jobs it follows (jobs that completed together share one snapshot); ``sha256`` and
    ``bytes`` are those of the file at ``path``, ``record_count`` its lines (one record each).
    """

    __tablename__ = "dataset_snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(String(64))
    job_ids: Mapped[list[str]] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(Text)
    record_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    # A schedule's snapshots, newest first.
    __table_args__ = (Index("ix_dataset_snapshots_schedule_id_created_at", "schedule_id", "created_at"),)

    def __repr__(self) -> str:
        return (
            f"DatasetSnapshot(dataset_id={self.dataset_id!r}, path={self.path!r}, records={self.record_count!r}, "
            f"sha256={self.sha256[:12]!r})"
        )


class SnapshotJob(Base):
    """A completed job of a schedule that takes snapshots: its snapshot still to take, or the one that covers it.

    No foreign key to the job: the record of which snapshot followed a job outlives a pruned job.
    """

    __tablename__ = "snapshot_jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[SnapshotStatus] = mapped_column(_str_enum(SnapshotStatus))
    completed_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[str | None] = mapped_column(ForeignKey("dataset_snapshots.id", ondelete="SET NULL"), index=True)

    # The taker's question: which pending rows are due.
    __table_args__ = (Index("ix_snapshot_jobs_status_next_attempt_at", "status", "next_attempt_at"),)

    def __repr__(self) -> str:
        return f"SnapshotJob(job_id={self.job_id!r}, status={self.status!s}, attempts={self.attempts!r})"
