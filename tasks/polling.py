"""The batch poller: one round claims due jobs, observes their remote tasks concurrently, writes once.

No job is waited on by a sleeping task: a job waiting for its remote task is only a row with ``next_poll_at``. A
periodic task runs rounds; each round claims due RUNNING jobs under a lease (so several workers never poll the same
job at once), observes them with one async client and a bound on concurrency, and writes every change in one
transaction. When several due jobs share a dataset, pages of ``list_tasks`` replace their ``fetch_task`` calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from api_client import ApiError, AsyncDatasetsClient, DatasetImportTask
from store.jobs import claim_due_jobs
from store.models import ImportJob, JobStatus

from .outcomes import Observation, apply_observation
from .runtime import Runtime

log = logging.getLogger(__name__)

# The largest page the API is known to accept; fewer, fuller pages mean fewer calls.
LIST_PAGE_SIZE = 100


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
    client: AsyncDatasetsClient, due: list[DueJob], *, concurrency: int, group_threshold: int
) -> tuple[dict[str, Observation], int]:
    """Observe each due job's remote task; returns observations by job id and the number of API calls made."""
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
                task = await client.fetch_task(job.dataset_id, job.remote_task_id)
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
                    page = await client.list_tasks(dataset_id, page=page_number, page_size=LIST_PAGE_SIZE)
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
    finished: list[tuple[str, str]] = []
    if not observations:
        return finished
    with runtime.session_factory() as session:
        jobs = session.scalars(select(ImportJob).where(ImportJob.id.in_(list(observations)))).all()
        for job in jobs:
            # A job cancelled (or re-claimed after our lease ran out) while we were away is no longer ours.
            if job.status != JobStatus.RUNNING or job.lease_owner != owner:
                continue
            try:
                # One savepoint per job: a row changed under us fails alone, not the whole batch.
                with session.begin_nested():
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
            if applied.finished and applied.status is not None:
                finished.append((job.id, str(applied.status)))
        session.commit()
    return finished


async def poll_round(runtime: Runtime, *, owner: str, now: Callable[[], datetime], rng: random.Random) -> RoundReport:
    """Claim, observe and write back one batch of due jobs."""
    report = RoundReport()
    due = claim(runtime, owner=owner, now=now())
    report.claimed = len(due)
    if not due:
        return report
    async with runtime.async_client_factory() as client:
        observations, report.api_calls = await observe(
            client,
            due,
            concurrency=runtime.tuning.poll_concurrency,
            group_threshold=runtime.tuning.poll_group_threshold,
        )
    report.errors = sum(1 for o in observations.values() if o.error is not None)
    report.finished = write_back(runtime, observations, owner=owner, now=now(), rng=rng)
    return report


def run_poll_rounds(
    runtime: Runtime,
    *,
    owner: str,
    now: Callable[[], datetime],
    rng: random.Random | None = None,
    on_finished: Callable[[list[tuple[str, str]]], None] | None = None,
) -> RoundReport:
    """Run rounds while full batches keep coming, within the round budget; returns the totals."""
    rng = rng or random.Random()
    total = RoundReport()
    started = time.monotonic()
    while True:
        report = asyncio.run(poll_round(runtime, owner=owner, now=now, rng=rng))
        total.claimed += report.claimed
        total.api_calls += report.api_calls
        total.errors += report.errors
        total.finished.extend(report.finished)
        if on_finished is not None and report.finished:
            on_finished(report.finished)
        full_batch = report.claimed >= runtime.tuning.poll_batch_size
        if not full_batch or time.monotonic() - started >= runtime.tuning.poll_round_budget_s:
            return total
