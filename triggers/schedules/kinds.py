"""What each kind of schedule does with a run it has claimed.

- plain: one import with the schedule's params, key ``schedule:NAME:FIRE_TIME``.
- explorer-window: search the events created in ``[watermark, fire time - settle lag)`` (and matching the
  filter), drop those this schedule already imported, and request the rest in chunks, key
  ``schedule:NAME:FIRE_TIME:INDEX``. The window stops ``settle_lag_s`` short of the fire time because an event is
  searchable some time after its ``created_at`` (indexing, a remote clock behind ours): a window closed at the
  fire time itself would pass such an event by, and the watermark would never come back to it. The jobs, the list
  of imported ids and the watermark move together in one transaction: either every chunk is accepted (its job row
  committed) and the watermark advances, or nothing is recorded and the next fire searches the same window again.
- campaign-when-done: ask for the campaign's status; until it is COMPLETED, record the run as WAITING and return
  (no worker waits: the next fire asks again). Once COMPLETED, import it under the key
  ``schedule:NAME:campaign:ID``; the following fires look at that job: still running, WAITING; COMPLETED, the
  schedule finishes; failed, it is requested again under ``…:retry:K`` up to :data:`CHUNK_RETRIES` times, after
  which the schedule finishes with the reason.
- dataset-copy: list at most ``copy_pages_per_fire`` pages of the source dataset's records, from the page where
  the last fire stopped (``copy_page``), and request those not copied yet, chunked like explorer-window. At the
  end of the listing the next fire starts again at page 1, so records that moved between pages (deletions, a
  different order) are seen by a later pass; the imported list keeps each record to one copy.

With a sample rate (window schedules), only the items :mod:`triggers.schedules.sampling` keeps are requested;
the run records how many items it was offered and how many the rate left out.

- spans-window: explorer-window's twin for telemetry spans (:mod:`triggers.schedules.spans_window`), through
  :func:`import_new_items` too.

explorer-window, spans-window and dataset-copy fires first retry the chunks of earlier fires whose job failed
(:mod:`triggers.schedules.chunk_retries`), in the same transaction.

Every run ends in :func:`finish_run` or in the item transaction, both of which first re-check (and lock) the run
for this task's owner token, so a task whose run was taken over writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, time_window_filter
from import_kinds import spec_of
from jobs.request_import import request_import, validate_params
from store.jobs import create_job, get_job_by_key
from store.models import (
    TERMINAL_JOB_STATUSES,
    ImportJob,
    ImportKind,
    JobStatus,
    RunStatus,
    Schedule,
    ScheduleKind,
    ScheduleRun,
)
from store.schedule_items import FAILED_JOB_STATUSES
from store.schedule_runs import lock_run
from store.schedules import add_items, advance_watermark, imported_item_ids, mark_finished
from triggers.schedules.chunk_retries import CHUNK_RETRIES, RetryConflictError, retry_failed_chunks, retry_key
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.sampling import sample

__all__ = [
    "COPY_PAGES_PER_FIRE",
    "COPY_PAGE_SIZE",
    "FireContext",
    "FireOutcome",
    "FireReport",
    "RunRef",
    "ScheduleRunError",
    "ScheduleSnapshot",
    "finish_run",
    "import_new_items",
    "run_campaign_when_done",
    "run_dataset_copy",
    "run_explorer_window",
    "run_plain",
    "search_explorer_window",
    "window_of",
]

log = logging.getLogger(__name__)

# Campaign statuses after which it will never be COMPLETED: waiting longer is pointless.
_CAMPAIGN_DEAD_ENDS = frozenset({"FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"})
# dataset-copy reads at most this many pages of this many records per fire (5,000 records): a page is one short
# API call, so a fire stays far inside the task's soft time limit however large the source, and a large source
# is copied over several fires instead of one fire that never finishes.
COPY_PAGE_SIZE = 100
COPY_PAGES_PER_FIRE = 50


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
    """What firing needs, passed in so tests can call :func:`triggers.schedules.firing.fire` without a broker."""

    session_factory: sessionmaker[Session]
    client_factory: Callable[[], DatasetsClient]
    send: Callable[[str], None]
    now: Callable[[], datetime]
    lease_s: float
    deadline_s: float
    settle_lag_s: float
    """Window schedules: how long before the fire time a window ends (items searchable late are not missed)."""
    copy_page_size: int = COPY_PAGE_SIZE
    copy_pages_per_fire: int = COPY_PAGES_PER_FIRE


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
    copy_page: int | None
    sample_rate: float | None = None
    skip_existing: bool = True

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
            copy_page=schedule.copy_page,
            sample_rate=schedule.sample_rate,
            skip_existing=schedule.skip_existing,
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
    backfill_id: int | None = None
    """Set for a backfill's chunk (its fire time is the chunk's start): its keys name the backfill."""


def _key(schedule: ScheduleSnapshot, run: RunRef, suffix: str | None = None) -> str:
    # A chunk's keys can never be a fire's, nor another backfill's over the same times.
    backfill = "" if run.backfill_id is None else f"backfill:{run.backfill_id}:"
    base = f"{schedule.origin}:{backfill}{fire_time_iso(run.fire_time)}"
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
    return FireReport(schedule.name, fire_time_iso(run.fire_time), _OUTCOME_OF_STATUS[status], list(job_ids), message)


def _close(row: ScheduleRun, status: RunStatus, *, now: datetime, job_ids: Sequence[str], message: str | None) -> None:
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
        skip_existing=schedule.skip_existing,
    )
    message = None if requested.created else f"job existed already ({requested.status})"
    return finish_run(ctx, schedule, run, RunStatus.SUBMITTED, job_ids=[requested.job_id], message=message)


def run_campaign_when_done(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    campaign_id = str(schedule.params["campaign_id"])
    first_key = f"{schedule.origin}:campaign:{campaign_id}"
    retry, job = _latest_campaign_job(ctx, first_key)
    if job is not None:
        return _follow_campaign_import(ctx, schedule, run, campaign_id, first_key, retry, job)
    with ctx.client_factory() as client:
        status = client.fetch_campaign_status(campaign_id)
    if status in _CAMPAIGN_DEAD_ENDS:
        reason = f"campaign {campaign_id} ended {status}: nothing to import"
        return finish_run(ctx, schedule, run, RunStatus.FAILED, message=reason, finish_schedule=reason)
    if status != "COMPLETED":
        return finish_run(ctx, schedule, run, RunStatus.WAITING, message=f"campaign {campaign_id} is {status}")
    # Keyed by the campaign, not the fire: whichever fire sees it COMPLETED first imports it, the others get
    # that same job back. The schedule finishes once a later fire sees the import COMPLETED.
    requested = _request_campaign(ctx, schedule, campaign_id, first_key)
    return finish_run(
        ctx, schedule, run, RunStatus.SUBMITTED, job_ids=[requested], message=f"campaign {campaign_id} is COMPLETED"
    )


def _latest_campaign_job(ctx: FireContext, first_key: str) -> tuple[int, ImportJob | None]:
    """The campaign's latest import job (first, or retry K) and its retry number; (0, None) before the first."""
    latest: tuple[int, ImportJob | None] = (0, None)
    with ctx.session_factory() as session:
        for retry in range(CHUNK_RETRIES + 1):
            job = get_job_by_key(session, first_key if retry == 0 else retry_key(first_key, retry))
            if job is None:
                break
            session.expunge(job)
            latest = (retry, job)
    return latest


