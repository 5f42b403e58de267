"""Poll rounds against the lease: a hanging request, two pollers, a poller that lost its claim.

A round claims jobs for ``lease_s``; after that another poller may claim them, and a write-back checks that the
jobs are still leased to the round that observed them. These tests run the real poller (claim, observe over a
socket, write-back) against the emulator with real time where the lease matters, on both ledgers.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from emulator.testing import EmulatorServer
from jobs import metrics
from jobs import poll_round as polling
from jobs.poll_backoff import PollPolicy
from jobs.poll_loop import close_poll_loop, run_poll_rounds
from jobs.runtime import JobTuning, Runtime
from jobs.transitions import Observation
from store.jobs import create_job
from store.models import ImportJob, ImportKind, JobStatus
from store.state_machine import apply_transition
from tests.fixtures.direct_runtime import POLL_POLICY, direct_runtime
from tests.fixtures.emulators import frozen_emulator_options

T0 = datetime(2026, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    seed = {"events": [{"event_id": "evt", "request_messages": [{"role": "user", "content": "q"}]}]}
    return frozen_emulator_options(T0, task_duration_s=10, seed=seed)


def make_runtime(
    emulator: EmulatorServer, session_factory: sessionmaker[Session], *, policy: PollPolicy = POLL_POLICY, **tuning: Any
) -> Runtime:
    # Every job is polled with its own fetch_task, so a request can hang for one job only.
    return direct_runtime(emulator, session_factory, JobTuning(poll_group_threshold=10_000, **tuning), policy=policy)


def running_jobs(runtime: Runtime, count: int) -> list[str]:
    """``count`` jobs on one dataset whose imports the API started at T0: RUNNING, first due at T0 + 1 s.

    The imports are started over the socket all at once and the jobs written as a submit writes them; how a
    submit gets there is not what these tests are about.
    """

    async def start_imports() -> tuple[str, list[str]]:
        async with runtime.async_client_factory() as client:
            dataset_id = (await client.create_dataset("target", "d")).id
            params = {"completion_event_ids": ["evt"]}
            tasks = await asyncio.gather(
                *(client.start_import(dataset_id, ImportKind.EXPLORER, params) for _ in range(count))
            )
            return dataset_id, [task.id for task in tasks]

    dataset_id, task_ids = asyncio.run(start_imports())
    job_ids = []
    with runtime.session_factory() as session:
        for task_id in task_ids:
            job, _ = create_job(
                session,
                kind=ImportKind.EXPLORER,
                dataset_id=dataset_id,
                params={"completion_event_ids": ["evt"]},
                idempotency_key=f"k-{task_id}",
                origin="test",
                deadline_at=T0 + timedelta(days=1),
                now=T0,
            )
            apply_transition(job, JobStatus.SUBMITTING, now=T0)
            job.remote_task_id, job.remote_status, job.progress, job.submitted_at = task_id, "RUNNING", 0, T0
            job.next_poll_at = T0 + timedelta(seconds=POLL_POLICY.initial_interval_s)
            job.poll_interval_s = POLL_POLICY.initial_interval_s
            apply_transition(job, JobStatus.RUNNING, now=T0, message=f"remote task {task_id}")
            job_ids.append(job.id)
        session.commit()
    return job_ids


def jobs(runtime: Runtime, job_ids: list[str]) -> dict[str, ImportJob]:
    with runtime.session_factory() as session:
        found = session.scalars(select(ImportJob).where(ImportJob.id.in_(job_ids))).all()
        session.expunge_all()
        return {job.id: job for job in found}


def real_time_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and runs at real speed (leases are measured against it)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def observe(runtime: Runtime, due: list[polling.DueJob]) -> dict[str, Observation]:
    async def run() -> dict[str, Observation]:
        async with runtime.async_client_factory() as client:
            observations, _ = await polling.observe(client, due, concurrency=4, group_threshold=10_000)
            return observations

    return asyncio.run(run())


def test_a_request_hanging_longer_than_the_lease_holds_back_no_other_result(
    emulator: EmulatorServer, session_factory: sessionmaker[Session]
) -> None:
    lease_s = 3.0
    # Observed jobs that go on running are next due long after the test.
    slow_polls = PollPolicy(initial_interval_s=60.0, multiplier=2.0, max_interval_s=120.0, jitter_ratio=0.0)
    runtime = make_runtime(emulator, session_factory, policy=slow_polls, lease_s=lease_s)
    finishing = running_jobs(runtime, 4)  # 10 s imports: done when polled
    emulator.configure(task_duration_s=1000)
    going_on = running_jobs(runtime, 4)  # still running when polled
    emulator.advance_clock(11)
    # One of the eight fetch_task requests is answered only after longer than the lease.
    emulator.configure(faults={"fetch_task": {"kind": "slow", "delay_ms": 4000, "next": 1}})
    now = real_time_from(T0 + timedelta(seconds=2))

    result: dict[str, Any] = {}

    def poller_a() -> None:
        started = time.monotonic()
        result["report"] = run_poll_rounds(runtime, owner="a", now=now)
        result["took_s"] = time.monotonic() - started

    thread = threading.Thread(target=poller_a)
    thread.start()
    # Once A's lease has run out, another poller may claim whatever A still holds, as a second worker's tick does.
    time.sleep(lease_s + 0.2)
    taken_over = polling.claim(runtime, owner="b", now=now())
    thread.join(timeout=30)
    close_poll_loop()

    report: polling.RoundReport = result["report"]
    assert result["took_s"] < lease_s
    assert report.claimed == 8 and report.released == 1
    after = jobs(runtime, finishing + going_on)
    [hung] = [job for job in after.values() if job.poll_count == 0]
    assert hung.status is JobStatus.RUNNING and hung.lease_owner == "b"  # released by A, then taken over
    # Every other job's result is recorded, the finished ones' included.
    assert sorted(report.finished) == sorted((job_id, "COMPLETED") for job_id in finishing if job_id != hung.id)
    for job in after.values():
        if job.id in finishing and job.id != hung.id:
            assert job.status is JobStatus.COMPLETED and job.poll_count == 1
        elif job.id != hung.id:
            assert job.status is JobStatus.RUNNING and job.poll_count == 1
            assert job.progress is not None and job.progress > 0 and job.lease_owner is None
    # Only the job A could not observe was free to take over, and it is polled as usual.
    assert [due.job_id for due in taken_over] == [hung.id]
    polling.write_back(runtime, observe(runtime, taken_over), owner="b", now=now(), rng=random.Random(1))
    assert jobs(runtime, [hung.id])[hung.id].poll_count == 1


def test_two_pollers_with_a_short_lease_make_progress_when_a_round_takes_longer_than_the_lease(
    emulator: EmulatorServer, session_factory: sessionmaker[Session]
) -> None:
    # 96 jobs, 4 requests at a time, 0.25 s each: polling them all takes 6 s, three times the 2 s lease. A poller
    # that writes at the end of such a round always finds its batch taken over by the other meanwhile.
    lease_s = 2.0
    runtime = make_runtime(emulator, session_factory, lease_s=lease_s, poll_concurrency=4)
    job_ids = running_jobs(runtime, 96)
    emulator.advance_clock(11)
    emulator.configure(route_latency_ms={"fetch_task": 250})
    now = real_time_from(T0 + timedelta(seconds=2))
    written: dict[str, list[int]] = {"a": [], "b": []}
    stop = threading.Event()

    def poller(owner: str) -> None:
        while not stop.is_set():
            report = run_poll_rounds(runtime, owner=owner, now=now)
            if report.claimed:
                written[owner].append(len(report.finished))
            stop.wait(0.05)

    threads = [threading.Thread(target=poller, args=(owner,)) for owner in written]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    statuses: set[JobStatus] = set()
    try:
        # Both pollers keep running until every job is recorded: judged while they still compete.
        while time.monotonic() - started < 25 and statuses != {JobStatus.COMPLETED}:
            time.sleep(0.2)
            statuses = {job.status for job in jobs(runtime, job_ids).values()}
        took_s = time.monotonic() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        close_poll_loop()

    print(f"two pollers, lease {lease_s} s: all recorded after {took_s:.1f} s; jobs written per round {written}")
    assert statuses == {JobStatus.COMPLETED}, written
    assert sum(map(sum, written.values())) == 96, written


def test_a_late_write_back_from_a_poller_that_lost_its_lease_is_dropped(
    emulator: EmulatorServer, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    conflicts: list[tuple[str, int]] = []
    monkeypatch.setattr(metrics, "record_lease_conflicts", lambda where, count=1: conflicts.append((where, count)))
    lease_s = 30.0
    runtime = make_runtime(emulator, session_factory, lease_s=lease_s)
    emulator.configure(task_duration_s=100)
    [job_id] = running_jobs(runtime, 1)
    claimed_at = T0 + timedelta(seconds=2)

    # Poller A claims the job and observes it at 10 % ... then stalls past its lease.
    emulator.advance_clock(10)
    seen_by_a = observe(runtime, polling.claim(runtime, owner="a", now=claimed_at))
    # Poller B claims it once A's lease has run out, observes it at 50 % and writes that back.
    emulator.advance_clock(40)
    after_lease = claimed_at + timedelta(seconds=lease_s + 1)
    due_b = polling.claim(runtime, owner="b", now=after_lease)
    assert [due.job_id for due in due_b] == [job_id]
    assert polling.write_back(runtime, observe(runtime, due_b), owner="b", now=after_lease, rng=random.Random(1)) == []
    assert jobs(runtime, [job_id])[job_id].progress == 50
    assert sum(count for _, count in conflicts) == 0

    # A's answer arrives at last: older than what B recorded, it must not replace it.
    polling.write_back(runtime, seen_by_a, owner="a", now=after_lease + timedelta(seconds=1), rng=random.Random(1))
    assert [(where, count) for where, count in conflicts if count] == [("poll_writeback", 1)]  # counted for /metrics

    job = jobs(runtime, [job_id])[job_id]
    assert job.progress == 50 and job.poll_count == 1
    assert job.next_poll_at == after_lease + timedelta(seconds=POLL_POLICY.initial_interval_s)


def test_a_dataset_listed_by_one_round_is_not_listed_again_by_the_next_round_of_the_same_call(
    emulator: EmulatorServer, session_factory: sessionmaker[Session]
) -> None:
    runtime = make_runtime(emulator, session_factory)
    job_ids = running_jobs(runtime, 6)
    rows = jobs(runtime, job_ids)
    due = [polling.DueJob(job_id, rows[job_id].dataset_id, rows[job_id].remote_task_id or "") for job_id in job_ids]
    now = {"s": 0.0}
    listings = polling.Listings(max_age_s=1.0, clock=lambda: now["s"])
    listed_at = T0 + timedelta(seconds=2)

    def round_of(batch: list[polling.DueJob]) -> polling.Observed:
        observed = polling.Observed(clock=lambda: listed_at)

        async def run() -> None:
            async with runtime.async_client_factory() as client:
                await polling.observe(client, batch, concurrency=4, group_threshold=3, into=observed, listings=listings)

        asyncio.run(run())
        return observed

    first = round_of(due[:3])
    assert first.calls == 1 and set(first.by_job) == set(job_ids[:3])
    # The next round of the same call, 0.5 s later: the list it needs was read a moment ago.
    now["s"] = 0.5
    second = round_of(due[3:])
    assert second.calls == 0 and set(second.by_job) == set(job_ids[3:])
    assert all(o.task is not None and o.task.status == "RUNNING" and o.at == listed_at for o in second.by_job.values())
    # Once older than its age limit, the list is read again.
    now["s"] = 1.6
    assert round_of(due[3:]).calls == 1
