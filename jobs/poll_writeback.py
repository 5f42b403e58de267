"""Writing a poll round's observations back to the ledger: conditional on the claim, in slices as they arrive.

A result is applied only to a job that is still RUNNING and still leased to the round that observed it, and the
UPDATE checks the row's version as read in the same transaction. A job cancelled meanwhile, or re-claimed by another
poller after the lease ran out, keeps what its new owner writes: a late answer never overwrites a newer one.

Results are written while the round goes on (:class:`SliceWriter`), not once at its end, so one hanging request
holds back nothing but its own job, and every slice is written while the round's claims still hold. Writes run in
a worker thread, one at a time, so the event loop keeps receiving answers while the database works.

What could still cost results (never correctness): a write that waits longer than the rest of the lease (a
database lock held for tens of seconds) finds some jobs re-claimed and drops their observations; they are polled
again by their new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from jobs import metrics
from jobs.runtime import Runtime
from jobs.transitions import Observation, apply_observation
from store import guarantees
from store.models import ImportJob, JobStatus

__all__ = ["WRITE_SLICE_JOBS", "SliceWriter", "write_back"]

log = logging.getLogger(__name__)

# A slice is written as soon as this many results wait, whatever the interval: large enough that a fast round of
# a full batch costs a few transactions, small enough that one write stays short.
WRITE_SLICE_JOBS = 500


def write_back(
    runtime: Runtime,
    observations: dict[str, Observation],
    *,
    owner: str,
    now: datetime,
    rng: random.Random,
) -> list[tuple[str, str]]:
    """Apply the observations in one transaction; returns (job id, status) of the jobs that ended.

    An observation of a job that is no longer RUNNING, or no longer leased to ``owner``, is dropped.
    """
    if not observations:
        return []
    try:
        return _write_back(runtime, observations, owner=owner, now=now, rng=rng, savepoints=False)
    except StaleDataError:
        # A row changed between our read and our write (only possible where rows are not locked): redo the batch
        # one savepoint per job, so that job fails alone.
        log.info("a polled job changed during write-back; applying the batch job by job")
        return _write_back(runtime, observations, owner=owner, now=now, rng=rng, savepoints=True)


def _write_back(
    runtime: Runtime,
    observations: dict[str, Observation],
    *,
    owner: str,
    now: datetime,
    rng: random.Random,
    savepoints: bool,
) -> list[tuple[str, str]]:
    finished: list[tuple[str, str]] = []
    check_lease = guarantees.enabled("lease-check")
    with runtime.session_factory() as session:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock) keeps the rows as read
        # until commit, so the whole batch can be written at once.
        query = select(ImportJob).where(ImportJob.id.in_(list(observations))).with_for_update()
        applied_to: list[ImportJob] = []
        for job in session.scalars(query).all():
            # A job cancelled (or re-claimed after our lease ran out) while we were away is no longer ours.
            if job.status != JobStatus.RUNNING or (check_lease and job.lease_owner != owner):
                continue
            try:
                with session.begin_nested() if savepoints else contextlib.nullcontext():
                    applied = apply_observation(
                        job,
                        observations[job.id],
                        now=now,
                        policy=runtime.poll_policy,
                        rng=rng,
                        stuck_after_s=runtime.tuning.stuck_remote_status_s,
                    )
            except StaleDataError:
                log.info("job %s changed while being polled; its observation is dropped", job.id)
                continue
            applied_to.append(job)
            if applied.finished and applied.status is not None:
                finished.append((job.id, str(applied.status)))
        if not savepoints:
            _update_in_one_statement(session, applied_to)
        session.commit()
    metrics.record_lease_conflicts("poll_writeback", len(observations) - len(applied_to))
    return finished


def _update_in_one_statement(session: Session, jobs: list[ImportJob]) -> None:
    """Write the jobs' changed columns with one executemany UPDATE, then drop them from the session.

    The ORM would send one UPDATE per job: a versioned row cannot be batched, since each row's version must be
    checked. The WHERE clause here checks it all the same, and a count short of the batch raises
    ``StaleDataError`` as the ORM would. Event rows added by the transitions stay in the session and are inserted
    at commit.
    """
    if not jobs:
        return
    mapper = inspect(ImportJob)
    # committed_state holds the attributes set since the job was loaded (the ones the ORM would write).
    touched = set().union(*(inspect(job).committed_state for job in jobs))
    changed = [prop for prop in mapper.column_attrs if prop.key in touched and prop.key != "version"]
    if not changed:
        return
    table = ImportJob.__table__
    assert isinstance(table, Table)
    values: dict[Any, Any] = {
        table.c[prop.columns[0].name]: bindparam(f"v_{prop.key}", type_=prop.columns[0].type) for prop in changed
    }
    values[table.c.version] = bindparam("v_version", type_=table.c.version.type)
    statement = (
        update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version")).values(values)
    )
    rows = [
        {
            "b_id": job.id,
            "b_version": job.version,
            "v_version": job.version + 1,
            **{f"v_{prop.key}": getattr(job, prop.key) for prop in changed},
        }
        for job in jobs
    ]
    for job in jobs:
        session.expunge(job)
    result = session.connection().execute(statement, rows)
    if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(rows):
        raise StaleDataError(f"{len(rows) - result.rowcount} of {len(rows)} polled jobs changed under the poller")


class SliceWriter:
    """Writes a round's observations as they arrive: every ``interval_s``, or as soon as a slice is full.

    Use :meth:`running` around the round; what was added before it exits is written before it returns, and a
    write that failed raises there.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        owner: str,
        now: Callable[[], datetime],
        rng: random.Random,
        interval_s: float,
        slice_jobs: int = WRITE_SLICE_JOBS,
    ) -> None:
        self._runtime = runtime
        self._owner = owner
        self._now = now
        self._rng = rng
        self._interval_s = interval_s
        self._slice_jobs = slice_jobs
        self._waiting: dict[str, Observation] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self.finished: list[tuple[str, str]] = []
        self.slices = 0

    def add(self, job_id: str, observation: Observation) -> None:
        self._waiting[job_id] = observation
        if len(self._waiting) >= self._slice_jobs:
            self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SliceWriter]:
        writing = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._stopping = True
            self._wake.set()
            await writing

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            stopping = self._stopping
            await self._write_waiting()
            if stopping:
                return

    async def _write_waiting(self) -> None:
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, {}
        self.slices += 1
        self.finished += await asyncio.to_thread(
            write_back, self._runtime, batch, owner=self._owner, now=self._now(), rng=self._rng
        )
