"""The Celery tasks of schedules: a fire, a backfill, and the sweep that re-sends backfills a crash left behind.

- ``dsimport.fire_schedule(name, fire_time, trigger)``: sent by beat when a schedule is due (or by ``run-now``).
  Arguments are the schedule's name and the fire time as text, which is what Flower shows for each fire.
- ``dsimport.run_backfill(backfill_id)``: sent by ``schedules backfill``; carries out chunks for a while, then
  sends itself again until the backfill is done.
- ``dsimport.resume_backfills()``: periodic; sends ``run_backfill`` again for every running backfill no task has
  moved for a while (its worker died, or its message was lost).

Thin on purpose: each builds a :class:`~triggers.schedules.kinds.FireContext` from the runtime and calls a plain
function (:func:`triggers.schedules.firing.fire`, :func:`triggers.schedules.backfill.advance_backfill`). The only
decisions made here are when to try again.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from celery import Task, shared_task

from jobs.runtime import get_runtime
from store.schedule_backfills import stale_backfills
from tasks.job_tasks import send_submit, utcnow
from tasks.names import FIRE_SCHEDULE, RESUME_BACKFILLS, RUN_BACKFILL
from triggers.schedules.backfill import BackfillOutcome, advance_backfill
from triggers.schedules.fire_times import parse_fire_time
from triggers.schedules.firing import FireContext, FireOutcome, fire, report_dict

__all__ = ["FIRE_SCHEDULE", "RESUME_BACKFILLS", "RUN_BACKFILL", "fire_schedule", "resume_backfills", "run_backfill"]

# A fire left STARTED by a dead task is retried until its lease ends; a few tries cover a few leases.
_MAX_BUSY_RETRIES = 5
# A backfill task works this long, then hands the rest to a new message: far inside the soft time limit (120 s at
# least), and other tasks get the worker in between.
BACKFILL_BUDGET_S = 30.0
# A chunk whose search failed is tried again after this long, a few times; then the resume sweep takes over.
_BACKFILL_FAILED_RETRY_S = 10.0
_MAX_BACKFILL_RETRIES = 5


def _context() -> FireContext:
    runtime = get_runtime()
    return FireContext(
        session_factory=runtime.session_factory,
        client_factory=runtime.client_factory,
        send=send_submit,
        now=utcnow,
        lease_s=runtime.tuning.lease_s,
        deadline_s=runtime.tuning.job_deadline_s,
        settle_lag_s=runtime.tuning.schedule_settle_lag_s,
    )


# Celery ships no type hints, so its decorator is untyped (tasks.job_tasks has a mypy override for the same reason).
@shared_task(name=FIRE_SCHEDULE, bind=True, acks_late=True, max_retries=_MAX_BUSY_RETRIES)
def fire_schedule(self: Task, name: str, fire_time: str, trigger: str = "beat") -> dict[str, Any]:
    report = fire(_context(), name, parse_fire_time(fire_time), trigger=trigger)
    if report.outcome == FireOutcome.BUSY:
        raise self.retry(countdown=(report.retry_after_s or 1.0) * random.uniform(1.0, 1.2))
    return report_dict(report)


@shared_task(name=RUN_BACKFILL, bind=True, acks_late=True, max_retries=_MAX_BACKFILL_RETRIES)
def run_backfill(self: Task, backfill_id: int) -> dict[str, Any]:
    report = advance_backfill(_context(), backfill_id, budget_s=BACKFILL_BUDGET_S)
    if report.outcome == BackfillOutcome.MORE:
        # Sent before this message is acknowledged: a crash in between leaves two messages, and the chunk claims
        # keep the second from importing anything twice.
        run_backfill.apply_async(args=[backfill_id])
    elif report.outcome == BackfillOutcome.FAILED and self.request.retries < _MAX_BACKFILL_RETRIES:
        raise self.retry(countdown=_BACKFILL_FAILED_RETRY_S * random.uniform(1.0, 1.2))
    # Still FAILED after the retries (the API is down for longer), or BUSY (another task holds the chunk): the
    # resume sweep sends the backfill again once no task has moved it for two leases.
    return {
        "backfill_id": backfill_id,
        "outcome": str(report.outcome),
        "chunks_done": report.chunks_done,
        "chunks": report.chunks,
        "jobs": len(report.job_ids),
        "message": report.message,
    }


@shared_task(name=RESUME_BACKFILLS, ignore_result=True)
def resume_backfills() -> dict[str, Any]:
    runtime = get_runtime()
    # Twice the lease: a live task moves its backfill at least once per chunk, and a chunk ends within its lease.
    quiet_since = utcnow() - timedelta(seconds=2 * runtime.tuning.lease_s)
    with runtime.session_factory() as session:
        ids = stale_backfills(session, not_moved_since=quiet_since)
    for backfill_id in ids:
        run_backfill.apply_async(args=[backfill_id])
    return {"resent": len(ids)}
