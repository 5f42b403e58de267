"""Batched submits (jobs.submit_batch), called directly: a real emulator socket and a real ledger, no broker.

What a batch must keep from one-job submits: one POST per job, every answer recorded under its claim. What it adds:
one dataset's jobs go out in the order of their stamped submit starts, and a chain stops at the first answer that
is not an acceptance, handing the rest back unsent, so that recovery's pairing in order of time stays exact.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import jobs.submit_batch as submit_batch_module
from emulator.testing import EmulatorServer
from jobs.recover import recover
from jobs.runtime import JobTuning, Runtime
from jobs.submit import SubmitOutcome, SubmitResult
from jobs.submit_batch import submit_jobs
from store.models import JobStatus
from tests.fixtures.direct_runtime import direct_runtime, load_job, record_job
from tests.fixtures.emulators import explorer_events

EVENTS = [f"evt-{n}" for n in range(12)]
LEASE = timedelta(seconds=30)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    # A running clock: tasks created one after another have distinct creation times, as on the real API.
    return {"seed": explorer_events(EVENTS), "task_duration_s": 600}


@pytest.fixture
def runtime(emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Runtime:
    tuning = JobTuning(lease_s=LEASE.total_seconds(), submit_max_retries=2, stale_pending_s=60.0)
    return direct_runtime(emulator, session_factory, tuning)


def now() -> datetime:
    return datetime.now(UTC)


def datasets(runtime: Runtime, count: int) -> list[str]:
    with runtime.client_factory() as client:
        return [client.create_dataset(f"target-{n}", "d").id for n in range(count)]


def new_jobs(runtime: Runtime, dataset_id: str, events: list[str]) -> list[str]:
    """One job per event, each importing that event alone (so each request is different)."""
    at = now()
    return [
        record_job(runtime, dataset_id, {"completion_event_ids": [event]}, now=at, deadline_at=at + timedelta(hours=1))
        for event in events
    ]


def batch(runtime: Runtime, job_ids: list[str], *, owner: str = "w1") -> list[SubmitResult]:
    with runtime.client_factory() as client:
        return submit_jobs(
            job_ids,
            session_factory=runtime.session_factory,
            client=client,
            owner=owner,
            now=now,
            policy=runtime.poll_policy,
            lease_s=runtime.tuning.lease_s,
            final_attempt=False,
        )


def tasks_created(emulator: EmulatorServer) -> dict[str, int]:
    created: dict[str, int] = emulator.stats(include_tasks=False)["tasks_created"]
    return created


def imports_its_own_event(emulator: EmulatorServer, runtime: Runtime, job_id: str, event: str) -> bool:
    remote = load_job(runtime, job_id).remote_task_id
    return remote is not None and emulator.task_origins()[remote]["origins"] == [f"event:{event}"]


def test_a_batch_over_two_datasets_posts_each_job_once_and_records_every_task(
    runtime: Runtime, emulator: EmulatorServer
) -> None:
    first, second = datasets(runtime, 2)
    on_first = new_jobs(runtime, first, EVENTS[:3])
    on_second = new_jobs(runtime, second, EVENTS[3:5])
    mixed = [on_first[0], on_second[0], on_first[1], on_second[1], on_first[2]]

    results = batch(runtime, mixed)

    assert [r.job_id for r in results] == mixed
    assert {r.outcome for r in results} == {SubmitOutcome.ACCEPTED}
    assert tasks_created(emulator) == {first: 3, second: 2}
    for job_id, event in zip([*on_first, *on_second], EVENTS[:5], strict=True):
        row = load_job(runtime, job_id)
        assert row.status is JobStatus.RUNNING and row.attempts == 1 and row.lease_owner is None
        assert imports_its_own_event(emulator, runtime, job_id, event)
    # One dataset's submit starts are stamped in the order its POSTs went out.
    starts = [load_job(runtime, job_id).submit_started_at for job_id in on_first]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(starts))


def test_a_second_delivery_of_a_batch_posts_nothing(runtime: Runtime, emulator: EmulatorServer) -> None:
    (target,) = datasets(runtime, 1)
    job_ids = new_jobs(runtime, target, EVENTS[:3])
    batch(runtime, job_ids)
    again = batch(runtime, [*job_ids, job_ids[0]], owner="w2")
    assert [r.outcome for r in again] == [SubmitOutcome.SKIPPED] * 3
    assert tasks_created(emulator) == {target: 3}


def test_a_chain_stops_at_an_unknown_outcome_and_hands_the_rest_back_unsent(
    runtime: Runtime, emulator: EmulatorServer
) -> None:
    (target,) = datasets(runtime, 1)
    job_ids = new_jobs(runtime, target, EVENTS[:3])
    # The API acts on the first POST, then a gateway answers 504: the outcome is unknown to us.
    emulator.configure(faults={"import_from_explorer": {"status": 504, "next": 1, "phase": "after"}})

    results = batch(runtime, job_ids)

    assert [r.outcome for r in results] == [
        SubmitOutcome.AMBIGUOUS,
        SubmitOutcome.HANDED_BACK,
        SubmitOutcome.HANDED_BACK,
    ]
    assert tasks_created(emulator) == {target: 1}
    assert load_job(runtime, job_ids[0]).status is JobStatus.SUBMITTING
    for job_id in job_ids[1:]:
        row = load_job(runtime, job_id)
        assert row.status is JobStatus.PENDING and row.attempts == 0 and row.submit_started_at is None
        assert row.lease_owner is None
    # Recovery adopts the first one's task; the others, sent again, get their own.
    resent: list[str] = []
    recover(runtime, owner="sweeper", now=lambda: now() + LEASE + timedelta(seconds=1), resend=resent.append)
    assert resent == [] and load_job(runtime, job_ids[0]).status is JobStatus.RUNNING
    assert [r.outcome for r in batch(runtime, job_ids[1:])] == [SubmitOutcome.ACCEPTED] * 2
    assert tasks_created(emulator) == {target: 3}
    for job_id, event in zip(job_ids, EVENTS, strict=False):
        assert imports_its_own_event(emulator, runtime, job_id, event)


def test_a_worker_dying_between_its_posts_and_the_write_back_is_recovered_without_a_guess(
    runtime: Runtime, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = datasets(runtime, 2)
    on_first = new_jobs(runtime, first, EVENTS[:4])
    on_second = new_jobs(runtime, second, EVENTS[4:6])

    def dies(*_: object, **__: object) -> list[SubmitResult]:
        raise SystemExit("the worker died after its POSTs")

    monkeypatch.setattr(submit_batch_module, "_record", dies)
    with pytest.raises(SystemExit):
        batch(runtime, [*on_first, *on_second])
    monkeypatch.undo()
    assert tasks_created(emulator) == {first: 4, second: 2}

    # Four different requests on one dataset, all interrupted together: recovery pairs them in order of submit
    # start, which is the order their POSTs went out, so every job gets the task its own request started.
    resent: list[str] = []
    report = recover(runtime, owner="sweeper", now=lambda: now() + LEASE + timedelta(seconds=1), resend=resent.append)
    assert resent == [] and len(report.adopted) == 6
    for job_id, event in zip([*on_first, *on_second], EVENTS[:6], strict=True):
        row = load_job(runtime, job_id)
        assert row.status is JobStatus.RUNNING
        assert "a guess" not in (row.message or "")
        assert imports_its_own_event(emulator, runtime, job_id, event)
    assert tasks_created(emulator) == {first: 4, second: 2}


def test_a_post_that_could_not_end_within_the_lease_is_not_sent(
    runtime: Runtime, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (target,) = datasets(runtime, 1)
    job_ids = new_jobs(runtime, target, EVENTS[:2])
    # With a deadline of 10 s, a POST may start only until 12.5 s after the claim (it must end within three quarters
    # of the 30 s lease); the first POST is made to look 13 s long by moving the clock the chain reads.
    real_monotonic = submit_batch_module.time.monotonic
    offset = {"s": 0.0}

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return real_monotonic() + offset["s"]

    monkeypatch.setattr(submit_batch_module, "time", Clock)
    original = runtime.client_factory

    class SlowFirst:
        def __init__(self) -> None:
            self.client = original()

        def __enter__(self) -> Any:
            client = self.client.__enter__()
            start = client.start_import

            def slow(*args: Any, **kwargs: Any) -> Any:
                answer = start(*args, **kwargs)
                offset["s"] += 13.0
                return answer

            client.start_import = slow
            return client

        def __exit__(self, *exc: object) -> None:
            self.client.__exit__(*exc)

    with SlowFirst() as client:
        results = submit_jobs(
            job_ids,
            session_factory=runtime.session_factory,
            client=client,
            owner="w1",
            now=now,
            policy=runtime.poll_policy,
            lease_s=runtime.tuning.lease_s,
            final_attempt=False,
            post_deadline_s=10.0,
        )
    assert [r.outcome for r in results] == [SubmitOutcome.ACCEPTED, SubmitOutcome.HANDED_BACK]
    assert tasks_created(emulator) == {target: 1}
    assert load_job(runtime, job_ids[1]).status is JobStatus.PENDING
