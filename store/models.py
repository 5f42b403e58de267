"""The job ledger's tables: one row per import job, one row per status change.

Statuses and kinds are stored as plain strings (``VARCHAR(32)``) rather than native PostgreSQL enums, so a new
status needs no ``ALTER TYPE`` migration and SQLite and PostgreSQL store the same thing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from import_kinds import ImportKind
from store.coltypes import UTCDateTime

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "WINDOW_SCHEDULE_KINDS",
    "ApiToken",
    "BackfillStatus",
    "Base",
    "DeadLetter",
    "ImportJob",
    "ImportKind",
    "JobEvent",
    "JobStatus",
    "RunStatus",
    "Schedule",
    "ScheduleBackfill",
    "ScheduleItem",
    "ScheduleKind",
    "ScheduleRun",
    "ScheduleSource",
    "TokenScope",
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
    # When the API says the remote task ended (its updated_at when first seen terminal): the jobs page's detection
    # lag is finished_at minus this. None for jobs that ended without a remote ending (refused, lost, expired).
    remote_ended_at: Mapped[datetime | None]
    progress: Mapped[int | None] = mapped_column(Integer)
    # When the current progress value was first seen, and the fastest rate (points per second) the last two values
    # allow: what the poll forecast reads (jobs/poll_forecast.py).
    progress_at: Mapped[datetime | None]
    progress_rate: Mapped[float | None] = mapped_column(Float())
    message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(128))
    requested_count: Mapped[int | None] = mapped_column(Integer)
    imported_count: Mapped[int | None] = mapped_column(Integer)
    skipped_count: Mapped[int | None] = mapped_column(Integer)
    # Our own counts, beside the API's: items left out before submitting because the target held them already, and
    # items a schedule's sample rate left out (None: not counted for this job).
    duplicates_skipped: Mapped[int | None] = mapped_column(Integer)
    skip_existing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Before the POST, leave out the items the target dataset already holds (:mod:`jobs.skip_existing`)."""
    deduped_at: Mapped[datetime | None]
    original_request: Mapped[dict[str, Any] | None]
    """``{"kind", "params"}`` as requested, kept when that check cut the job (a repeated request is compared to it)."""
    """When that check was done and the params cut to what is new: the POST sends these params, every retry too."""
    sampled_out: Mapped[int | None] = mapped_column(Integer)
    # Ended COMPLETED having imported fewer records than it requested (see jobs.outcomes.is_partial).
    partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_poll_at: Mapped[datetime | None]
    poll_interval_s: Mapped[float | None] = mapped_column(Float())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    # A PENDING job is not sent again before this (the API's Retry-After); the recovery sweep honours it too.
    submit_not_before: Mapped[datetime | None]

    created_at: Mapped[datetime]
    submit_started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    # Indexed for the prune, which deletes finished jobs by age.
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job",
        order_by="JobEvent.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise_on_sql",
    )

    __table_args__ = (
        Index("ix_import_jobs_status_next_poll_at", "status", "next_poll_at"),
        # Recovery reads the jobs submitted on a dataset around a time, not every job the dataset ever had.
        Index("ix_import_jobs_dataset_id_submit_started_at", "dataset_id", "submit_started_at"),
        # The jobs page's keyset (newest first, id breaking ties), alone and under its status and dataset filters.
        Index("ix_import_jobs_created_at_id", "created_at", "id"),
        Index("ix_import_jobs_status_created_at_id", "status", "created_at", "id"),
        Index("ix_import_jobs_dataset_id_created_at_id", "dataset_id", "created_at", "id"),
    )
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


