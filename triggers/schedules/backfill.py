"""Backfilling a window schedule: the items of a past range, imported chunk by chunk as fires import theirs.

``dsimport schedules backfill NAME --since T1 --until T2`` records a backfill (:func:`request_backfill`) and a
worker carries it out (:func:`advance_backfill`, behind the ``dsimport.run_backfill`` task). The guarantees are a
fire's, chunk by chunk:

- **Exactly once per chunk.** Each chunk ``[start, end)`` is a run of its own (trigger ``backfill``), claimed with
  the lease and owner token of a fire (:func:`store.schedule_runs.claim_chunk_run`): two tasks on one backfill
  never both carry out a chunk, and a task that was taken over writes nothing. Its jobs' idempotency keys are
  ``schedule:NAME:backfill:ID:CHUNK_START:INDEX``, never a fire's nor another backfill's.
- **No item twice.** The chunk goes through :func:`~triggers.schedules.kinds.import_new_items` like a fire: the
  schedule's imported-items list (under the schedule's lock) keeps an event or span to one import whether a fire,
  this backfill or another one found it first, the sample is the same deterministic one, and failed chunks of
  earlier runs are retried first.
- **The watermark is untouched.** The chunk's window is recorded on its run only: live fires go on from where
  they were.
- **Resumable.** The backfill's cursor is the start of the next chunk. It moves right after a chunk's run is
  recorded; a task that dies in between leaves a finished run at the cursor, which the next task sees and steps
  over. A task that dies inside a chunk leaves the run STARTED: once its lease runs out, the next task takes it
  over (nothing of it was recorded). A chunk whose search failed is recorded FAILED and carried out again by the
  next attempt. The task re-sends itself after a few chunks, and a periodic sweep re-sends the backfills no task
  has moved for a while (:func:`store.schedule_backfills.stale_backfills`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from api_client import ApiError, DatasetsClient
from store.models import BackfillStatus, RunStatus, Schedule, ScheduleBackfill, ScheduleKind
from store.schedule_backfills import (
    BackfillStart,
    chunk_count,
    chunk_of,
    chunks_done,
    lock_backfill,
    move_cursor,
    start_backfill,
    stop_backfill,
)
from store.schedule_runs import claim_chunk_run, new_owner_token
from store.schedules import get_schedule
from triggers.schedules.fire_times import InvalidTiming, fire_time_iso, parse_every
from triggers.schedules.kinds import (
    FireContext,
    FireOutcome,
    RunRef,
    ScheduleRunError,
    ScheduleSnapshot,
    finish_run,
    import_new_items,
    search_explorer_window,
)
from triggers.schedules.spans_window import search_spans_window

__all__ = [
    "DEFAULT_STEP_S",
    "MAX_CHUNKS",
    "BackfillError",
    "BackfillOutcome",
    "BackfillReport",
    "advance_backfill",
    "parse_moment",
    "request_backfill",
]

log = logging.getLogger(__name__)

DEFAULT_STEP_S = 3600
"""One hour a chunk: one search and a few jobs, well inside a task's time limit for most traffic."""
MAX_CHUNKS = 10_000
"""A bound on one backfill (a year by the hour fits); a longer range is a larger ``--step`` or several backfills."""

_Search = Callable[[DatasetsClient, ScheduleSnapshot, tuple[datetime, datetime]], Sequence[Any]]
_FixedParams = Callable[[ScheduleSnapshot], Mapping[str, Any] | None]


def _no_fixed_params(_: ScheduleSnapshot) -> Mapping[str, Any] | None:
    return None


def _spans_fixed_params(schedule: ScheduleSnapshot) -> Mapping[str, Any] | None:
    return {"mapping_contract": schedule.params["mapping_contract"]}


# What a chunk of each window kind searches, and the body fields every one of its chunks carries.
_WINDOW_KINDS: dict[ScheduleKind, tuple[_Search, _FixedParams]] = {
    ScheduleKind.EXPLORER_WINDOW: (search_explorer_window, _no_fixed_params),
    ScheduleKind.SPANS_WINDOW: (search_spans_window, _spans_fixed_params),
}


class BackfillError(ValueError):
    """Raised when a backfill cannot be asked for: unknown schedule, not a window schedule, or a bad range."""


