"""Retention: deleting what the ledger no longer needs, in short batches.

What goes, once older than the cutoff (``now - older_than``):

- **jobs** in a terminal status that were created, last changed and finished before the cutoff, with their
  events. A job that is not terminal is never deleted, whatever its age; nor is a failed chunk of a schedule whose
  items are still waiting for their retry (a paused schedule retries them when it fires again), and such items
  stay too.
- **dead letters** that were resolved (re-submitted: ``retried_at`` set) before the cutoff. One still waiting for
  someone to look at it is kept.
- **schedule items** of schedules that no longer exist (a removed schedule keeps its row, and so its items, unless
  it was forgotten), and items of window schedules (explorer-window, spans-window) added before the cutoff and more
  than :data:`ITEM_WATERMARK_MARGIN` before the schedule's watermark: windows start at the watermark, so such an
  event or span is never searched again by a fire and its id protects nothing (a backfill may search there: one
  reaching back past the cutoff of ``DSIMPORT_PRUNE_OLDER_THAN_S`` is refused). Dataset-copy items are kept
  for as long as the schedule exists: each fire lists the whole source dataset, and a record whose id was
  forgotten would be copied a second time.
- **webhook deliveries** delivered or given up before the cutoff, with their attempts. A pending one is never
  deleted: it is an ending still to be told.

Never deleted: schedule snapshots, their files (the user's) and their rows (``dataset_snapshots``, ``snapshot_jobs``):
they are the record of which version of a dataset an evaluation ran on, which outlives the jobs it names.

What a deleted job means: its idempotency key is forgotten. A request with the same key (a queue message id, a
``--key``) arriving after the prune creates a new job and imports again, so keys are remembered for the retention
period only. That is why the period has a floor, :data:`MIN_RETENTION_S` (one day), far above every window in
which the service itself repeats a request: a stream entry's redelivery (minutes), a Celery message's visibility
timeout (an hour), recovery's adoption window (the lease) — a remote task recovery may still adopt never loses
the job that owns it. Schedule keys are not reused (they hold the fire time), and runs that list a deleted job
simply show it as missing.

Every batch is its own short transaction (on SQLite, the write lock is held for one batch only), so the prune can
run beside the workers; :func:`prune` stops after ``time_budget_s`` and the next run goes on where it stopped.
Deleting the same rows twice (two beats) is harmless: the second finds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.models import (
    TERMINAL_JOB_STATUSES,
    WINDOW_SCHEDULE_KINDS,
    DeadLetter,
    ImportJob,
    JobEvent,
    Schedule,
    ScheduleItem,
)
from store.schedule_items import FAILED_JOB_STATUSES
from store.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ITEM_WATERMARK_MARGIN",
    "MIN_RETENTION_S",
    "PruneCounts",
    "count_prunable",
    "prune",
    "prune_batch",
    "prune_cutoff",
]

MIN_RETENTION_S = 86_400.0
"""The shortest retention accepted: one day."""
ITEM_WATERMARK_MARGIN = timedelta(days=1)
"""How far below the watermark a window schedule's item must be: a window that starts a little before the
watermark (to catch late events) still finds the ids it needs."""
DEFAULT_BATCH_SIZE = 200
"""Jobs (with their events), dead letters, schedule items and webhook deliveries deleted per transaction."""


@dataclass
class PruneCounts:
    """Rows deleted (or, for a dry run, that would be), per table."""

    jobs: int = 0
    job_events: int = 0
    dead_letters: int = 0
    schedule_items: int = 0
    webhook_deliveries: int = 0
    webhook_attempts: int = 0

    def add(self, other: PruneCounts) -> None:
        for name in self.as_dict():
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """Table name -> rows, in a fixed order (what the command prints)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


def prune_cutoff(now: datetime, older_than_s: float) -> datetime:
    """``now - older_than_s``; refuses a retention shorter than :data:`MIN_RETENTION_S` (ValueError)."""
    if older_than_s < MIN_RETENTION_S:
        raise ValueError(
            f"retention of {older_than_s:g} s is shorter than one day: keys a producer may still retry with "
            "would be forgotten"
        )
    return now - timedelta(seconds=older_than_s)


def _failed_job() -> ColumnElement[bool]:
    # Through an expression (statuses are upper case already) so that the planner reads the finished_at index, not
    # every job of the status index.
    return func.upper(ImportJob.status).in_([status.value for status in FAILED_JOB_STATUSES])


