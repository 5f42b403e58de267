"""What each kind of schedule does with a run it has claimed.

- plain: one import with the schedule's params, key ``schedule:NAME:FIRE_TIME``.
- explorer-window: search the events created in ``[watermark, fire time)`` (and matching the filter), drop those
  this schedule already imported, and request the rest in chunks, key ``schedule:NAME:FIRE_TIME:INDEX``. The jobs,
  the list of imported ids and the watermark move together in one transaction: either every chunk is accepted
  (its job row committed) and the watermark advances, or nothing is recorded and the next fire searches the same
  window again.
- campaign-when-done: ask for the campaign's status; until it is COMPLETED, record the run as WAITING and return
  (no worker waits: the next fire asks again). Once COMPLETED, import it under the key
  ``schedule:NAME:campaign:ID`` (one import, whichever fire gets there) and finish the schedule.
- dataset-copy: list the source dataset's records and request those not copied yet, chunked like explorer-window.

Every run ends in :func:`finish_run` or in the item transaction, both of which first re-check (and lock) the run
for this task's owner token, so a task whose run was taken over writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, time_window_filter
from store.jobs import create_job
from store.models import ImportKind, JobStatus, RunStatus, Schedule, ScheduleKind, ScheduleRun
from store.schedule_runs import lock_run
from store.schedules import add_items, advance_watermark, imported_item_ids, mark_finished

from .fire_times import fire_time_iso
from .requests import SOURCE_FIELDS, request_import, validate_params

__all__ = [
    "FireContext",
    "FireOutcome",
    "FireReport",
    "RunRef",
    "ScheduleRunError",
    "ScheduleSnapshot",
    "finish_run",
    "run_campaign_when_done",
    "run_dataset_copy",
    "run_explorer_window",
    "run_plain",
]

log = logging.getLogger(__name__)

# Campaign statuses after which it will never be COMPLETED: waiting longer is pointless.
_CAMPAIGN_DEAD_ENDS = frozenset({"FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"})


class ScheduleRunError(Exception):
    """Raised when a run cannot be carried out as planned; the run is recorded FAILED with this message."""


class FireOutcome(StrEnum):
    """How a fire ended, as the task reports it."""

    SUBMITTED = "submitted"
    EMPTY = "empty"
    WAITING = "waiting"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    """Another task already carried out this fire."""
    BUSY = "busy"
    """Another task is carrying out this fire right now; try again when its lease ends."""
    LOST = "lost"
    """This task's run was taken over by another (it was presumed dead); it wrote nothing."""
    PAUSED = "paused"
    FINISHED = "finished"
    UNKNOWN = "unknown"


_OUTCOME_OF_STATUS = {
    RunStatus.SUBMITTED: FireOutcome.SUBMITTED,
    RunStatus.EMPTY: FireOutcome.EMPTY,
    RunStatus.WAITING: FireOutcome.WAITING,
    RunStatus.FAILED: FireOutcome.FAILED,
}


@dataclass(frozen=True)
class FireReport:
    schedule: str
    fire_time: str
    outcome: FireOutcome
    job_ids: list[str] = field(default_factory=list)
    message: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class FireContext:
    """What firing needs, passed in so tests can call :func:`tasks.schedule_firing.fire` without a broker."""

    session_factory: sessionmaker[Session]
    client_factory: Callable[[], DatasetsClient]
    send: Callable[[str], None]
    now: Callable[[], datetime]
    lease_s: float
    deadline_s: float


@dataclass(frozen=True)
class ScheduleSnapshot:
    """The schedule as it was when the run was claimed (read outside the session that loaded it)."""

    id: str
    name: str
    kind: ScheduleKind
    import_kind: ImportKind
    dataset_id: str
    params: dict[str, Any]
    watermark: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleSnapshot:
        return cls(
            id=schedule.id,
            name=schedule.name,
            kind=schedule.kind,
            import_kind=schedule.import_kind,
            dataset_id=schedule.dataset_id,
            params=dict(schedule.params),
            watermark=schedule.watermark,
            created_at=schedule.created_at,
        )

    @property
    def origin(self) -> str:
        return f"schedule:{self.name}"


