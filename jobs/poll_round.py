"""The batch poller: one round claims due jobs, observes their remote tasks concurrently, writes as answers come.

No job is waited on by a sleeping task: a job waiting for its remote task is only a row with ``next_poll_at``. A
periodic task runs rounds; each round claims due RUNNING jobs under a lease (so several workers never poll the same
job at once), observes them with a bound on concurrency, and writes the results back in slices while it goes on
(:mod:`jobs.poll_writeback`). When several due jobs share a dataset, pages of ``list_tasks`` replace their
``fetch_task`` calls.

A round ends at the latest ``ROUND_LEASE_FRACTION`` of the lease after its claim. Requests still outstanding then
are abandoned and their jobs released, to be polled again by the next round: a hanging request (a slow gateway, a
server that never answers) can neither hold back the other jobs' results nor make the round outlive its lease, after
which another poller may claim the batch and every result of this one would be dropped. Each round claims under an
owner of its own, so even two rounds of one process cannot write over each other.

What it costs per job is kept small (``bench/poll_path.py`` and ``bench/inflight.py`` measure it): requests are
spread over several small clients, because an httpx pool scans every one of its connections on each request; a
slice's updates go out as one executemany UPDATE, with one savepoint per job only if a row changed under us; and
:mod:`jobs.poll_loop` keeps the event loop and these clients from one poll call to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from api_client import ApiError, AsyncDatasetsClient, DatasetImportTask
from jobs import metrics
from jobs.poll_writeback import SliceWriter, write_back
from jobs.runtime import Runtime
from jobs.transitions import Observation
from store.jobs import claim_due_jobs, release_poll_claims

__all__ = [
    "ROUND_LEASE_FRACTION",
    "DueJob",
    "Listings",
    "Observed",
    "PollClients",
    "RoundReport",
    "claim",
    "observe",
    "poll_round",
    "release",
    "write_back",
]

log = logging.getLogger(__name__)

# The largest page the API is known to accept; fewer, fuller pages mean fewer calls.
LIST_PAGE_SIZE = 100
# Requests in flight per API client. httpcore walks all of a pool's connections on every request, so one client
# with many connections spends more time choosing a connection than sending; several small ones do not.
REQUESTS_PER_CLIENT = 8
# A round ends by this share of the lease after its claim: what it learned is written while the claims hold, and
# the half left covers the last write and the release of the jobs it could not observe in time.
ROUND_LEASE_FRACTION = 0.5
# Results wait at most this share of the lease before they are written.
WRITE_INTERVAL_LEASE_FRACTION = 0.1
# How long a dataset's task list read by one round of a poll call answers for the later rounds of the same call.
LIST_REUSE_S = 1.0


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
    # Jobs whose request was still outstanding at the round's end: released, to be polled again next round.
    released: int = 0


@dataclass
class Observed:
    """What a round has learned so far: observations by job id (each also handed to ``sink``) and API calls made.

    Filled while the round goes on, so that a round cut short still has everything that did arrive. With a
    ``clock``, each observation is stamped with when it arrived (the poll forecast dates progress by it).
    """

    by_job: dict[str, Observation] = field(default_factory=dict)
    calls: int = 0
    sink: Callable[[str, Observation], None] | None = None
    clock: Callable[[], datetime] | None = None

    def add(self, job_id: str, observation: Observation) -> None:
        if self.clock is not None and observation.at is None:
            observation = dataclasses.replace(observation, at=self.clock())
        self.by_job[job_id] = observation
        if self.sink is not None:
            self.sink(job_id, observation)


@dataclass
class Listings:
    """The task lists read during one poll call, by dataset, for its later rounds to reuse while fresh.

    A call runs several rounds when more jobs are due than one batch holds; the due jobs of a dataset are then
    spread over those rounds, and without this each round would list the dataset again, a fraction of a second
    after the last (100 datasets x 100 imports: five lists per dataset per tick instead of one). An observation taken
    from a kept list is dated when the list was read, so the forecast and the lag see its true age.
    """

    max_age_s: float = LIST_REUSE_S
    clock: Callable[[], float] = time.monotonic
    _lists: dict[str, tuple[float, datetime | None, dict[str, DatasetImportTask]]] = field(default_factory=dict)

    def get(self, dataset_id: str) -> tuple[datetime | None, dict[str, DatasetImportTask]] | None:
        kept = self._lists.get(dataset_id)
        if kept is None or self.clock() - kept[0] > self.max_age_s:
            return None
        return kept[1], kept[2]

    def put(self, dataset_id: str, at: datetime | None, tasks: dict[str, DatasetImportTask]) -> None:
        self._lists[dataset_id] = (self.clock(), at, tasks)


async def observe(
    client: AsyncDatasetsClient | Sequence[AsyncDatasetsClient],
    due: list[DueJob],
    *,
    concurrency: int,
    group_threshold: int,
    into: Observed | None = None,
    listings: Listings | None = None,
) -> tuple[dict[str, Observation], int]:
    """Observe each due job's remote task; returns observations by job id and the number of API calls made.

    With several clients, calls go to them in turn. Each observation is added to ``into`` as soon as it is known.
    ``listings``: task lists read earlier in the same poll call, reused while fresh, and kept for the next rounds.
    """
    clients = [client] if isinstance(client, AsyncDatasetsClient) else list(client)
    turn = itertools.cycle(clients)
    semaphore = asyncio.Semaphore(concurrency)
    observed = into if into is not None else Observed()
    by_dataset: dict[str, list[DueJob]] = defaultdict(list)
    for job in due:
        by_dataset[job.dataset_id].append(job)

    async def fetch_one(job: DueJob) -> None:
        async with semaphore:
            observed.calls += 1
            try:
                task = await next(turn).fetch_task(job.dataset_id, job.remote_task_id)
            except ApiError as exc:
                observed.add(job.job_id, Observation(error=exc))
            else:
                observed.add(job.job_id, Observation(task=task))

    async def from_kept_list(dataset_id: str, jobs: list[DueJob]) -> bool:
        """Observe ``jobs`` from a list this call read a moment ago, if there is one; the rest one by one."""
        kept = listings.get(dataset_id) if listings is not None else None
        if kept is None:
            return False
        at, tasks = kept
        missing = []
        for job in jobs:
            task = tasks.get(job.remote_task_id)
            if task is None:
                missing.append(job)
            else:
                observed.add(job.job_id, Observation(task=task, at=at))
        await asyncio.gather(*(fetch_one(job) for job in missing))
        return True

    async def list_dataset(dataset_id: str, jobs: list[DueJob]) -> None:
        wanted = {job.remote_task_id: job for job in jobs}
        found: set[str] = set()
        seen: dict[str, DatasetImportTask] = {}
        listed_at = observed.clock() if observed.clock is not None else None
        # Newest tasks come first in practice, but nothing promises it: read a bounded number of pages, then
        # fall back to fetch_task for whatever was not seen.
        max_pages = math.ceil(len(jobs) / LIST_PAGE_SIZE) + 1
        for page_number in range(1, max_pages + 1):
            async with semaphore:
                observed.calls += 1
                try:
                    page = await next(turn).list_tasks(dataset_id, page=page_number, page_size=LIST_PAGE_SIZE)
                except ApiError as exc:
                    log.info("list_tasks failed for dataset %s (%s); falling back to fetch_task", dataset_id, exc)
                    break
            for task in page.results or []:
                seen[task.id] = task
                if task.id in wanted and task.id not in found:
                    found.add(task.id)
                    observed.add(wanted[task.id].job_id, Observation(task=task))
            # The contract leaves the shape of `next` open; `count` is the total, so it tells when pages run out.
            if len(found) == len(wanted) or page_number * LIST_PAGE_SIZE >= page.count or not page.results:
                break
        if listings is not None and seen:
            listings.put(dataset_id, listed_at, seen)
        await asyncio.gather(*(fetch_one(job) for tid, job in wanted.items() if tid not in found))

    async def observe_dataset(dataset_id: str, jobs: list[DueJob]) -> None:
        if await from_kept_list(dataset_id, jobs):
            return
        if len(jobs) >= group_threshold:
            await list_dataset(dataset_id, jobs)
        else:
            await asyncio.gather(*(fetch_one(job) for job in jobs))

    await asyncio.gather(*(observe_dataset(dataset_id, jobs) for dataset_id, jobs in by_dataset.items()))
    return observed.by_job, observed.calls


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
    listings: Listings | None = None,
) -> RoundReport:
    """Claim one batch of due jobs, observe them and write the results back as they arrive.

    Returns within ``ROUND_LEASE_FRACTION`` of the lease (plus the last write): jobs not observed by then are
    released, not dropped.
    """
    report = RoundReport()
    lease_s = runtime.tuning.lease_s
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + lease_s * ROUND_LEASE_FRACTION
    # The round's own name on its claims: the write-back's lease check then tells this round from any other,
    # including another round of the same process.
    round_owner = f"{owner}/{secrets.token_hex(4)}"
    due = claim(runtime, owner=round_owner, now=now())
    report.claimed = len(due)
    if not due:
        return report
    writer = SliceWriter(
        runtime, owner=round_owner, now=now, rng=rng, interval_s=lease_s * WRITE_INTERVAL_LEASE_FRACTION
    )
    observed = Observed(sink=writer.add, clock=now)
    own = clients is None
    opened = clients or PollClients(runtime)
    try:
        async with writer.running():
            try:
                async with asyncio.timeout_at(ends_at):
                    await observe(
                        await opened.get(),
                        due,
                        concurrency=runtime.tuning.poll_concurrency,
                        group_threshold=runtime.tuning.poll_group_threshold,
                        into=observed,
                        listings=listings,
                    )
            except TimeoutError:
                log.warning(
                    "poll round: %d of %d jobs still unanswered after %.1f s; released for the next round",
                    len(due) - len(observed.by_job),
                    len(due),
                    lease_s * ROUND_LEASE_FRACTION,
                )
    finally:
        if own:
            await opened.aclose()
    unanswered = [job.job_id for job in due if job.job_id not in observed.by_job]
    if unanswered:
        report.released = await asyncio.to_thread(release, runtime, unanswered, owner=round_owner)
    report.api_calls = observed.calls
    report.errors = sum(1 for o in observed.by_job.values() if o.error is not None)
    report.finished = writer.finished
    return report


def release(runtime: Runtime, job_ids: list[str], *, owner: str) -> int:
    """Give back claimed jobs that were not observed; returns how many were still ours to give back."""
    with runtime.session_factory() as session:
        released = release_poll_claims(session, job_ids, owner=owner)
        session.commit()
    metrics.record_lease_conflicts("poll_release", len(job_ids) - released)
    return released
