"""What the jobs page shows, read from the ledger into plain values (nothing lazy escapes a session).

Every function takes a read-only session and ``now``; none writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.dead_letters import count_dead_letters, list_dead_letters
from store.jobs import get_job, job_events
from store.models import ImportJob, ImportKind, JobStatus, Schedule
from store.schedule_runs import last_run
from store.schedules import list_schedules
from triggers.schedules.fire_times import InvalidTiming
from triggers.schedules.lag import is_lagging, watermark_lag_s
from triggers.schedules.specs import definition_timing

from .paging import Cursor, JobFilters, read_page

__all__ = [
    "DeadLetterRow",
    "EventRow",
    "JobDetail",
    "JobRow",
    "RowPage",
    "ScheduleRow",
    "counts_by_status",
    "counts_by_status_and_kind",
    "dead_letters",
    "duplicates_skipped_by_kind",
    "job_detail",
    "job_page",
    "oldest_due_poll",
    "partial_counts_by_kind",
    "schedules",
    "watermark_lags",
]

# How much of a dead letter's body the page shows.
BODY_PREVIEW_CHARS = 300


@dataclass(frozen=True)
class JobRow:
    id: str
    kind: str
    dataset_id: str
    status: str
    progress: int | None
    created_at: datetime
    finished_at: datetime | None
    outcome: str
    terminal: bool
    partial: bool

    @classmethod
    def of(cls, job: ImportJob) -> JobRow:
        return cls(
            id=job.id,
            kind=str(job.kind),
            dataset_id=job.dataset_id,
            status=str(job.status),
            progress=job.progress,
            created_at=job.created_at,
            finished_at=job.finished_at,
            outcome=_outcome(job),
            terminal=job.is_terminal,
            partial=job.partial,
        )


def _outcome(job: ImportJob) -> str:
    """One phrase for how a job ended (or how it is doing): imported counts, else the message or error."""
    if job.status == JobStatus.COMPLETED:
        parts = []
        if job.imported_count is not None:
            parts.append(f"{job.imported_count} imported")
        if job.skipped_count:
            parts.append(f"{job.skipped_count} skipped")
        if job.duplicates_skipped:
            parts.append(f"{job.duplicates_skipped} duplicates left out")
        if job.sampled_out:
            parts.append(f"{job.sampled_out} sampled out")
        return ", ".join(parts) or (job.message or "completed")
    if job.is_terminal:
        return job.message or job.last_error or job.error_code or str(job.status).lower()
    # Not ended yet: only a remote status worth a look (UNKNOWN, CONTINUED_AS_NEW) says anything here.
    if job.remote_status and job.remote_status != "RUNNING":
        return f"remote status {job.remote_status}"
    return ""


@dataclass(frozen=True)
class EventRow:
    at: datetime
    old_status: str | None
    new_status: str
    progress: int | None
    message: str | None


@dataclass(frozen=True)
class JobDetail:
    job: JobRow
    origin: str
    idempotency_key: str
    remote_task_id: str | None
    remote_status: str | None
    attempts: int
    poll_count: int
    next_poll_at: datetime | None
    deadline_at: datetime | None
    requested_count: int | None
    imported_count: int | None
    skipped_count: int | None
    duplicates_skipped: int | None
    sampled_out: int | None
    message: str | None
    error_code: str | None
    last_error: str | None
    params: dict[str, Any]
    events: list[EventRow]


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    kind: str
    import_kind: str
    dataset_id: str
    timing: str
    state: str
    last_fire_at: datetime | None
    last_run_status: str | None
    last_run_message: str | None
    next_fire_at: datetime | None
    watermark: datetime | None
    watermark_lag_s: float | None
    lagging: bool
    sample_rate: float | None = None
    """Window schedules: the share of the items found that each fire imports (None: all)."""


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    received_at: datetime
    stream: str
    entry_id: str | None
    message_id: str | None
    reason: str
    body_preview: str
    body_size: int
    retried_job_id: str | None


@dataclass(frozen=True)
class RowPage:
    """One page of the jobs list and the cursors of its neighbours (None at either end)."""

    jobs: list[JobRow]
    older: str | None
    newer: str | None


def job_page(session: Session, filters: JobFilters, cursor: Cursor | None, *, limit: int) -> RowPage:
    """The page of jobs ``cursor`` points to, newest first (see :mod:`dashboard.paging`)."""
    page = read_page(session, filters, cursor, limit=limit)
    return RowPage([JobRow.of(job) for job in page.jobs], page.older, page.newer)


def job_detail(session: Session, job_id: str) -> JobDetail | None:
    """A job with its event history (oldest first), or None."""
    job = get_job(session, job_id)
    if job is None:
        return None
    events = [
        EventRow(
            at=e.at,
            old_status=None if e.old_status is None else str(e.old_status),
            new_status=str(e.new_status),
            progress=e.progress,
            message=e.message,
        )
        for e in job_events(session, job_id)
    ]
    return JobDetail(
        job=JobRow.of(job),
        origin=job.origin,
        idempotency_key=job.idempotency_key,
        remote_task_id=job.remote_task_id,
        remote_status=job.remote_status,
        attempts=job.attempts,
        poll_count=job.poll_count,
        next_poll_at=job.next_poll_at,
        deadline_at=job.deadline_at,
        requested_count=job.requested_count,
        imported_count=job.imported_count,
        skipped_count=job.skipped_count,
        duplicates_skipped=job.duplicates_skipped,
        sampled_out=job.sampled_out,
        message=job.message,
        error_code=job.error_code,
        last_error=job.last_error,
        params=dict(job.params or {}),
        events=events,
    )


def counts_by_status_and_kind(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs per (status, kind); every pair is present, zero included."""
    counts = {(str(status), str(kind)): 0 for status in JobStatus for kind in ImportKind}
    query = select(ImportJob.status, ImportJob.kind, func.count()).group_by(ImportJob.status, ImportJob.kind)
    for status, kind, count in session.execute(query):
        counts[(str(status), str(kind))] = int(count)
    return counts


