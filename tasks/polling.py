"""The batch poller: one round claims due jobs, observes their remote tasks concurrently, writes once.

No job is waited on by a sleeping task: a job waiting for its remote task is only a row with ``next_poll_at``. A
periodic task runs rounds; each round claims due RUNNING jobs under a lease (so several workers never poll the same
job at once), observes them with a bound on concurrency, and writes every change in one transaction. When several
due jobs share a dataset, pages of ``list_tasks`` replace their ``fetch_task`` calls.

What it costs per job is kept small (``bench/poll_path.py`` and ``bench/inflight.py`` measure it): requests are
spread over several small clients, because an httpx pool scans every one of its connections on each request; a
round's updates go out as one executemany UPDATE, with one savepoint per job only if a row changed under us; and
:mod:`tasks.poll_loop` keeps the event loop and these clients from one poll call to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api_client import ApiError, AsyncDatasetsClient, DatasetImportTask
from store.jobs import claim_due_jobs
from store.models import ImportJob, JobStatus

from .outcomes import Observation, apply_observation
from .runtime import Runtime

log = logging.getLogger(__name__)

# The largest page the API is known to accept; fewer, fuller pages mean fewer calls.
LIST_PAGE_SIZE = 100
# Requests in flight per API client. httpcore walks all of a pool's connections on every request, so one client
# with many connections spends more time choosing a connection than sending; several small ones do not.
REQUESTS_PER_CLIENT = 8


@dataclass(frozen=True)
class DueJob:
    """The few fields of a claimed job that observing it needs (plain values, safe outside a session)."""

    job_id: str
    dataset_id: str
    remote_task_id: str


@dataclass
class RoundReport:
    claimed: int = 0
    api_calls: int = 0
    finished: list[tuple[str, str]] = field(default_factory=list)
    errors: int = 0


async def observe(
    client: AsyncDatasetsClient | Sequence[AsyncDatasetsClient],
    due: list[DueJob],
    *,
    concurrency: int,
    group_threshold: int,
) -> tuple[dict[str, Observation], int]:
    """Observe each due job's remote task; returns observations by job id and the number of API calls made.

    With several clients, calls go to them in turn.
    """
    clients = [client] if isinstance(client, AsyncDatasetsClient) else list(client)
    turn = itertools.cycle(clients)
    semaphore = asyncio.Semaphore(concurrency)
    calls = 0
    observations: dict[str, Observation] = {}
    by_dataset: dict[str, list[DueJob]] = defaultdict(list)
    for job in due:
        by_dataset[job.dataset_id].append(job)

    async def fetch_one(job: DueJob) -> None:
        nonlocal calls
        async with semaphore:
            calls += 1
            try:
                task = await next(turn).fetch_task(job.dataset_id, job.remote_task_id)
            except ApiError as exc:
                observations[job.job_id] = Observation(error=exc)
            else:
                observations[job.job_id] = Observation(task=task)

    async def list_dataset(dataset_id: str, jobs: list[DueJob]) -> None:
        nonlocal calls
        wanted = {job.remote_task_id: job for job in jobs}
        found: dict[str, DatasetImportTask] = {}
        # Newest tasks come first in practice, but nothing promises it: read a bounded number of pages, then
        # fall back to fetch_task for whatever was not seen.
        max_pages = math.ceil(len(jobs) / LIST_PAGE_SIZE) + 1
        for page_number in range(1, max_pages + 1):
            async with semaphore:
                calls += 1
                try:
                    page = await next(turn).list_tasks(dataset_id, page=page_number, page_size=LIST_PAGE_SIZE)
                except ApiError as exc:
                    log.info("list_tasks failed for dataset %s (%s); falling back to fetch_task", dataset_id, exc)
                    break
            for task in page.results or []:
                if task.id in wanted:
                    found[task.id] = task
            # The contract leaves the shape of `next` open; `count` is the total, so it tells when pages run out.
            if len(found) == len(wanted) or page_number * LIST_PAGE_SIZE >= page.count or not page.results:
                break
        for task_id, task in found.items():
            observations[wanted[task_id].job_id] = Observation(task=task)
        await asyncio.gather(*(fetch_one(job) for tid, job in wanted.items() if tid not in found))

    work = []
    for dataset_id, jobs in by_dataset.items():
        if len(jobs) >= group_threshold:
            work.append(list_dataset(dataset_id, jobs))
        else:
            work.extend(fetch_one(job) for job in jobs)
    await asyncio.gather(*work)
    return observations, calls


def claim(runtime: Runtime, *, owner: str, now: datetime) -> list[DueJob]:
    with runtime.session_factory() as session:
        jobs = claim_due_jobs(
            session,
            owner=owner,
            now=now,
            lease_s=runtime.tuning.lease_s,
            limit=runtime.tuning.poll_batch_size,
        )
        due = [DueJob(j.id, j.dataset_id, j.remote_task_id) for j in jobs if j.remote_task_id]
        session.commit()
    return due


def write_back(
    runtime: Runtime,
    observations: dict[str, Observation],
    *,
    owner: str,
    now: datetime,
    rng: random.Random,
) -> list[tuple[str, str]]:
    """Apply every observation in one transaction; returns (job id, status) of the jobs that ended."""
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
    with runtime.session_factory() as session:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock) keeps the rows as read
        # until commit, so the whole batch can be written at once.
        query = select(ImportJob).where(ImportJob.id.in_(list(observations))).with_for_update()
        applied_to: list[ImportJob] = []
        for job in session.scalars(query).all():
            # A job cancelled (or re-claimed after our lease ran out) while we were away is no longer ours.
            if job.status != JobStatus.RUNNING or job.lease_owner != owner:
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


class PollClients:
    """API clients opened when a round first has work, on the event loop that runs the rounds."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._stack = contextlib.AsyncExitStack()
        self._clients: list[AsyncDatasetsClient] = []

    async def get(self) -> list[AsyncDatasetsClient]:
        if not self._clients:
            count = max(1, math.ceil(self._runtime.tuning.poll_concurrency / REQUESTS_PER_CLIENT))
            for _ in range(count):
                self._clients.append(await self._stack.enter_async_context(self._runtime.async_client_factory()))
        return self._clients

    async def aclose(self) -> None:
        self._clients = []
        await self._stack.aclose()


async def poll_round(
    runtime: Runtime,
    *,
    owner: str,
    now: Callable[[], datetime],
    rng: random.Random,
    clients: PollClients | None = None,
) -> RoundReport:
    """Claim, observe and write back one batch of due jobs."""
    report = RoundReport()
    due = claim(runtime, owner=owner, now=now())
    report.claimed = len(due)
    if not due:
        return report
    own = clients is None
    opened = clients or PollClients(runtime)
    try:
        observations, report.api_calls = await observe(
            await opened.get(),
            due,
            concurrency=runtime.tuning.poll_concurrency,
            group_threshold=runtime.tuning.poll_group_threshold,
        )
    finally:
        if own:
            await opened.aclose()
    report.errors = sum(1 for o in observations.values() if o.error is not None)
    report.finished = write_back(runtime, observations, owner=owner, now=now(), rng=rng)
    return report
