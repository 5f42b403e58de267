"""The API misbehaving under a running service: every job ends as it should, and calls stay within a bound.

Each import route gets a fault of its own, so one run covers them all at once:

- ``import_from_explorer``: a burst of 503s. The submit is retried with backoff.
- ``import_from_file``: 429 with ``Retry-After: 2``. Retried, never sooner than the server asked.
- ``import_from_playground``: the connection is reset before the server acts. The outcome is unknown; recovery
  finds no task and sends the job again.
- ``import_from_campaign``: the connection is reset after the task started. Recovery adopts the task.
- ``import_from_dataset``: the answer comes 2 s late, past the client's 1 s timeout. Recovery adopts the task.
- ``fetch_task``: 503 on six calls; ``list_tasks``: a reset on three (polls and adoption lookups). Reads are
  retried by the client.

A second test leaves remote tasks in ``UNKNOWN`` for good (they end EXPIRED at the job deadline) and deletes two of
them (their jobs end LOST after one 404). The bound on calls is computed from the settings (see
:func:`call_bound`), and the emulator's request counters must stay under it: no retry storm.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from jobs.orphan_scan import ADOPTION_MAX_PAGES, LIST_PAGE_SIZE
from jobs.poll_forecast import SOONEST_FRACTION
from store.jobs import get_job, job_events
from store.models import ImportJob, ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs, wait_for_poll_ticks
from tests.integration.test_import_kinds import MAPPING, TRACE, seed_world
from worker.settings import Settings

from .harness import FAST_RECOVERY_ENV, count, shared_redis_url, wait_until

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

API_TIMEOUT_S = 1.0
RETRY_AFTER_S = 2.0
JOBS_PER_KIND = 3
READ_ROUTES = ("fetch_task", "list_tasks")
IMPORT_ROUTES = tuple(f"import_from_{kind}" for kind in ImportKind)
SUBMIT_FAULTS: dict[str, dict[str, Any]] = {
    "import_from_explorer": {"status": 503, "next": 5},
    "import_from_file": {"status": 429, "next": 3, "retry_after_s": RETRY_AFTER_S},
    "import_from_playground": {"kind": "reset", "next": 2},
    "import_from_campaign": {"kind": "reset", "next": 2, "phase": "after"},
    "import_from_dataset": {"kind": "slow", "delay_ms": 2000, "next": 2, "phase": "after"},
    # A gateway error after the API acted: ambiguous, so adopted, never sent again.
    "import_from_spans": {"status": 502, "next": 2, "phase": "after"},
}
READ_FAULTS: dict[str, dict[str, Any]] = {
    "fetch_task": {"status": 503, "next": 6},
    "list_tasks": {"kind": "reset", "next": 3},
}


@pytest.fixture
def broker_redis_url() -> str:
    return shared_redis_url(12)


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {**service_overrides, **FAST_RECOVERY_ENV, "DSIMPORT_API_TIMEOUT_S": str(API_TIMEOUT_S)}


@dataclass(frozen=True)
class Calls:
    posts: int
    post_bound: int
    reads: int
    read_bound: int

    def line(self) -> str:
        return f"POSTs {self.posts} (bound {self.post_bound}), reads {self.reads} (bound {self.read_bound})"


def polls_allowed(settings: Settings, job: ImportJob, now: datetime) -> int:
    """The most observations the poll schedule allows for ``job``: one per shortest interval while it runs.

    The shortest is the backoff's first step less its jitter, or a forecast end expected any moment
    (:data:`jobs.poll_forecast.SOONEST_FRACTION` of the initial interval), whichever is shorter.
    """
    if job.submitted_at is None:
        return 0
    initial_s = settings.poll_initial_interval_s
    shortest_s = min(initial_s * (1 - settings.poll_jitter_ratio), initial_s * SOONEST_FRACTION)
    running_s = ((job.finished_at or now) - job.submitted_at).total_seconds()
    return math.floor(running_s / shortest_s) + 2


def call_bound(settings: Settings, jobs: list[ImportJob], stats: dict[str, Any]) -> Calls:
    """The most API calls the settings allow for these jobs, next to the calls the emulator counted.

    - POSTs: one per submit attempt, at most ``submit_max_retries + 1`` attempts per job.
    - Reads: each observation the schedule allows (:func:`polls_allowed`) is one ``fetch_task``, or a share of a
      ``list_tasks`` page that serves at least ``poll_group_threshold`` jobs; each interrupted submit resolved by
      recovery reads at most every page of its dataset's task list, once more if its first lookup failed. The
      client tries each read at most ``api_max_attempts`` times.
    """
    now = datetime.now(UTC)
    observations = sum(polls_allowed(settings, job, now) for job in jobs)
    resolved = sum(1 for job in jobs for event in job.events if _resolved_by_recovery(event.message))
    most_tasks = max(stats["tasks_created"].values(), default=0)
    pages = min(ADOPTION_MAX_PAGES, max(1, math.ceil(most_tasks / LIST_PAGE_SIZE)))
    calls = observations * (1 + 1 / settings.poll_group_threshold) + 2 * pages * resolved
    requests: dict[str, int] = stats["requests"]
    return Calls(
        posts=sum(requests.get(route, 0) for route in IMPORT_ROUTES),
        post_bound=len(jobs) * (settings.submit_max_retries + 1),
        reads=sum(requests.get(route, 0) for route in READ_ROUTES),
        read_bound=math.ceil(settings.api_max_attempts * calls),
    )


def _resolved_by_recovery(message: str | None) -> bool:
    return (message or "").startswith(("adopted", "no remote task", "gave up after", "submit outcome unknown"))


def _adopted(job: ImportJob) -> bool:
    return any((event.message or "").startswith("adopted") for event in job.events)


def load_jobs(requester: Requester, job_ids: list[str]) -> list[ImportJob]:
    with requester.sessions() as session:
        query = select(ImportJob).where(ImportJob.id.in_(job_ids)).options(selectinload(ImportJob.events))
        jobs = list(session.scalars(query))
        session.expunge_all()
    return jobs


def test_submit_and_poll_faults_end_every_job_with_one_remote_import(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    requester: Requester,
    settings: Settings,
) -> None:
    world = seed_world(emulator, api)
    source_records = [record.id for record in api.iter_records(world["source"])]
    params = {
        ImportKind.CAMPAIGN: {"campaign_id": world["campaign"]},
        ImportKind.EXPLORER: {"completion_event_ids": ["evt-0", "evt-1"]},
        ImportKind.FILE: {"file_id": world["file_id"]},
        ImportKind.PLAYGROUND: {"conversation_ids": ["conv_1"]},
        ImportKind.DATASET: {"dataset_record_ids": source_records},
        ImportKind.SPANS: {
            "span_references": [{"trace_id": TRACE, "span_id": "span-1"}, {"trace_id": TRACE, "span_id": "span-2"}],
            "mapping_contract": MAPPING,
        },
    }
    # Interrupted submits of different imports on one dataset cannot be told apart (tests/reliability/
    # test_adoption_groups.py): each kind with an ambiguous fault (a 5xx, a reset after acting, a slow answer) gets
    # a dataset of its own; the retried kind (429) shares with one of them.
    shared = api.create_dataset("file and campaign", "d").id
    targets = {
        ImportKind.EXPLORER: api.create_dataset("explorer", "d").id,
        ImportKind.FILE: shared,
        ImportKind.CAMPAIGN: shared,
        ImportKind.PLAYGROUND: api.create_dataset("playground", "d").id,
        ImportKind.DATASET: api.create_dataset("dataset", "d").id,
        ImportKind.SPANS: api.create_dataset("spans", "d").id,
    }
    emulator.configure(task_duration_s=[1.0, 2.0], faults={**SUBMIT_FAULTS, **READ_FAULTS})
    emulator.reset_stats()
    processes.start_worker(concurrency=2)
    processes.start_beat()

    started = time.monotonic()
    job_ids = {
        requester.request(kind, targets[kind], params[kind]): kind for _ in range(JOBS_PER_KIND) for kind in ImportKind
    }
    wait_for_jobs(requester.sessions, job_ids, timeout_s=90, on_timeout=processes.logs)
    wall_s = time.monotonic() - started
    settled = emulator.stats(include_tasks=False)["requests"]
    # Poll ticks go on for 2 s after the last job ended: nothing finished is called about again.
    wait_for_poll_ticks(settings.broker_url, after=time.time(), spread_s=2.0, on_timeout=processes.logs)

    stats = emulator.stats()
    jobs = load_jobs(requester, list(job_ids))
    figures = count({job.id: job for job in jobs}, stats, requested=len(job_ids))
    calls = call_bound(settings, jobs, stats)
    print(f"API faults: {wall_s:.1f}s {figures.line()}; {calls.line()}; responses={stats['responses']}")
    assert figures.by_status == {"COMPLETED": len(job_ids)}, (figures.line(), processes.logs())
    assert figures.lost == 0 and figures.doubled == 0 and figures.mislabelled == 0, figures.line()

    # Every fault fired as configured (the `next` budgets are used up) and was answered as a fault.
    responses = stats["responses"]
    assert responses["import_from_explorer"]["503"] == 5
    assert responses["import_from_file"]["429"] == 3
    assert responses["import_from_playground"]["reset"] == 2
    assert responses["import_from_campaign"]["reset"] == 2
    assert responses["import_from_spans"]["502"] == 2
    assert responses["fetch_task"]["503"] == 6 and responses["list_tasks"]["reset"] == 3

    # One POST per submit attempt, and within the bounds; no job polled more often than its schedule allows, and
    # nothing called once every job had ended.
    assert calls.posts == sum(job.attempts for job in jobs), calls.line()
    assert calls.posts <= calls.post_bound and calls.reads <= calls.read_bound, calls.line()
    now = datetime.now(UTC)
    assert all(job.poll_count <= polls_allowed(settings, job, now) for job in jobs)
    assert stats["requests"] == settled, "calls after every job had ended"
    by_kind = {kind: [job for job in jobs if job_ids[job.id] is kind] for kind in ImportKind}
    # The ambiguous submits whose task had started were adopted, never sent again.
    adopted_kinds = (ImportKind.CAMPAIGN, ImportKind.DATASET, ImportKind.SPANS)
    for kind in adopted_kinds:
        assert sum(_adopted(job) for job in by_kind[kind]) == 2, kind
    assert sum(job.attempts for kind in adopted_kinds for job in by_kind[kind]) == len(adopted_kinds) * JOBS_PER_KIND
    # Where nothing had started, the job was sent again: one extra attempt per reset.
    assert sum(job.attempts for job in by_kind[ImportKind.PLAYGROUND]) == JOBS_PER_KIND + 2
    # A 429 is retried no sooner than its Retry-After.
    for job in by_kind[ImportKind.FILE]:
        events = sorted(job.events, key=lambda event: event.at)
        for refused, retried in itertools.pairwise(events):
            if refused.new_status is JobStatus.PENDING and "429" in (refused.message or ""):
                assert retried.new_status is JobStatus.SUBMITTING
                assert (retried.at - refused.at).total_seconds() >= RETRY_AFTER_S - 0.05


def test_unknown_forever_expires_at_the_deadline_and_a_vanished_task_is_lost_after_one_404(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    settings: Settings,
    ledger: Any,
) -> None:
    # Nothing is sent past a deadline: long enough for ten submits on a loaded machine.
    deadline_s = 12.0
    processes.env["DSIMPORT_JOB_DEADLINE_S"] = str(deadline_s)
    processes.env["DSIMPORT_STUCK_REMOTE_STATUS_S"] = "2"
    settings = settings.model_copy(update={"job_deadline_s": deadline_s, "stuck_remote_status_s": 2.0})
    requester = Requester(settings, ledger)
    events = [f"evt-{n}" for n in range(10)]
    emulator.seed(explorer_events(events))
    emulator.configure(status_sequence=["RUNNING", "UNKNOWN"], terminal_status="UNKNOWN", task_duration_s=1.0)
    # Two datasets polled with list_tasks (four jobs each), one with fetch_task (two jobs).
    targets = [api.create_dataset(f"target {n}", "d").id for n in range(3)]
    placement = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    processes.start_worker(concurrency=2)
    processes.start_beat()
    processes.wait_until_consuming()
    try:
        started = time.monotonic()
        job_ids = [
            requester.request(ImportKind.EXPLORER, targets[where], {"completion_event_ids": [event]})
            for where, event in zip(placement, events, strict=True)
        ]

        def remote_ids() -> dict[str, str | None]:
            with requester.sessions() as session:
                return {j: getattr(get_job(session, j), "remote_task_id", None) for j in job_ids}

        def submit_state() -> str:
            with requester.sessions() as session:
                jobs = [get_job(session, j) for j in job_ids]
                states = [
                    (job.id, [(str(e.at), str(e.new_status), e.message) for e in job_events(session, job.id)])
                    for job in jobs
                    if job is not None and not job.remote_task_id
                ]
            return f"jobs without a remote task: {states}\n{processes.logs()}"

        wait_until(lambda: None not in remote_ids().values(), timeout_s=60, what="every submit", logs=submit_state)
        vanished = [job_ids[0], job_ids[8]]  # one of a list_tasks group, one polled alone
        for job_id in vanished:
            task_id = remote_ids()[job_id]
            assert task_id is not None
            emulator.delete_task(task_id)
        finished = wait_for_jobs(requester.sessions, job_ids, timeout_s=60, on_timeout=processes.logs)
        wall_s = time.monotonic() - started
        settled = emulator.stats(include_tasks=False)["requests"]
        # Poll ticks go on for 2 s after the last job ended: a finished job is never polled again.
        wait_for_poll_ticks(settings.broker_url, after=time.time(), spread_s=2.0, on_timeout=processes.logs)
        after = emulator.stats()
    finally:
        requester.close()

    assert {j: finished[j].status for j in vanished} == dict.fromkeys(vanished, JobStatus.LOST)
    expired = [finished[j] for j in job_ids if j not in vanished]
    assert {job.status for job in expired} == {JobStatus.EXPIRED}
    assert all(job.message == "still UNKNOWN at deadline" for job in expired)
    assert all((job.last_error or "").startswith("remote status UNKNOWN for") for job in expired)
    for job in expired:
        assert job.finished_at is not None and job.deadline_at is not None
        assert job.finished_at - job.deadline_at < timedelta(seconds=3)
    with requester.sessions() as session:
        lost_messages = [
            event.message or ""
            for job_id in vanished
            for event in job_events(session, job_id)
            if event.new_status is JobStatus.LOST
        ]
    assert all("not found" in message for message in lost_messages) and len(lost_messages) == 2
    # A 404 is an answer, not a failure: it is not retried, so each vanished task was fetched exactly once more.
    assert after["responses"]["fetch_task"].get("404", 0) == 2

    jobs = load_jobs(requester, job_ids)
    figures = count({job.id: job for job in jobs}, after, requested=len(job_ids))
    calls = call_bound(settings, jobs, after)
    print(f"UNKNOWN forever / 404: {wall_s:.1f}s {figures.line()}; {calls.line()}")
    assert figures.lost == 0 and figures.doubled == 0, figures.line()
    assert calls.posts == len(job_ids) and calls.reads <= calls.read_bound, calls.line()
    now = datetime.now(UTC)
    assert all(job.poll_count <= polls_allowed(settings, job, now) for job in jobs)
    assert {route: after["requests"].get(route, 0) for route in READ_ROUTES} == {
        route: settled.get(route, 0) for route in READ_ROUTES
    }, "finished jobs were still polled"