def partial_counts_by_kind(session: Session) -> dict[str, int]:
    """How many completed jobs per kind imported fewer records than they requested; every kind present."""
    counts = {str(kind): 0 for kind in ImportKind}
    query = (
        select(ImportJob.kind, func.count())
        .where(ImportJob.status == JobStatus.COMPLETED, ImportJob.partial.is_(True))
        .group_by(ImportJob.kind)
    )
    for kind, count in session.execute(query):
        counts[str(kind)] = int(count)
    return counts


def duplicates_skipped_by_kind(session: Session) -> dict[str, int]:
    """How many items ``--skip-existing`` left out, summed over the jobs the ledger keeps, per kind; every kind."""
    counts = {str(kind): 0 for kind in ImportKind}
    query = (
        select(ImportJob.kind, func.sum(ImportJob.duplicates_skipped))
        .where(ImportJob.duplicates_skipped > 0)
        .group_by(ImportJob.kind)
    )
    for kind, total in session.execute(query):
        counts[str(kind)] = int(total or 0)
    return counts


def watermark_lags(session: Session, *, now: datetime) -> dict[str, float]:
    """The watermark lag in seconds of each window schedule that has one, by schedule name."""
    lags = {}
    for schedule in list_schedules(session):
        lag_s = watermark_lag_s(schedule, now)
        if lag_s is not None:
            lags[schedule.name] = lag_s
    return lags


def counts_by_status(session: Session, *, dataset_id: str | None = None) -> dict[str, int]:
    """How many jobs per status (every status present, zero included), of one dataset or of all.

    By status alone, not kind: the status index answers it without reading the table.
    """
    counts = {str(status): 0 for status in JobStatus}
    query = select(ImportJob.status, func.count()).group_by(ImportJob.status)
    if dataset_id is not None:
        query = query.where(ImportJob.dataset_id == dataset_id)
    for status, count in session.execute(query):
        counts[str(status)] = int(count)
    return counts


def oldest_due_poll(session: Session) -> datetime | None:
    """The earliest ``next_poll_at`` of the RUNNING jobs: how far behind the poller is, compared with now."""
    return session.scalar(
        select(func.min(ImportJob.next_poll_at)).where(
            ImportJob.status == JobStatus.RUNNING, ImportJob.next_poll_at.is_not(None)
        )
    )


def schedules(
    session: Session, *, now: datetime, dataset_id: str | None = None, lag_alert_s: float = 0.0
) -> list[ScheduleRow]:
    """Every schedule (of one dataset, or of all) with its last fire and (when it may fire) the next one, computed
    as beat computes it, and its watermark lag, flagged past ``lag_alert_s`` (0: never)."""
    rows = []
    for schedule in list_schedules(session):
        if dataset_id is not None and schedule.dataset_id != dataset_id:
            continue
        run = last_run(session, schedule.id)
        lag_s = watermark_lag_s(schedule, now)
        rows.append(
            ScheduleRow(
                name=schedule.name,
                kind=str(schedule.kind),
                import_kind=str(schedule.import_kind),
                dataset_id=schedule.dataset_id,
                timing=_timing_text(schedule),
                state=_state(schedule),
                last_fire_at=schedule.last_fire_at or (None if run is None else run.fire_time),
                last_run_status=None if run is None else str(run.status),
                last_run_message=None if run is None else run.message,
                next_fire_at=_next_fire(schedule, now),
                sample_rate=schedule.sample_rate,
                watermark=schedule.watermark,
                watermark_lag_s=lag_s,
                lagging=is_lagging(lag_s, lag_alert_s),
            )
        )
    return rows


def _state(schedule: Schedule) -> str:
    if schedule.finished_at is not None:
        return "finished"
    return "paused" if schedule.paused else "active"


def _timing_text(schedule: Schedule) -> str:
    try:
        return definition_timing(schedule.cron, schedule.every_s).describe()
    except InvalidTiming:
        return schedule.cron or f"every {schedule.every_s} s"


def _next_fire(schedule: Schedule, now: datetime) -> datetime | None:
    if schedule.paused or schedule.finished_at is not None:
        return None
    try:
        timing = definition_timing(schedule.cron, schedule.every_s)
    except InvalidTiming:
        return None
    start = schedule.fires_after
    if schedule.last_fire_at is not None and schedule.last_fire_at > start:
        start = schedule.last_fire_at
    return timing.next_after(max(now, start))


def dead_letters(session: Session, *, limit: int = 50) -> tuple[list[DeadLetterRow], int]:
    """The newest dead letters and how many are waiting (not retried) in all."""
    rows = [
        DeadLetterRow(
            id=letter.id,
            received_at=letter.received_at,
            stream=letter.stream,
            entry_id=letter.entry_id,
            message_id=letter.message_id,
            reason=letter.reason,
            body_preview=_preview(letter.body, letter.body_base64),
            body_size=letter.body_size,
            retried_job_id=letter.retried_job_id,
        )
        for letter in list_dead_letters(session, limit=limit)
    ]
    return rows, count_dead_letters(session, include_retried=False)


def _preview(body: str, is_base64: bool) -> str:
    text = f"(base64) {body}" if is_base64 else body
    return text if len(text) <= BODY_PREVIEW_CHARS else text[: BODY_PREVIEW_CHARS - 1] + "…"
