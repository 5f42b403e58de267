"""Firing a schedule once: the plain function behind the ``dsimport.fire_schedule`` task.

:func:`fire` claims the run for (schedule, fire time) in the ledger first; a second task for the same fire (two
beats sent it, or the broker delivered it twice) finds the run and stops. The claimed run is then carried out by
the schedule's kind (:mod:`triggers.schedules.kinds`), which records its outcome in the same transaction as any job it
creates. Every job's idempotency key starts with the schedule name and the fire time, so even a run carried out
twice could not start a second import.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime

from api_client import ApiError
from store.models import RunStatus, ScheduleKind
from store.schedule_runs import claim_run, new_owner_token, prune_runs
from store.schedules import get_schedule
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.kinds import (
    FireContext,
    FireOutcome,
    FireReport,
    RunRef,
    ScheduleRunError,
    ScheduleSnapshot,
    finish_run,
    run_campaign_when_done,
    run_dataset_copy,
    run_explorer_window,
    run_plain,
)
from triggers.schedules.spans_window import run_spans_window

__all__ = ["RUNS_KEPT", "TRIGGERS", "FireContext", "FireOutcome", "FireReport", "fire", "report_dict"]

log = logging.getLogger(__name__)

TRIGGERS = ("beat", "manual")
# History kept per schedule (an `--every 1s` schedule makes 86,400 runs a day), pruned on each of its own fires.
RUNS_KEPT = 10_000

_RUNNERS = {
    ScheduleKind.PLAIN: run_plain,
    ScheduleKind.EXPLORER_WINDOW: run_explorer_window,
    ScheduleKind.SPANS_WINDOW: run_spans_window,
    ScheduleKind.CAMPAIGN_WHEN_DONE: run_campaign_when_done,
    ScheduleKind.DATASET_COPY: run_dataset_copy,
}


def fire(ctx: FireContext, name: str, fire_time: datetime, *, trigger: str = "beat") -> FireReport:
    """Carry out the fire of schedule ``name`` at ``fire_time``, at most once whoever else tries.

    ``trigger`` is ``beat`` (skipped while the schedule is paused) or ``manual`` (``schedules run-now``: fires a
    paused schedule too). A finished schedule (a campaign-when-done that imported its campaign) never fires.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    fire_time = fire_time.astimezone(UTC).replace(microsecond=0)
    owner = new_owner_token()
    now = ctx.now()

    def report(outcome: FireOutcome, message: str | None = None, retry_after_s: float | None = None) -> FireReport:
        return FireReport(name, fire_time_iso(fire_time), outcome, message=message, retry_after_s=retry_after_s)

    with ctx.session_factory() as session:
        schedule = get_schedule(session, name)
        if schedule is None:
            return report(FireOutcome.UNKNOWN, "no such schedule (removed?)")
        if schedule.removed_at is not None:
            return report(FireOutcome.UNKNOWN, "the schedule was removed")
        if schedule.finished_at is not None:
            return report(FireOutcome.FINISHED, schedule.finished_reason)
        if schedule.paused and trigger == "beat":
            return report(FireOutcome.PAUSED)
        claim = claim_run(session, schedule, fire_time, trigger=trigger, owner=owner, now=now, lease_s=ctx.lease_s)
        if claim.run is None:
            session.rollback()
            existing = claim.existing
            if existing is not None and existing.status == RunStatus.STARTED and existing.lease_expires_at:
                wait_s = max((existing.lease_expires_at - now).total_seconds(), 0.0) + 1.0
                return report(FireOutcome.BUSY, "another task is running this fire", retry_after_s=wait_s)
            status = existing.status if existing is not None else "removed"
            return report(FireOutcome.DUPLICATE, f"this fire already ran ({status})")
        snapshot = ScheduleSnapshot.of(schedule)
        run = RunRef(run_id=claim.run.id, owner=owner, fire_time=fire_time, trigger=trigger)
        prune_runs(session, schedule.id, keep=RUNS_KEPT)
        session.commit()
    if claim.taken_over:
        log.warning("schedule %s: took over the run of %s left by a task that died", name, fire_time_iso(fire_time))
    try:
        return _RUNNERS[snapshot.kind](ctx, snapshot, run)
    except (ApiError, ScheduleRunError) as exc:
        log.warning("schedule %s: run of %s failed: %s", name, fire_time_iso(fire_time), exc)
        return finish_run(ctx, snapshot, run, RunStatus.FAILED, message=str(exc))
    except Exception as exc:
        try:
            finish_run(ctx, snapshot, run, RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database may be what failed; the run's lease lets a retry take over
            log.exception("schedule %s: could not record the failed run of %s", name, fire_time_iso(fire_time))
        raise


def report_dict(report: FireReport) -> dict[str, object]:
    """The report as plain values: the task's result, which Flower shows."""
    data = asdict(report)
    data["outcome"] = str(report.outcome)
    return data