class DeadLetter(Base):
    """An import request that could not become a job, kept with its raw body and the reason it was refused.

    ``body`` is the raw body as text when it is UTF-8 without NUL bytes (PostgreSQL text cannot hold NUL), else
    its base64 with ``body_base64`` set. ``body_size`` is the size of the body as received, in bytes: a body
    over the size limit is kept truncated, and the two lengths tell so. ``(stream, entry_id)`` is unique so an
    entry delivered twice (its consumer died before acknowledging it) is recorded once.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    stream: Mapped[str] = mapped_column(String(255))
    entry_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    body_base64: Mapped[bool] = mapped_column(Boolean)
    body_size: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)
    # Indexed for the prune, which deletes resolved dead letters by age.
    retried_at: Mapped[datetime | None] = mapped_column(index=True)
    retried_job_id: Mapped[str | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="SET NULL"))

    __table_args__ = (UniqueConstraint("stream", "entry_id"),)

    def __repr__(self) -> str:
        # The body stays out: it is arbitrary producer data and may be large.
        return (
            f"DeadLetter(id={self.id!r}, stream={self.stream!r}, entry_id={self.entry_id!r}, "
            f"message_id={self.message_id!r}, reason={self.reason!r})"
        )


class ScheduleKind(StrEnum):
    """What a schedule does when it fires."""

    PLAIN = "plain"
    """One import of a fixed kind with fixed params per fire."""
    EXPLORER_WINDOW = "explorer-window"
    """Import the explorer events created since the watermark, in chunks."""
    SPANS_WINDOW = "spans-window"
    """Import the telemetry spans found since the watermark, in chunks, with a mapping contract."""
    CAMPAIGN_WHEN_DONE = "campaign-when-done"
    """Wait for a campaign to complete, import it once, then stop."""
    DATASET_COPY = "dataset-copy"
    """Copy the records of a dataset this schedule has not copied yet."""


WINDOW_SCHEDULE_KINDS: frozenset[ScheduleKind] = frozenset({ScheduleKind.EXPLORER_WINDOW, ScheduleKind.SPANS_WINDOW})
"""Schedules that import what appeared in ``[watermark, fire time - settle lag)`` and then move the watermark."""


class ScheduleSource(StrEnum):
    """Where a schedule is defined: the command line (the table is the truth) or the schedules file."""

    CLI = "cli"
    FILE = "file"


class RunStatus(StrEnum):
    """What one fire of a schedule came to."""

    STARTED = "STARTED"
    """Claimed by a firing task that has not finished (or died: its lease says when another may take over)."""
    SUBMITTED = "SUBMITTED"
    """Jobs were requested (their own statuses tell how the imports went)."""
    EMPTY = "EMPTY"
    """Nothing new to import."""
    WAITING = "WAITING"
    """The campaign is not COMPLETED yet; nothing was requested."""
    FAILED = "FAILED"
    """The run could not plan its imports (for example the API was down); the next fire tries again."""


class Schedule(Base):
    """A beat schedule: when it fires (cron or period), what it imports, and its progress (watermark, last fire).

    ``fires_after`` is the moment before which beat never fires it (creation, or the last resume), so a schedule
    never catches up on fire times from before it existed or while it was paused.
    """

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_job_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[ScheduleSource] = mapped_column(_str_enum(ScheduleSource))
    kind: Mapped[ScheduleKind] = mapped_column(_str_enum(ScheduleKind))
    import_kind: Mapped[ImportKind] = mapped_column(_str_enum(ImportKind))
    dataset_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    cron: Mapped[str | None] = mapped_column(String(255))
    every_s: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    fires_after: Mapped[datetime]
    watermark: Mapped[datetime | None]
    last_fire_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    finished_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    source_file: Mapped[str | None] = mapped_column(Text)
    """The schedules file a file schedule was created from: a sync of another file never touches it."""
    removed_at: Mapped[datetime | None]
    """Set by a removal that keeps the history: the schedule no longer fires, its runs and items stay."""
    copy_page: Mapped[int | None] = mapped_column(Integer)
    """dataset-copy: the source page the next fire starts reading at (1-based; None: the first)."""
    sample_rate: Mapped[float | None] = mapped_column(Float)
    skip_existing: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Its jobs leave out the items the target dataset already holds (on unless the schedule says otherwise)."""
    """Window schedules: the share of the items found that is imported, in (0, 1); None imports every item."""
    snapshot_dir: Mapped[str | None] = mapped_column(Text)
    """An absolute folder: after each completed import the target dataset is exported there (None: no snapshots;
    see :mod:`store.snapshot_outbox`)."""

    def __repr__(self) -> str:
        timing = f"cron={self.cron!r}" if self.cron is not None else f"every_s={self.every_s!r}"
        return (
            f"Schedule(name={self.name!r}, kind={self.kind!s}, {timing}, dataset_id={self.dataset_id!r}, "
            f"paused={self.paused!r}, source={self.source!s})"
        )


class ScheduleRun(Base):
    """One fire of a schedule. Unique on (schedule, fire time): the firing task inserts it first, and a second
    task for the same fire (two beats, a redelivered message) finds it and does nothing.

    A backfill's chunk is a run too (trigger ``backfill``, ``backfill_id`` set, its fire time the chunk's start):
    unique on (backfill, fire time) instead, so a chunk never takes the place of a live fire at the same time."""

    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[RunStatus] = mapped_column(_str_enum(RunStatus))
    owner: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    lease_expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    job_ids: Mapped[list[str]] = mapped_column(JSON)
    item_count: Mapped[int | None] = mapped_column(Integer)
    offered_count: Mapped[int | None] = mapped_column(Integer)
    """Window and copy fires: the distinct items the search or listing offered (before sampling and the
    imported-items check); None for runs before this was recorded and for kinds without items."""
    sampled_out_count: Mapped[int | None] = mapped_column(Integer)
    """How many of the offered items the schedule's sample rate left out (0 without a rate)."""
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    message: Mapped[str | None] = mapped_column(Text)
    backfill_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_backfills.id", ondelete="CASCADE"))
    """The backfill this run is a chunk of; None for a fire (beat or manual)."""

    # Two partial unique indexes, the exactly-once guard of a fire and of a backfill chunk (written as text so
    # SQLite and PostgreSQL get the same predicate).
    __table_args__ = (
        Index(
            "uq_schedule_runs_fire",
            "schedule_id",
            "fire_time",
            unique=True,
            sqlite_where=text("backfill_id IS NULL"),
            postgresql_where=text("backfill_id IS NULL"),
        ),
        Index(
            "uq_schedule_runs_backfill_chunk",
            "backfill_id",
            "fire_time",
            unique=True,
            sqlite_where=text("backfill_id IS NOT NULL"),
            postgresql_where=text("backfill_id IS NOT NULL"),
        ),
    )

    def __repr__(self) -> str:
        return (
            f"ScheduleRun(schedule_id={self.schedule_id!r}, fire_time={self.fire_time.isoformat()}, "
            f"status={self.status!s}, jobs={len(self.job_ids or [])})"
        )


