"""One row per fire of a schedule: the exactly-once guard for the run, and the schedule's visible history.

A firing task starts by claiming the run for its (schedule, fire time). The unique index decides between two
tasks for the same fire (sent by two beats, or redelivered): the first inserts the row and holds a lease on it;
the second finds the row and does nothing, or, when the row is still STARTED and its lease has run out (its task
died), takes it over under a new owner token. Every write a run makes at the end is conditional on that token
(:func:`lock_run`), so a task that was taken over cannot commit anything: at most one owner ever finishes a run.

A backfill's chunk is a run too, claimed the same way (:func:`claim_chunk_run`), unique on (backfill, chunk start)
rather than (schedule, fire time): two partial unique indexes keep the two apart. A chunk whose run ended FAILED
recorded nothing and is claimed again under the same row.

The unique index is the guarantee named ``unique-run`` (:mod:`store.guarantees`): a test build that switches it
off inserts a second row for the same fire (its stored fire time moved by a few microseconds, as if no index
guarded it), so a duplicate fire proceeds; the guarantee's tests must then fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import guarantees
from store.clock import ledger_now
from store.models import ImportJob, RunStatus, Schedule, ScheduleRun

__all__ = [
    "RunClaim",
    "claim_chunk_run",
    "claim_run",
    "jobs_of_runs",
    "last_run",
    "list_runs",
    "lock_run",
    "new_owner_token",
    "prune_runs",
]


def new_owner_token() -> str:
    """An owner token for one attempt at a run."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RunClaim:
    """The outcome of :func:`claim_run`: ``run`` is set when the caller now owns the run.

    Otherwise ``existing`` is the row someone else holds (or finished), so the caller can say why it stopped.
    """

    run: ScheduleRun | None
    existing: ScheduleRun | None
    taken_over: bool = False


def claim_run(
    session: Session,
    schedule: Schedule,
    fire_time: datetime,
    *,
    trigger: str,
    owner: str,
    now: datetime,
    lease_s: float,
) -> RunClaim:
    """Insert the run row for ``fire_time``, or take over a STARTED one whose lease expired.

    Also moves the schedule's ``last_fire_at`` forward. The caller commits.
    """
    run = ScheduleRun(
        schedule_id=schedule.id,
        fire_time=fire_time,
        trigger=trigger,
        status=RunStatus.STARTED,
        owner=owner,
        attempts=1,
        # The lease runs on the ledger's clock, so another host's take-over check agrees on when it ends.
        lease_expires_at=ledger_now(session, now) + timedelta(seconds=lease_s),
        started_at=now,
        job_ids=[],
    )
    claim = _insert_or_take_over(session, run, now=now, lease_s=lease_s)
    if claim.run is not None and (schedule.last_fire_at is None or schedule.last_fire_at < fire_time):
        schedule.last_fire_at = fire_time
    return claim


def claim_chunk_run(
    session: Session,
    schedule_id: str,
    backfill_id: int,
    chunk_start: datetime,
    *,
    owner: str,
    now: datetime,
    lease_s: float,
) -> RunClaim:
    """Insert the run row of a backfill's chunk starting at ``chunk_start``, or take it over when it is STARTED
    with its lease run out, or FAILED (a failed chunk recorded nothing, so it is carried out again under the same
    row and keys). A finished chunk (SUBMITTED, EMPTY) comes back in ``existing``. The caller commits.

    Unlike a fire, a chunk leaves the schedule's ``last_fire_at`` alone: beat's fire times are not the chunk's.
    """
    run = ScheduleRun(
        schedule_id=schedule_id,
        backfill_id=backfill_id,
        fire_time=chunk_start,
        trigger="backfill",
        status=RunStatus.STARTED,
        owner=owner,
        attempts=1,
        lease_expires_at=ledger_now(session, now) + timedelta(seconds=lease_s),
        started_at=now,
        job_ids=[],
    )
    return _insert_or_take_over(session, run, now=now, lease_s=lease_s, retake_failed=True)


def _insert_or_take_over(
    session: Session, run: ScheduleRun, *, now: datetime, lease_s: float, retake_failed: bool = False
) -> RunClaim:
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        if guarantees.enabled("unique-run"):
            assert run.owner is not None
            return _take_over(
                session,
                run.schedule_id,
                run.fire_time,
                backfill_id=run.backfill_id,
                owner=run.owner,
                now=now,
                lease_s=lease_s,
                retake_failed=retake_failed,
            )
        run = _unguarded_duplicate(session, run)
    return RunClaim(run=run, existing=None)