@dataclass(frozen=True)
class RunRef:
    run_id: int
    owner: str
    fire_time: datetime
    trigger: str


def _key(schedule: ScheduleSnapshot, run: RunRef, suffix: str | None = None) -> str:
    base = f"{schedule.origin}:{fire_time_iso(run.fire_time)}"
    return base if suffix is None else f"{base}:{suffix}"


def finish_run(
    ctx: FireContext,
    schedule: ScheduleSnapshot,
    run: RunRef,
    status: RunStatus,
    *,
    job_ids: Sequence[str] = (),
    message: str | None = None,
    finish_schedule: str | None = None,
) -> FireReport:
    """Record the run's outcome (and, with ``finish_schedule``, stop the schedule with that reason)."""
    now = ctx.now()
    with ctx.session_factory() as session:
        row = lock_run(session, run.run_id, owner=run.owner)
        if row is None:
            return _lost(schedule, run)
        _close(row, status, now=now, job_ids=job_ids, message=message)
        if finish_schedule is not None:
            target = session.get(Schedule, schedule.id, with_for_update=True, populate_existing=True)
            if target is not None:
                mark_finished(session, target, finish_schedule, now=now)
        session.commit()
    return FireReport(
        schedule.name, fire_time_iso(run.fire_time), _OUTCOME_OF_STATUS[status], list(job_ids), message
    )


def _close(
    row: ScheduleRun, status: RunStatus, *, now: datetime, job_ids: Sequence[str], message: str | None
) -> None:
    row.status = status
    row.finished_at = now
    row.lease_expires_at = None
    row.job_ids = list(job_ids)
    row.message = message