def _old_terminal_jobs(cutoff: datetime) -> ColumnElement[bool]:
    awaiting_retry = (
        select(ScheduleItem.job_id)
        .where(ScheduleItem.job_id == ImportJob.id, ScheduleItem.given_up_at.is_(None))
        .exists()
    )
    return and_(
        ImportJob.finished_at < cutoff,
        # Only a terminal status sets finished_at; checked anyway (see _failed_job for the upper()).
        func.upper(ImportJob.status).in_([status.value for status in TERMINAL_JOB_STATUSES]),
        ImportJob.created_at < cutoff,
        ImportJob.updated_at < cutoff,
        # A failed chunk of a schedule whose items are neither retried nor given up yet (the schedule was paused):
        # its next fire finds the items through this job.
        ~and_(_failed_job(), awaiting_retry),
    )


def _resolved_dead_letters(cutoff: datetime) -> ColumnElement[bool]:
    # By retried_at (indexed): old letters nobody resolved, which stay, are never read.
    return and_(DeadLetter.retried_at < cutoff, DeadLetter.received_at < cutoff)


def _settled_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    # Created before the cutoff too: a delivery settles after it is created, and created_at is the indexed column.
    return and_(
        WebhookDelivery.created_at < cutoff,
        WebhookDelivery.status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]),
        func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.created_at) < cutoff,
    )


def count_prunable(session: Session, *, cutoff: datetime) -> PruneCounts:
    """What :func:`prune` would delete at ``cutoff``, counted without deleting anything."""
    job_ids = select(ImportJob.id).where(_old_terminal_jobs(cutoff))
    return PruneCounts(
        jobs=_count(session, select(func.count()).select_from(ImportJob).where(_old_terminal_jobs(cutoff))),
        job_events=_count(session, select(func.count()).select_from(JobEvent).where(JobEvent.job_id.in_(job_ids))),
        dead_letters=_count(
            session, select(func.count()).select_from(DeadLetter).where(_resolved_dead_letters(cutoff))
        ),
        schedule_items=sum(
            _count(session, select(func.count()).select_from(ScheduleItem).where(rule))
            for rule in _item_rules(session, cutoff)
        ),
        webhook_deliveries=_count(
            session, select(func.count()).select_from(WebhookDelivery).where(_settled_deliveries(cutoff))
        ),
        webhook_attempts=_count(
            session,
            select(func.count())
            .select_from(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(select(WebhookDelivery.id).where(_settled_deliveries(cutoff)))),
        ),
    )


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(query) or 0)


def _awaiting_retry() -> ColumnElement[bool]:
    """The item's chunk failed and it is neither retried (it would point at the new job) nor given up yet."""
    failed_job = select(ImportJob.id).where(ImportJob.id == ScheduleItem.job_id, _failed_job()).exists()
    return and_(ScheduleItem.given_up_at.is_(None), failed_job)


def _item_schedule_ids(session: Session) -> list[str]:
    """The distinct schedule ids of ``schedule_items``: one index probe per schedule, not a scan of every item."""
    found: list[str] = []
    while True:
        query = select(func.min(ScheduleItem.schedule_id))
        if found:
            query = query.where(ScheduleItem.schedule_id > found[-1])
        following = session.scalar(query)
        if following is None:
            return found
        found.append(following)


def _item_rules(session: Session, cutoff: datetime) -> list[ColumnElement[bool]]:
    """One condition per group of schedule items that may go: orphans, then each window schedule's old ones."""
    rules: list[ColumnElement[bool]] = []
    # Items of a schedule that is gone (ON DELETE CASCADE removes them unless foreign keys were off at the time).
    existing = set(session.scalars(select(Schedule.id)))
    orphaned = [schedule_id for schedule_id in _item_schedule_ids(session) if schedule_id not in existing]
    if orphaned:
        rules.append(ScheduleItem.schedule_id.in_(orphaned))
    schedules = session.execute(
        select(Schedule.id, Schedule.watermark).where(
            Schedule.kind.in_(WINDOW_SCHEDULE_KINDS), Schedule.watermark.is_not(None)
        )
    ).all()
    for schedule_id, watermark in schedules:
        if watermark is None:
            continue
        # Both bounds are on our clock: an item is added when its window, which ends at or before that moment, is
        # committed and the watermark moves to the window's end.
        before = min(cutoff, watermark - ITEM_WATERMARK_MARGIN)
        rules.append(
            and_(ScheduleItem.schedule_id == schedule_id, ScheduleItem.added_at < before, ~_awaiting_retry())
        )
    return rules