class BackfillStatus(StrEnum):
    """Where a backfill is: chunks left to import, all imported, or stopped (its schedule is gone)."""

    RUNNING = "RUNNING"
    DONE = "DONE"
    STOPPED = "STOPPED"


class ScheduleBackfill(Base):
    """A window schedule's import of a past range ``[since, until)``, one chunk of ``step_s`` at a time.

    ``cursor`` is the start of the next chunk to import (``until`` once every chunk is done). Each chunk is a
    :class:`ScheduleRun` of this backfill; the schedule's watermark is never moved by one.
    """

    __tablename__ = "schedule_backfills"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    since: Mapped[datetime]
    until: Mapped[datetime]
    step_s: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[datetime]
    status: Mapped[BackfillStatus] = mapped_column(_str_enum(BackfillStatus))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    """Moved by every chunk: a RUNNING backfill not moved for a while has lost its task and is sent again."""
    finished_at: Mapped[datetime | None]
    message: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return (
            f"ScheduleBackfill(id={self.id!r}, schedule_id={self.schedule_id!r}, since={self.since.isoformat()}, "
            f"until={self.until.isoformat()}, cursor={self.cursor.isoformat()}, status={self.status!s})"
        )


class ScheduleItem(Base):
    """A source item (explorer event id, dataset record id) a schedule has already put in a job: never again."""

    __tablename__ = "schedule_items"

    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed: each fire looks for the items whose job failed, starting from the failed jobs.
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    added_at: Mapped[datetime]
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How many times the item's chunk was requested again after its job failed (``job_id`` is the latest)."""
    given_up_at: Mapped[datetime | None]
    """Set when the chunk failed once more after the last retry allowed: the item is not imported, visibly."""

    # The prune reads a schedule's oldest items without reading all of them.
    __table_args__ = (Index("ix_schedule_items_schedule_id_added_at", "schedule_id", "added_at"),)

    def __repr__(self) -> str:
        return f"ScheduleItem(schedule_id={self.schedule_id!r}, item_id={self.item_id!r}, job_id={self.job_id!r})"


class DatasetItemKey(Base):
    """One key (:mod:`import_kinds.item_keys`) of an item a dataset holds, or will hold once ``job_id`` completes.

    Written two ways: from the API's record list (``job_id`` None: the record is there), and by a job that leaves
    out duplicates before its POST (``job_id`` set: the item is on its way). A key of a job that failed does not
    count; a later listing of the dataset says what it really holds.
    """

    __tablename__ = "dataset_item_keys"

    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(36), index=True)
    seen_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"DatasetItemKey(dataset_id={self.dataset_id!r}, item_key={self.item_key!r}, job_id={self.job_id!r})"


class DatasetIndexState(Base):
    """One row per dataset whose keys are indexed: when its record list was last read, and the row that
    serialises the checks of its jobs (locked while a job picks what is new)."""

    __tablename__ = "dataset_index_state"

    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    refreshed_at: Mapped[datetime | None]
    record_count: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"DatasetIndexState(dataset_id={self.dataset_id!r}, refreshed_at={self.refreshed_at!r})"


class TokenScope(StrEnum):
    """What a bearer token of the HTTP API may do; ``write`` includes ``read``."""

    READ = "read"
    WRITE = "write"


class ApiToken(Base):
    """A bearer token of the HTTP API (``dsimport tokens create``). Only the SHA-256 of the token is stored: the
    ledger never holds a secret that would let its reader call the API. A revoked token keeps its row (and its
    name), so ``tokens list`` still shows when it was revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[TokenScope] = mapped_column(_str_enum(TokenScope))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        # The hash stays out too: it is what a request's token is compared with.
        return f"ApiToken(name={self.name!r}, scope={self.scope!s}, revoked={self.revoked_at is not None})"
