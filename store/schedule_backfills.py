"""Backfills of window schedules: a past range imported one chunk at a time, and where each one is.

A backfill row holds the range ``[since, until)``, the chunk length ``step_s`` and ``cursor``, the start of the
next chunk. Chunk ``i`` is ``[since + i * step, min(since + (i + 1) * step, until))``; its run
(:func:`store.schedule_runs.claim_chunk_run`) is the exactly-once guard, the cursor only says where to go on. A
backfill asked for again with the same range and step is the same backfill (:func:`start_backfill`), so running
the command again resumes it instead of starting a second one.

Like the rest of the ledger, every function takes the caller's Session and leaves committing to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import BackfillStatus, Schedule, ScheduleBackfill, ScheduleRun

__all__ = [
    "BackfillStart",
    "BackfillTotals",
    "backfill_totals",
    "chunk_count",
    "chunk_of",
    "chunks_done",
    "list_backfills",
    "lock_backfill",
    "move_cursor",
    "stale_backfills",
    "start_backfill",
    "stop_backfill",
]


@dataclass(frozen=True)
class BackfillStart:
    """What :func:`start_backfill` did: ``created`` a new backfill, or found the one with that range."""

    backfill: ScheduleBackfill
    created: bool


def start_backfill(
    session: Session, schedule: Schedule, *, since: datetime, until: datetime, step_s: int, now: datetime
) -> BackfillStart:
    """The schedule's backfill of ``[since, until)`` by ``step_s``: the existing one (a STOPPED one runs again),
    or a new one starting at its first chunk. The range is checked by the caller."""
    existing = session.scalars(
        select(ScheduleBackfill)
        .where(
            ScheduleBackfill.schedule_id == schedule.id,
            ScheduleBackfill.since == since,
            ScheduleBackfill.until == until,
            ScheduleBackfill.step_s == step_s,
        )
        .order_by(ScheduleBackfill.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if existing is not None:
        if existing.status == BackfillStatus.STOPPED:
            existing.status = BackfillStatus.RUNNING
            existing.finished_at = None
            existing.message = None
            existing.updated_at = now
        return BackfillStart(existing, created=False)
    backfill = ScheduleBackfill(
        schedule_id=schedule.id,
        since=since,
        until=until,
        step_s=step_s,
        cursor=since,
        status=BackfillStatus.RUNNING,
        created_at=now,
        updated_at=now,
    )
    session.add(backfill)
    session.flush()
    return BackfillStart(backfill, created=True)


def lock_backfill(session: Session, backfill_id: int) -> ScheduleBackfill | None:
    """The backfill, freshly read and row-locked (PostgreSQL), or None."""
    return session.scalars(
        select(ScheduleBackfill)
        .where(ScheduleBackfill.id == backfill_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def chunk_of(backfill: ScheduleBackfill, start: datetime) -> tuple[int, datetime, datetime]:
    """The index, start and end of the chunk that starts at ``start``."""
    step = timedelta(seconds=backfill.step_s)
    index = int((start - backfill.since) / step)
    return index, start, min(start + step, backfill.until)


def chunk_count(backfill: ScheduleBackfill) -> int:
    """How many chunks the range is cut into (the last one may be shorter)."""
    span_s = (backfill.until - backfill.since).total_seconds()
    return max(1, -int(-span_s // backfill.step_s))


def chunks_done(backfill: ScheduleBackfill) -> int:
    """How many chunks are behind the cursor."""
    if backfill.cursor >= backfill.until:
        return chunk_count(backfill)
    return chunk_of(backfill, backfill.cursor)[0]


def move_cursor(backfill: ScheduleBackfill, past: datetime, *, now: datetime, message: str | None = None) -> None:
    """Move the cursor to the chunk after the one that ends at ``past`` (never backwards); DONE at the end."""
    if past > backfill.cursor:
        backfill.cursor = min(past, backfill.until)
    backfill.updated_at = now
    if message is not None:
        backfill.message = message
    if backfill.cursor >= backfill.until and backfill.status == BackfillStatus.RUNNING:
        backfill.status = BackfillStatus.DONE
        backfill.finished_at = now


def stop_backfill(backfill: ScheduleBackfill, reason: str, *, now: datetime) -> None:
    """Stop a backfill that cannot go on (its schedule was removed); asking for it again runs it again."""
    if backfill.status == BackfillStatus.RUNNING:
        backfill.status = BackfillStatus.STOPPED
        backfill.message = reason
        backfill.finished_at = now
        backfill.updated_at = now


def list_backfills(session: Session, schedule_id: str, *, limit: int = 20) -> list[ScheduleBackfill]:
    """A schedule's backfills, latest first."""
    return list(
        session.scalars(
            select(ScheduleBackfill)
            .where(ScheduleBackfill.schedule_id == schedule_id)
            .order_by(ScheduleBackfill.id.desc())
            .limit(limit)
        )
    )


def stale_backfills(session: Session, *, not_moved_since: datetime, limit: int = 100) -> list[int]:
    """The RUNNING backfills no task has moved since ``not_moved_since``: their task died or its message was lost."""
    return list(
        session.scalars(
            select(ScheduleBackfill.id)
            .where(ScheduleBackfill.status == BackfillStatus.RUNNING, ScheduleBackfill.updated_at < not_moved_since)
            .order_by(ScheduleBackfill.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class BackfillTotals:
    """What a backfill's chunk runs add up to: items offered by the searches, left out by the sample, requested
    (new to the schedule), and the jobs requesting them (retries of failed chunks included)."""

    offered: int = 0
    sampled_out: int = 0
    requested: int = 0
    jobs: int = 0


def backfill_totals(session: Session, backfill_id: int) -> BackfillTotals:
    """The sums over the backfill's chunk runs (those still in the ledger)."""
    rows = session.execute(
        select(ScheduleRun.offered_count, ScheduleRun.sampled_out_count, ScheduleRun.item_count, ScheduleRun.job_ids)
        .where(ScheduleRun.backfill_id == backfill_id)
    ).all()  # fmt: skip
    return BackfillTotals(
        offered=sum(offered or 0 for offered, _, _, _ in rows),
        sampled_out=sum(sampled or 0 for _, sampled, _, _ in rows),
        requested=sum(items or 0 for _, _, items, _ in rows),
        jobs=sum(len(job_ids or []) for _, _, _, job_ids in rows),
    )