def _item_keys(session: Session, cutoff: datetime, *, limit: int) -> dict[str, list[str]]:
    """Item ids that may go, by schedule id, at most ``limit`` in all."""
    found: dict[str, list[str]] = {}
    left = limit
    for rule in _item_rules(session, cutoff):
        if left <= 0:
            break
        rows = session.execute(select(ScheduleItem.schedule_id, ScheduleItem.item_id).where(rule).limit(left)).all()
        for schedule_id, item_id in rows:
            found.setdefault(schedule_id, []).append(item_id)
        left -= len(rows)
    return found


def prune_batch(session: Session, *, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> PruneCounts:
    """Delete one batch of each kind of row older than ``cutoff``; the caller commits."""
    counts = PruneCounts()
    job_ids = list(
        session.scalars(
            select(ImportJob.id).where(_old_terminal_jobs(cutoff)).order_by(ImportJob.finished_at).limit(batch_size)
        )
    )
    if job_ids:
        # Explicit rather than left to ON DELETE: the events are counted, and a link from a dead letter that is
        # kept is cleared the same way on both databases.
        counts.job_events = _deleted(session.execute(delete(JobEvent).where(JobEvent.job_id.in_(job_ids))))
        session.execute(
            update(DeadLetter).where(DeadLetter.retried_job_id.in_(job_ids)).values(retried_job_id=None)
        )
        counts.jobs = _deleted(session.execute(delete(ImportJob).where(ImportJob.id.in_(job_ids))))
    letter_ids = _first_ids(session, DeadLetter.id, _resolved_dead_letters(cutoff), DeadLetter.retried_at, batch_size)
    if letter_ids:
        counts.dead_letters = _deleted(session.execute(delete(DeadLetter).where(DeadLetter.id.in_(letter_ids))))
    for schedule_id, item_ids in _item_keys(session, cutoff, limit=batch_size).items():
        counts.schedule_items += _deleted(
            session.execute(
                delete(ScheduleItem).where(ScheduleItem.schedule_id == schedule_id, ScheduleItem.item_id.in_(item_ids))
            )
        )
    delivery_ids = _first_ids(
        session, WebhookDelivery.id, _settled_deliveries(cutoff), WebhookDelivery.created_at, batch_size
    )
    if delivery_ids:
        counts.webhook_attempts = _deleted(
            session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
        )
        counts.webhook_deliveries = _deleted(
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)))
        )
    return counts


def _first_ids(session: Session, id_column: Any, condition: ColumnElement[bool], order: Any, limit: int) -> list[Any]:
    """The ids of the first ``limit`` rows matching ``condition`` in ``order``: one batch of a table."""
    return list(session.scalars(select(id_column).where(condition).order_by(order).limit(limit)))


def _deleted(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class PruneResult:
    counts: PruneCounts
    complete: bool
    """False when the time budget ran out first: the next run deletes the rest."""


def prune(
    session_factory: sessionmaker[Session],
    *,
    older_than_s: float,
    now: datetime,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    time_budget_s: float | None = None,
    pause_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneResult:
    """Delete (``dry_run``: count) what is older than ``older_than_s`` at ``now``, one committed batch at a time.

    ``pause_s`` between batches lets other writers take the lock; ``time_budget_s`` bounds the whole run.
    :raises ValueError: ``older_than_s`` is below :data:`MIN_RETENTION_S`.
    """
    cutoff = prune_cutoff(now, older_than_s)
    if dry_run:
        with session_factory() as session:
            return PruneResult(count_prunable(session, cutoff=cutoff), complete=True)
    started = clock()
    total = PruneCounts()
    while True:
        with session_factory() as session:
            batch = prune_batch(session, cutoff=cutoff, batch_size=batch_size)
            session.commit()
        total.add(batch)
        more = max(batch.jobs, batch.dead_letters, batch.schedule_items, batch.webhook_deliveries) >= batch_size
        if not more:
            return PruneResult(total, complete=True)
        if time_budget_s is not None and clock() - started >= time_budget_s:
            return PruneResult(total, complete=False)
        if pause_s > 0:
            sleep(pause_s)