def parse_moment(text: str, *, now: datetime) -> datetime:
    """A moment from ISO-8601 (no offset: UTC) or ``PERIOD ago`` (``2h ago``, ``1d12h ago``), to the second."""
    raw = text.strip()
    if raw.lower().endswith(" ago"):
        try:
            moment = now - timedelta(seconds=parse_every(raw[: -len(" ago")].strip()))
        except InvalidTiming as exc:
            raise BackfillError(f"cannot read {text!r}: {exc}") from None
    else:
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise BackfillError(
                f"cannot read {text!r}: use ISO-8601 (2026-01-31T00:00:00Z) or a period ago (6h ago)"
            ) from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def request_backfill(
    session: Session,
    name: str,
    *,
    since: datetime,
    until: datetime,
    step_s: int,
    now: datetime,
    settle_lag_s: float,
    prune_older_than_s: float = 0.0,
) -> BackfillStart:
    """Check the request and start the backfill, or find the one already asked for with this range and step.

    ``until`` may not be later than ``now`` less the settle lag: events more recent may not be searchable yet,
    and the live fires import them anyway. With retention on (``prune_older_than_s``), ``since`` may not be earlier
    than its cutoff: the ids a window schedule imported before then may have been pruned from its imported list
    (:mod:`store.retention`), and a backfill there would import those items again. The caller commits.

    :raises BackfillError: what is wrong with the request, in one line.
    """
    schedule = get_schedule(session, name)
    if schedule is None or schedule.removed_at is not None:
        raise BackfillError(f"no schedule named {name!r}")
    if schedule.kind not in _WINDOW_KINDS:
        raise BackfillError(
            f"schedule {name!r} is a {schedule.kind} schedule: only window schedules (explorer-window, spans-window) "
            "import a time range, so only they can be backfilled"
        )
    if since >= until:
        raise BackfillError(f"--since {fire_time_iso(since)} must be before --until {fire_time_iso(until)}")
    latest = (now - timedelta(seconds=settle_lag_s)).astimezone(UTC).replace(microsecond=0)
    if until > latest:
        raise BackfillError(
            f"--until {fire_time_iso(until)} is later than {fire_time_iso(latest)} (now less the settle lag of "
            f"{settle_lag_s:g}s): items that recent may not be searchable yet; the schedule's fires import them"
        )
    if prune_older_than_s > 0:
        horizon = (now - timedelta(seconds=prune_older_than_s)).astimezone(UTC).replace(microsecond=0)
        if since < horizon:
            raise BackfillError(
                f"--since {fire_time_iso(since)} is earlier than {fire_time_iso(horizon)}, the retention cutoff "
                f"(DSIMPORT_PRUNE_OLDER_THAN_S={prune_older_than_s:g}): the ids imported before it may have been "
                "pruned, and a backfill there could import them again"
            )
    chunks = -int(-(until - since).total_seconds() // step_s)
    if chunks > MAX_CHUNKS:
        raise BackfillError(f"{chunks} chunks of {step_s}s: at most {MAX_CHUNKS}; use a larger --step")
    return start_backfill(session, schedule, since=since, until=until, step_s=step_s, now=now)


class BackfillOutcome(StrEnum):
    """Where a call of :func:`advance_backfill` left the backfill."""

    DONE = "done"
    MORE = "more"
    """The time budget ran out with chunks left: send the task again."""
    BUSY = "busy"
    """Another task holds the next chunk; if it died, its lease says when this one may take over."""
    FAILED = "failed"
    """The chunk could not be planned (the API failed); it is carried out again by the next attempt."""
    STOPPED = "stopped"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BackfillReport:
    backfill_id: int
    outcome: BackfillOutcome
    chunks_done: int = 0
    chunks: int = 0
    job_ids: list[str] = field(default_factory=list)
    message: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class _Chunk:
    schedule: ScheduleSnapshot
    run: RunRef
    index: int
    count: int
    window: tuple[datetime, datetime]


def advance_backfill(
    ctx: FireContext,
    backfill_id: int,
    *,
    budget_s: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> BackfillReport:
    """Carry out the backfill's chunks in order from its cursor until it is done or ``budget_s`` has passed."""
    deadline = monotonic() + budget_s
    job_ids: list[str] = []
    while True:
        claimed = _claim_next_chunk(ctx, backfill_id)
        if isinstance(claimed, BackfillReport):
            return replace(claimed, job_ids=job_ids)
        report = _carry_out(ctx, claimed)
        job_ids.extend(report.job_ids)
        if report.outcome != BackfillOutcome.MORE or monotonic() >= deadline:
            return replace(report, job_ids=job_ids)


def _progress(backfill_id: int, outcome: BackfillOutcome, backfill: ScheduleBackfill, **extra: Any) -> BackfillReport:
    return BackfillReport(
        backfill_id, outcome, chunks_done=chunks_done(backfill), chunks=chunk_count(backfill), **extra
    )


def _claim_next_chunk(ctx: FireContext, backfill_id: int) -> _Chunk | BackfillReport:
    """Claim the chunk at the cursor, stepping over chunks whose run finished already."""
    owner = new_owner_token()
    while True:
        now = ctx.now()
        with ctx.session_factory() as session:
            backfill = lock_backfill(session, backfill_id)
            if backfill is None:
                return BackfillReport(backfill_id, BackfillOutcome.UNKNOWN, message="no such backfill")
            if backfill.status != BackfillStatus.RUNNING:
                outcome = BackfillOutcome.DONE if backfill.status == BackfillStatus.DONE else BackfillOutcome.STOPPED
                return _progress(backfill_id, outcome, backfill, message=backfill.message)
            schedule = session.get(Schedule, backfill.schedule_id, populate_existing=True)
            if schedule is None or schedule.removed_at is not None:
                stop_backfill(backfill, "the schedule was removed", now=now)
                session.commit()
                return _progress(backfill_id, BackfillOutcome.STOPPED, backfill, message=backfill.message)
            if backfill.cursor >= backfill.until:
                move_cursor(backfill, backfill.until, now=now)
                session.commit()
                return _progress(backfill_id, BackfillOutcome.DONE, backfill)
            index, start, end = chunk_of(backfill, backfill.cursor)
            claim = claim_chunk_run(session, schedule.id, backfill.id, start, owner=owner, now=now, lease_s=ctx.lease_s)
            if claim.run is None:
                existing = claim.existing
                if existing is not None and existing.status in (RunStatus.SUBMITTED, RunStatus.EMPTY):
                    # Recorded by a task that died before it moved the cursor: step over it.
                    move_cursor(backfill, end, now=now)
                    session.commit()
                    continue
                session.rollback()
                wait_s = 1.0
                if existing is not None and existing.lease_expires_at is not None:
                    wait_s = max((existing.lease_expires_at - now).total_seconds(), 0.0) + 1.0
                return _progress(
                    backfill_id,
                    BackfillOutcome.BUSY,
                    backfill,
                    message=f"another task is running chunk {index + 1}",
                    retry_after_s=wait_s,
                )
            if claim.taken_over:
                log.warning("backfill %d: took over chunk %d left by a task that died", backfill_id, index + 1)
            backfill.updated_at = now
            chunk = _Chunk(
                schedule=ScheduleSnapshot.of(schedule),
                run=RunRef(
                    run_id=claim.run.id, owner=owner, fire_time=start, trigger="backfill", backfill_id=backfill.id
                ),
                index=index,
                count=chunk_count(backfill),
                window=(start, end),
            )
            session.commit()
            return chunk


def _carry_out(ctx: FireContext, chunk: _Chunk) -> BackfillReport:
    schedule, run = chunk.schedule, chunk.run
    backfill_id = run.backfill_id
    assert backfill_id is not None
    search, fixed_params = _WINDOW_KINDS[schedule.kind]
    label = f"backfill {backfill_id} chunk {chunk.index + 1} of {chunk.count}"
    try:
        with ctx.client_factory() as client:
            found = search(client, schedule, chunk.window)
        fired = import_new_items(
            ctx,
            schedule,
            run,
            found,
            chunk_size=int(schedule.params["chunk_size"]),
            window=chunk.window,
            fixed_params=fixed_params(schedule),
            moves_watermark=False,
            note=label,
        )
    except (ApiError, ScheduleRunError) as exc:
        log.warning("schedule %s: %s failed: %s", schedule.name, label, exc)
        finish_run(ctx, schedule, run, RunStatus.FAILED, message=str(exc))
        return _after_chunk(ctx, backfill_id, None, BackfillOutcome.FAILED, message=f"{label} failed: {exc}")
    except Exception as exc:
        try:
            finish_run(ctx, schedule, run, RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database may be what failed; the run's lease lets a later task take over
            log.exception("schedule %s: could not record the failed %s", schedule.name, label)
        raise
    if fired.outcome == FireOutcome.LOST:
        return _after_chunk(ctx, backfill_id, None, BackfillOutcome.BUSY, message=f"{label} was taken over")
    return _after_chunk(ctx, backfill_id, chunk.window[1], BackfillOutcome.MORE, job_ids=fired.job_ids)


def _after_chunk(
    ctx: FireContext,
    backfill_id: int,
    past: datetime | None,
    outcome: BackfillOutcome,
    *,
    message: str | None = None,
    job_ids: Sequence[str] = (),
) -> BackfillReport:
    """Move the cursor past a recorded chunk (``past``: its end), or note why it did not move."""
    now = ctx.now()
    with ctx.session_factory() as session:
        backfill = lock_backfill(session, backfill_id)
        if backfill is None:
            return BackfillReport(backfill_id, BackfillOutcome.UNKNOWN, message="no such backfill")
        if past is not None:
            backfill.message = None  # an earlier attempt's failure is over
            move_cursor(backfill, past, now=now)
        elif message is not None:
            backfill.message = message
        session.commit()
        if backfill.status == BackfillStatus.DONE:
            outcome = BackfillOutcome.DONE
        return _progress(backfill_id, outcome, backfill, job_ids=list(job_ids), message=message)