def _lost(schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    log.warning("schedule %s: the run of %s was taken over; nothing recorded", schedule.name, run.fire_time)
    return FireReport(schedule.name, fire_time_iso(run.fire_time), FireOutcome.LOST, message="taken over")


def run_plain(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    requested = request_import(
        ctx.session_factory,
        kind=schedule.import_kind,
        dataset_id=schedule.dataset_id,
        params=schedule.params,
        origin=schedule.origin,
        now=ctx.now(),
        deadline_s=ctx.deadline_s,
        send=ctx.send,
        idempotency_key=_key(schedule, run),
    )
    message = None if requested.created else f"job existed already ({requested.status})"
    return finish_run(ctx, schedule, run, RunStatus.SUBMITTED, job_ids=[requested.job_id], message=message)


def run_campaign_when_done(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    campaign_id = str(schedule.params["campaign_id"])
    with ctx.client_factory() as client:
        status = client.fetch_campaign_status(campaign_id)
    if status in _CAMPAIGN_DEAD_ENDS:
        reason = f"campaign {campaign_id} ended {status}: nothing to import"
        return finish_run(ctx, schedule, run, RunStatus.FAILED, message=reason, finish_schedule=reason)
    if status != "COMPLETED":
        return finish_run(ctx, schedule, run, RunStatus.WAITING, message=f"campaign {campaign_id} is {status}")
    # Keyed by the campaign, not the fire: whichever fire sees it COMPLETED first imports it, the others get
    # that same job back.
    requested = request_import(
        ctx.session_factory,
        kind=ImportKind.CAMPAIGN,
        dataset_id=schedule.dataset_id,
        params={"campaign_id": campaign_id},
        origin=schedule.origin,
        now=ctx.now(),
        deadline_s=ctx.deadline_s,
        send=ctx.send,
        idempotency_key=f"{schedule.origin}:campaign:{campaign_id}",
    )
    return finish_run(
        ctx,
        schedule,
        run,
        RunStatus.SUBMITTED,
        job_ids=[requested.job_id],
        message=f"campaign {campaign_id} is COMPLETED",
        finish_schedule=f"campaign {campaign_id} completed and was imported by job {requested.job_id}",
    )


def run_explorer_window(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    start = schedule.watermark or schedule.created_at
    end = run.fire_time
    if end <= start:
        return finish_run(
            ctx, schedule, run, RunStatus.EMPTY, message=f"window already covered up to {fire_time_iso(start)}"
        )
    extra = schedule.params.get("filter")
    with ctx.client_factory() as client:
        found = client.search_event_ids(time_window_filter(start, end, extra=extra))
    return import_new_items(
        ctx, schedule, run, found, chunk_size=int(schedule.params["chunk_size"]), window=(start, end)
    )


def run_dataset_copy(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    source = str(schedule.params["from_dataset_id"])
    with ctx.client_factory() as client:
        found = [record.id for record in client.iter_records(source)]
    return import_new_items(ctx, schedule, run, found, chunk_size=int(schedule.params["chunk_size"]), window=None)


def import_new_items(
    ctx: FireContext,
    schedule: ScheduleSnapshot,
    run: RunRef,
    found: Sequence[str],
    *,
    chunk_size: int,
    window: tuple[datetime, datetime] | None,
) -> FireReport:
    """Request the items of ``found`` this schedule has not imported yet, ``chunk_size`` per job.

    One transaction holds the run's lock and the schedule's lock (so two fires of one schedule never both take
    the same item), creates every chunk's job, records the items, advances the watermark to the window's end and
    closes the run. Submit messages are sent after the commit; one that fails to go out leaves its job PENDING for
    the recovery sweep.
    """
    now = ctx.now()
    field_name, _ = SOURCE_FIELDS[schedule.import_kind]
    unique = list(dict.fromkeys(found))
    to_send: list[str] = []
    with ctx.session_factory() as session:
        row = lock_run(session, run.run_id, owner=run.owner)
        if row is None:
            return _lost(schedule, run)
        target = session.get(Schedule, schedule.id, with_for_update=True, populate_existing=True)
        if target is None:
            return _lost(schedule, run)
        already = imported_item_ids(session, schedule.id, unique)
        new = [item for item in unique if item not in already]
        job_ids: list[str] = []
        for index, start in enumerate(range(0, len(new), chunk_size)):
            chunk = new[start : start + chunk_size]
            job, created = create_job(
                session,
                kind=schedule.import_kind,
                dataset_id=schedule.dataset_id,
                params=validate_params(schedule.import_kind, {field_name: chunk}),
                idempotency_key=_key(schedule, run, str(index)),
                origin=schedule.origin,
                deadline_at=now + timedelta(seconds=ctx.deadline_s),
                now=now,
            )
            if not created:
                # Only possible when a schedule was removed and re-added under the same name and fired at the same
                # second: the old job holds other items, so recording these under it would lose them.
                raise ScheduleRunError(f"idempotency key {job.idempotency_key} is taken by job {job.id}")
            add_items(session, schedule.id, job.id, chunk, now=now)
            job_ids.append(job.id)
            if job.status == JobStatus.PENDING:
                to_send.append(job.id)
        if window is not None:
            advance_watermark(target, window[1], now=now)
            row.window_start, row.window_end = window
        row.item_count = len(new)
        message = f"{len(new)} new of {len(unique)} found, {len(job_ids)} job(s)"
        _close(row, RunStatus.SUBMITTED if job_ids else RunStatus.EMPTY, now=now, job_ids=job_ids, message=message)
        session.commit()
    for job_id in to_send:
        try:
            ctx.send(job_id)
        except Exception as exc:  # the broker may be down: the recovery sweep re-sends PENDING jobs
            log.warning("job %s written but not sent (%s); recovery will send it", job_id, exc)
    outcome = FireOutcome.SUBMITTED if job_ids else FireOutcome.EMPTY
    return FireReport(schedule.name, fire_time_iso(run.fire_time), outcome, job_ids, message)