def _request_campaign(ctx: FireContext, schedule: ScheduleSnapshot, campaign_id: str, key: str) -> str:
    return request_import(
        ctx.session_factory,
        kind=ImportKind.CAMPAIGN,
        dataset_id=schedule.dataset_id,
        params={"campaign_id": campaign_id},
        origin=schedule.origin,
        now=ctx.now(),
        deadline_s=ctx.deadline_s,
        send=ctx.send,
        idempotency_key=key,
        skip_existing=schedule.skip_existing,
    ).job_id


def _follow_campaign_import(
    ctx: FireContext,
    schedule: ScheduleSnapshot,
    run: RunRef,
    campaign_id: str,
    first_key: str,
    retry: int,
    job: ImportJob,
) -> FireReport:
    """What a fire does once the campaign's import was requested: wait for it, finish, or request it again."""
    if job.status == JobStatus.COMPLETED:
        reason = f"campaign {campaign_id} completed and was imported by job {job.id}"
        return finish_run(ctx, schedule, run, RunStatus.EMPTY, job_ids=[job.id], message=reason, finish_schedule=reason)
    if job.status not in TERMINAL_JOB_STATUSES:
        message = f"campaign {campaign_id}: import job {job.id} is {job.status}"
        return finish_run(ctx, schedule, run, RunStatus.WAITING, job_ids=[job.id], message=message)
    may_have_imported = job.status == JobStatus.EXPIRED and (
        job.remote_task_id is not None or job.submit_started_at is not None
    )
    if job.status not in FAILED_JOB_STATUSES or may_have_imported or retry >= CHUNK_RETRIES:
        why = f"after {retry} retries" if retry >= CHUNK_RETRIES else "not retried"
        reason = f"campaign {campaign_id}: import job {job.id} ended {job.status}, {why}"
        log.warning("schedule %s: %s", schedule.name, reason)
        return finish_run(
            ctx, schedule, run, RunStatus.FAILED, job_ids=[job.id], message=reason, finish_schedule=reason
        )
    requested = _request_campaign(ctx, schedule, campaign_id, retry_key(first_key, retry + 1))
    message = (
        f"campaign {campaign_id}: import job {job.id} ended {job.status}: "
        f"retry {retry + 1} of {CHUNK_RETRIES} is job {requested}"
    )
    log.warning("schedule %s: %s", schedule.name, message)
    return finish_run(ctx, schedule, run, RunStatus.SUBMITTED, job_ids=[requested], message=message)