def _unguarded_duplicate(session: Session, run: ScheduleRun) -> ScheduleRun:
    """Insert the run again as if no unique index guarded (schedule, fire time): for mutation runs only."""
    for offset_us in range(1, 1000):
        duplicate = ScheduleRun(
            schedule_id=run.schedule_id,
            backfill_id=run.backfill_id,
            fire_time=run.fire_time + timedelta(microseconds=offset_us),
            trigger=run.trigger,
            status=run.status,
            owner=run.owner,
            attempts=run.attempts,
            lease_expires_at=run.lease_expires_at,
            started_at=run.started_at,
            job_ids=[],
        )
        try:
            with session.begin_nested():
                session.add(duplicate)
        except IntegrityError:
            continue
        return duplicate
    raise RuntimeError("no free fire time for an unguarded duplicate run")


def _take_over(
    session: Session,
    schedule_id: str,
    fire_time: datetime,
    *,
    backfill_id: int | None,
    owner: str,
    now: datetime,
    lease_s: float,
    retake_failed: bool,
) -> RunClaim:
    at = ledger_now(session, now)
    same_run = (
        ScheduleRun.schedule_id == schedule_id,
        ScheduleRun.fire_time == fire_time,
        ScheduleRun.backfill_id.is_(None) if backfill_id is None else ScheduleRun.backfill_id == backfill_id,
    )
    abandoned = (ScheduleRun.status == RunStatus.STARTED) & (ScheduleRun.lease_expires_at <= at)
    if retake_failed:
        abandoned = abandoned | (ScheduleRun.status == RunStatus.FAILED)
    stmt = (
        update(ScheduleRun)
        .where(*same_run, abandoned)
        .values(
            owner=owner,
            status=RunStatus.STARTED,
            attempts=ScheduleRun.attempts + 1,
            lease_expires_at=at + timedelta(seconds=lease_s),
            started_at=now,
            finished_at=None,
        )
        .returning(ScheduleRun)
        .execution_options(populate_existing=True)
    )
    taken = session.scalars(stmt).one_or_none()
    if taken is not None:
        return RunClaim(run=taken, existing=None, taken_over=True)
    existing = session.scalars(
        select(ScheduleRun).where(*same_run).execution_options(populate_existing=True)
    ).one_or_none()
    return RunClaim(run=None, existing=existing)


def lock_run(session: Session, run_id: int, *, owner: str) -> ScheduleRun | None:
    """The run, row-locked, if ``owner`` still holds it and it is STARTED; None when it was taken over or finished.

    Call it first in the transaction that records a run's outcome, and write nothing when it returns None.
    """
    return session.scalars(
        select(ScheduleRun)
        .where(ScheduleRun.id == run_id, ScheduleRun.owner == owner, ScheduleRun.status == RunStatus.STARTED)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def list_runs(session: Session, schedule_id: str, *, limit: int = 20) -> list[ScheduleRun]:
    """A schedule's runs, latest fire first."""
    return list(
        session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule_id)
            .order_by(ScheduleRun.fire_time.desc())
            .limit(limit)
        )
    )


def last_run(session: Session, schedule_id: str) -> ScheduleRun | None:
    """The run with the latest fire time, or None."""
    runs = list_runs(session, schedule_id, limit=1)
    return runs[0] if runs else None


def jobs_of_runs(session: Session, runs: Iterable[ScheduleRun]) -> dict[str, ImportJob]:
    """The jobs the given runs requested, by id (a job deleted since is simply missing)."""
    ids = list(dict.fromkeys(job_id for run in runs for job_id in run.job_ids or []))
    found: dict[str, ImportJob] = {}
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        found.update((job.id, job) for job in session.scalars(select(ImportJob).where(ImportJob.id.in_(batch))))
    return found


def prune_runs(session: Session, schedule_id: str, *, keep: int, limit: int = 1000) -> int:
    """Delete up to ``limit`` of a schedule's finished runs beyond its ``keep`` latest; returns how many went.

    Counted per schedule, so every schedule keeps its own last ``keep`` runs whatever the others do; ``limit``
    bounds one call (a backlog drains over several fires). Old runs are history, not protection: a very late
    duplicate of a pruned fire still finds its job by idempotency key, its window behind the watermark, or its
    items in the imported list.
    """
    cutoff = (
        select(ScheduleRun.fire_time)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.fire_time.desc())
        .offset(keep)
        .limit(1)
        .scalar_subquery()
    )
    doomed = (
        select(ScheduleRun.id)
        .where(
            ScheduleRun.schedule_id == schedule_id,
            ScheduleRun.status != RunStatus.STARTED,
            ScheduleRun.fire_time <= cutoff,
        )
        .limit(limit)
    )
    # Materialised first: a DELETE whose IN (...) reads the table it deletes from is refused by some backends.
    ids = list(session.scalars(doomed))
    if not ids:
        return 0
    result = session.execute(delete(ScheduleRun).where(ScheduleRun.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)
