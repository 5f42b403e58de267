"""The job ledger's tables: one row per import job, one row per status change.

Statuses and kinds are stored as plain strings (``VARCHAR(32)``) rather than native PostgreSQL enums, so a new
status needs no ``ALTER TYPE`` migration and SQLite and PostgreSQL store the same thing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.coltypes import UTCDateTime

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "Base",
    "ImportJob",
    "ImportKind",
    "JobEvent",
    "JobStatus",
]


class JobStatus(StrEnum):
    """Where an import job is in its life; see ``store.state_machine`` for the allowed moves."""

    PENDING = "PENDING"
    """Row written, request not sent yet."""
    SUBMITTING = "SUBMITTING"
    """The import request is in flight (or was, when its worker died)."""
    RUNNING = "RUNNING"
    """The remote task id is known; the job is polled."""
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    """The API refused the request (4xx); never retried."""
    LOST = "LOST"
    """The remote task disappeared (404 when polled)."""
    EXPIRED = "EXPIRED"
    """The job ran past its deadline."""
    CANCELLED_LOCALLY = "CANCELLED_LOCALLY"
    """A user stopped tracking the job; the remote import, if any, is not cancelled (the API cannot)."""


TERMINAL_JOB_STATUSES: frozenset[JobStatus] = frozenset(
    {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELED,
        JobStatus.TERMINATED,
        JobStatus.TIMED_OUT,
        JobStatus.REJECTED,
        JobStatus.LOST,
        JobStatus.EXPIRED,
        JobStatus.CANCELLED_LOCALLY,
    }
)
ACTIVE_JOB_STATUSES: frozenset[JobStatus] = frozenset(JobStatus) - TERMINAL_JOB_STATUSES


class ImportKind(StrEnum):
    """Which import endpoint a job calls."""

    CAMPAIGN = "campaign"
    EXPLORER = "explorer"
    FILE = "file"
    PLAYGROUND = "playground"
    DATASET = "dataset"


def _enum_values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def _str_enum(enum: type[StrEnum]) -> Enum:
    # Persist the values ("campaign"), not the member names ("CAMPAIGN"); no CHECK constraint so adding a
    # member never needs a table rebuild on SQLite.
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=_enum_values,
        validate_strings=True,
    )


def _new_job_id() -> str:
    return str(uuid.uuid4())


# Explicit constraint names keep migrations reproducible across backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class ImportJob(Base):
    """One requested import, from the moment it is asked for until it ends.

    ``version`` is SQLAlchemy's optimistic lock: an ORM flush of a job whose row changed since it was loaded
    (for example by a poller that took over an expired lease) fails with ``StaleDataError`` instead of
    silently overwriting the newer state.
    """

    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_job_id)
    kind: Mapped[ImportKind] = mapped_column(_str_enum(ImportKind))
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    origin: Mapped[str] = mapped_column(String(255))

    # Unique: one remote task belongs to at most one job, which is what lets recovery adopt an orphan task.
    remote_task_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[JobStatus] = mapped_column(_str_enum(JobStatus), index=True)
    remote_status: Mapped[str | None] = mapped_column(String(64))
    remote_status_since: Mapped[datetime | None]
    progress: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(128))
    requested_count: Mapped[int | None] = mapped_column(Integer)
    imported_count: Mapped[int | None] = mapped_column(Integer)
    skipped_count: Mapped[int | None] = mapped_column(Integer)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_poll_at: Mapped[datetime | None]
    poll_interval_s: Mapped[float | None] = mapped_column(Float())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(index=True)
    submit_started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job",
        order_by="JobEvent.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise_on_sql",
    )

    __table_args__ = (Index("ix_import_jobs_status_next_poll_at", "status", "next_poll_at"),)
    __mapper_args__ = {"version_id_col": version}

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    def __repr__(self) -> str:
        return (
            f"ImportJob(id={self.id!r}, kind={self.kind!s}, dataset_id={self.dataset_id!r}, "
            f"status={self.status!s}, remote_task_id={self.remote_task_id!r}, progress={self.progress!r})"
        )


class JobEvent(Base):
    """One status change of a job, kept so a job's history can be read back."""

    __tablename__ = "job_events"

    # BIGINT on PostgreSQL; SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    old_status: Mapped[JobStatus | None] = mapped_column(_str_enum(JobStatus))
    new_status: Mapped[JobStatus] = mapped_column(_str_enum(JobStatus))
    progress: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)

    job: Mapped[ImportJob] = relationship(back_populates="events", lazy="raise_on_sql")

    def __repr__(self) -> str:
        old = None if self.old_status is None else self.old_status.value
        return (
            f"JobEvent(job_id={self.job_id!r}, at={self.at.isoformat()}, {old} -> {self.new_status!s}, "
            f"progress={self.progress!r})"
        )