def window_of(schedule: ScheduleSnapshot, fire_time: datetime, settle_lag_s: float) -> tuple[datetime, datetime]:
    """The window a window schedule's fire at ``fire_time`` searches: from the watermark to the settle lag."""
    return schedule.watermark or schedule.created_at, fire_time - timedelta(seconds=settle_lag_s)


def search_explorer_window(
    client: DatasetsClient, schedule: ScheduleSnapshot, window: tuple[datetime, datetime]
) -> list[str]:
    """The ids of the events created in ``window`` that match the schedule's filter, as the search answers them."""
    start, end = window
    return client.search_event_ids(time_window_filter(start, end, extra=schedule.params.get("filter")))


def run_explorer_window(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    start, end = window_of(schedule, run.fire_time, ctx.settle_lag_s)
    if end <= start:
        # Nothing to search yet, but failed chunks of earlier fires are still retried.
        message = f"window ending {fire_time_iso(end)} already covered up to {fire_time_iso(start)}"
        return import_new_items(ctx, schedule, run, [], chunk_size=1, window=None, note=message)
    with ctx.client_factory() as client:
        found = search_explorer_window(client, schedule, (start, end))
    return import_new_items(
        ctx, schedule, run, found, chunk_size=int(schedule.params["chunk_size"]), window=(start, end)
    )


def run_dataset_copy(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    source = str(schedule.params["from_dataset_id"])
    first = page = schedule.copy_page or 1
    found: list[str] = []
    complete = False
    with ctx.client_factory() as client:
        while True:
            listing = client.list_records(source, page, ctx.copy_page_size)
            found.extend(record.id for record in listing.results)
            # The end of the listing: a short page, or the count reached (a server may ignore page numbers).
            complete = len(listing.results) < ctx.copy_page_size or page * ctx.copy_page_size >= listing.count
            if complete or page - first + 1 >= ctx.copy_pages_per_fire:
                break
            page += 1
    note = f"source pages {first}-{page}" + (", end of the source: next fire starts at page 1" if complete else "")
    return import_new_items(
        ctx,
        schedule,
        run,
        found,
        chunk_size=int(schedule.params["chunk_size"]),
        window=None,
        next_copy_page=1 if complete else page + 1,
        note=note,
    )


def import_new_items(
    ctx: FireContext,
    schedule: ScheduleSnapshot,
    run: RunRef,
    found: Sequence[Any],
    *,
    chunk_size: int,
    window: tuple[datetime, datetime] | None,
    next_copy_page: int | None = None,
    note: str | None = None,
    fixed_params: Mapping[str, Any] | None = None,
    moves_watermark: bool = True,
) -> FireReport:
    """Retry the failed chunks of earlier fires, then request the items of ``found`` this schedule has not
    imported yet, ``chunk_size`` per job. ``found`` holds items of the import kind's item field (its entry in
    :mod:`import_kinds`), each recorded under its item key; ``fixed_params`` are the body's other fields, the same
    in every chunk (a spans import's mapping contract).

    One transaction holds the run's lock and the schedule's lock (so two fires of one schedule never both take
    the same item), creates every chunk's job, records the items, advances the watermark to the window's end
    (unless ``moves_watermark`` is False: a backfill's chunk records its window on the run only) or the copy's page
    cursor to ``next_copy_page``, and closes the run. Submit messages are sent after the commit;
    one that fails to go out leaves its job PENDING for the recovery sweep.
    """
    now = ctx.now()
    spec = spec_of(schedule.import_kind)
    item_field = spec.item_field
    assert item_field is not None, f"a {spec.name} import has no items to chunk"
    by_key: dict[str, Any] = {}
    for item in found:
        by_key.setdefault(item_field.shape.item_key(item), item)
    # Each item once, in the order found; sampled before the imported-items check, so what a fire leaves out
    # depends on the item alone, never on what earlier fires took.
    unique, sampled_out = sample(list(by_key), schedule.sample_rate)
    with ctx.session_factory() as session:
        row = lock_run(session, run.run_id, owner=run.owner)
        if row is None:
            return _lost(schedule, run)
        target = session.get(Schedule, schedule.id, with_for_update=True, populate_existing=True)
        if target is None:
            return _lost(schedule, run)
        try:
            retried = retry_failed_chunks(
                session,
                schedule_id=schedule.id,
                schedule_name=schedule.name,
                import_kind=schedule.import_kind,
                dataset_id=schedule.dataset_id,
                now=now,
                deadline_s=ctx.deadline_s,
            )
        except RetryConflictError as exc:
            raise ScheduleRunError(str(exc)) from None
        already = imported_item_ids(session, schedule.id, unique)
        new = [key for key in unique if key not in already]
        job_ids: list[str] = []
        to_send: list[str] = list(retried.to_send)
        for index, start in enumerate(range(0, len(new), chunk_size)):
            chunk = new[start : start + chunk_size]
            params = spec.with_items(fixed_params or {}, [by_key[key] for key in chunk])
            job, created = create_job(
                session,
                kind=schedule.import_kind,
                dataset_id=schedule.dataset_id,
                params=validate_params(schedule.import_kind, params),
                idempotency_key=_key(schedule, run, str(index)),
                origin=schedule.origin,
                deadline_at=now + timedelta(seconds=ctx.deadline_s),
                now=now,
                skip_existing=schedule.skip_existing,
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
            if moves_watermark:
                advance_watermark(target, window[1], now=now)
            row.window_start, row.window_end = window
        if next_copy_page is not None:
            target.copy_page = next_copy_page
        row.item_count = len(new)
        row.offered_count = len(by_key)
        row.sampled_out_count = sampled_out
        parts = [note] if note else []
        if window is not None or found or next_copy_page is not None:
            parts.append(f"{len(new)} new of {len(by_key)} found, {len(job_ids)} job(s)")
            if schedule.sample_rate is not None:
                parts.append(f"{sampled_out} of {len(by_key)} sampled out at rate {schedule.sample_rate:g}")
        if retried.message:
            parts.append(retried.message)
        message = "; ".join(parts)
        all_jobs = [*retried.job_ids, *job_ids]
        _close(row, RunStatus.SUBMITTED if all_jobs else RunStatus.EMPTY, now=now, job_ids=all_jobs, message=message)
        session.commit()
    for job_id in to_send:
        try:
            ctx.send(job_id)
        except Exception as exc:  # the broker may be down: the recovery sweep re-sends PENDING jobs
            log.warning("job %s written but not sent (%s); recovery will send it", job_id, exc)
    outcome = FireOutcome.SUBMITTED if all_jobs else FireOutcome.EMPTY
    return FireReport(schedule.name, fire_time_iso(run.fire_time), outcome, all_jobs, message)
