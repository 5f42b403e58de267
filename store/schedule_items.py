"""The items a schedule put in jobs whose import failed, and what became of them (retried, or given up).

A window (explorer, spans) or dataset-copy schedule records each source item it requests (``schedule_items``) so
it never requests it again. When the item's job ends without importing it (FAILED, REJECTED, TIMED_OUT, LOST, or
EXPIRED before anything was sent), the item is not imported and no later fire would pick it up. These functions
find such items, point them at the job that retries them, or mark them given up, which is what keeps them visible
instead of silently lost. Callers hold the schedule's row lock, as for every change of its items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import ImportJob, JobStatus, ScheduleItem

__all__ = ["FAILED_JOB_STATUSES", "FailedChunk", "ItemCounts", "failed_chunks", "give_up_items", "item_counts",
           "move_items"]  # fmt: skip

# Ends after which the job's items were certainly not imported by it. CANCELED, TERMINATED and CANCELLED_LOCALLY
# are someone's decision (and a locally cancelled import may still run remotely): never retried.
FAILED_JOB_STATUSES = frozenset(
    {JobStatus.FAILED, JobStatus.REJECTED, JobStatus.TIMED_OUT, JobStatus.LOST, JobStatus.EXPIRED}
)


@dataclass(frozen=True)
class FailedChunk:
    """The items of one failed job, in the order the job listed them, with how often they were retried already."""

    job_id: str
    idempotency_key: str
    status: JobStatus
    may_have_imported: bool
    """An EXPIRED job that had started sending: the remote import may exist, so a retry could import twice."""
    item_ids: list[str]
    retries: int


@dataclass(frozen=True)
class ItemCounts:
    """What ``schedules show`` tells about a schedule's items."""

    total: int
    retried: int
    given_up: int


def failed_chunks(session: Session, schedule_id: str, *, limit: int = 100) -> list[FailedChunk]:
    """The schedule's items (not given up) whose job ended in :data:`FAILED_JOB_STATUSES`, one entry per job."""
    rows = session.execute(
        select(ScheduleItem.item_id, ScheduleItem.retries, ImportJob)
        .join(ImportJob, ImportJob.id == ScheduleItem.job_id)
        .where(
            ScheduleItem.schedule_id == schedule_id,
            ScheduleItem.given_up_at.is_(None),
            ImportJob.status.in_(FAILED_JOB_STATUSES),
        )
        .order_by(ImportJob.created_at, ImportJob.id)
    ).all()
    jobs: dict[str, ImportJob] = {}
    items: dict[str, set[str]] = {}
    retried: dict[str, int] = {}
    for item_id, retries, job in rows:
        jobs.setdefault(job.id, job)
        items.setdefault(job.id, set()).add(item_id)
        retried[job.id] = max(retried.get(job.id, 0), retries)
    chunks = []
    for job in list(jobs.values())[:limit]:
        mine = items[job.id]
        # Ids listed in the job's params give the order; items that are objects (span references) are sorted.
        listed = [item for value in job.params.values() if isinstance(value, list) for item in value
                  if isinstance(item, str)]  # fmt: skip
        ordered = [item for item in listed if item in mine] + sorted(mine - set(listed))
        chunks.append(
            FailedChunk(
                job_id=job.id,
                idempotency_key=job.idempotency_key,
                status=job.status,
                may_have_imported=job.status == JobStatus.EXPIRED
                and (job.remote_task_id is not None or job.submit_started_at is not None),
                item_ids=ordered,
                retries=retried[job.id],
            )
        )
    return chunks


def move_items(
    session: Session, schedule_id: str, item_ids: Sequence[str], *, job_id: str, retries: int
) -> None:
    """Point ``item_ids`` at the job that retries them, counting the retry."""
    for start in range(0, len(item_ids), 500):
        session.execute(
            update(ScheduleItem)
            .where(ScheduleItem.schedule_id == schedule_id, ScheduleItem.item_id.in_(item_ids[start : start + 500]))
            .values(job_id=job_id, retries=retries)
        )


def give_up_items(session: Session, schedule_id: str, item_ids: Sequence[str], *, now: datetime) -> None:
    """Record that ``item_ids`` will not be imported by this schedule (they stay listed, so never requested again)."""
    for start in range(0, len(item_ids), 500):
        session.execute(
            update(ScheduleItem)
            .where(ScheduleItem.schedule_id == schedule_id, ScheduleItem.item_id.in_(item_ids[start : start + 500]))
            .values(given_up_at=now)
        )


def item_counts(session: Session, schedule_id: str) -> ItemCounts:
    """How many items the schedule requested, how many of them were retried, and how many it gave up on."""
    total, retried, given_up = session.execute(
        select(
            func.count(),
            func.count().filter(ScheduleItem.retries > 0),
            func.count().filter(ScheduleItem.given_up_at.is_not(None)),
        ).where(ScheduleItem.schedule_id == schedule_id)
    ).one()
    return ItemCounts(total=int(total), retried=int(retried), given_up=int(given_up))
