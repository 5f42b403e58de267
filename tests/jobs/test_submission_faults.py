"""Submit under the faults that double an import or lose an answer: a gateway's 5xx after the API acted, a late
answer after another worker took the job over, a POST slower than its deadline, a job past its deadline, a
Retry-After longer than the recovery sweep's patience. A real emulator socket and a real ledger, no broker."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest

from emulator.testing import EmulatorServer
from jobs.recover import recover
from jobs.runtime import Runtime
from jobs.submit import SubmitOutcome, SubmitResult
from store.jobs import get_job, job_events
from store.models import JobStatus
from tests.fixtures.direct_runtime import direct_submit
from tests.jobs.test_job_functions import EVENTS, T0, dataset_id, emulator_options, new_job, runtime, status

__all__ = ["dataset_id", "emulator_options", "runtime"]  # fixtures used by the tests below

LEASE = timedelta(seconds=30)  # the runtime fixture's lease


def submit_as(
    runtime: Runtime, job_id: str, *, owner: str, now: datetime, post_deadline_s: float = 10.0
) -> SubmitResult:
    return direct_submit(runtime, job_id, at=now, owner=owner, post_deadline_s=post_deadline_s)


def tasks_created(emulator: EmulatorServer, dataset_id: str) -> int:
    created: dict[str, int] = emulator.stats(include_tasks=False)["tasks_created"]
    return created.get(dataset_id, 0)


@pytest.mark.parametrize("gateway_status", [502, 503, 504])
def test_a_gateway_error_after_the_api_acted_is_adopted_never_posted_again(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer, gateway_status: int
) -> None:
    emulator.configure(faults={"import_from_explorer": {"status": gateway_status, "next": 1, "phase": "after"}})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    assert submit_as(runtime, job_id, owner="w1", now=T0).outcome is SubmitOutcome.AMBIGUOUS
    assert status(runtime, job_id) is JobStatus.SUBMITTING

    resent: list[str] = []
    report = recover(runtime, owner="sweeper", now=lambda: T0 + LEASE + timedelta(seconds=1), resend=resent.append)
    assert [job for job, _ in report.adopted] == [job_id] and resent == []
    assert status(runtime, job_id) is JobStatus.RUNNING
    assert tasks_created(emulator, dataset_id) == 1


def test_a_stale_answer_never_moves_a_newer_attempt(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    # Every POST waits 1.5 s before the API acts; the first one then gets a gateway 504 (nothing created).
    emulator.configure(
        latency_phase="before",
        route_latency_ms={"import_from_explorer": 1500},
        faults={"import_from_explorer": {"status": 504, "next": 1}},
    )
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    first: list[SubmitResult] = []
    worker_one = threading.Thread(target=lambda: first.append(submit_as(runtime, job_id, owner="w1", now=T0)))
    worker_one.start()
    time.sleep(0.3)

    # The first POST outlived its lease: recovery finds no task yet and sends the job again; w2 takes it.
    later = T0 + LEASE + timedelta(seconds=1)
    resent: list[str] = []
    recover(runtime, owner="sweeper", now=lambda: later, resend=resent.append)
    assert resent == [job_id] and status(runtime, job_id) is JobStatus.PENDING
    second: list[SubmitResult] = []
    worker_two = threading.Thread(target=lambda: second.append(submit_as(runtime, job_id, owner="w2", now=later)))
    worker_two.start()
    worker_one.join(10)
    worker_two.join(10)

    # w1's late 504 found the job SUBMITTING under w2: it wrote only an event, and w2's answer was recorded.
    assert first[0].outcome is SubmitOutcome.SUPERSEDED
    assert second[0].outcome is SubmitOutcome.ACCEPTED
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None and job.status is JobStatus.RUNNING and job.remote_task_id == second[0].detail
        notes = [e.message or "" for e in job_events(session, job_id)]
    assert any("late submit answer from w1" in note and "504" in note for note in notes)
    assert tasks_created(emulator, dataset_id) == 1


def test_a_late_acceptance_after_adoption_is_only_noted(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    # The API acts at once and answers 1.5 s later; meanwhile recovery adopts the task it created.
    emulator.configure(route_latency_ms={"import_from_explorer": 1500})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    first: list[SubmitResult] = []
    worker = threading.Thread(target=lambda: first.append(submit_as(runtime, job_id, owner="w1", now=T0)))
    worker.start()
    time.sleep(0.5)
    report = recover(runtime, owner="sweeper", now=lambda: T0 + LEASE + timedelta(seconds=1), resend=[].append)
    assert [job for job, _ in report.adopted] == [job_id]
    worker.join(10)

    assert first[0].outcome is SubmitOutcome.SUPERSEDED
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None and job.status is JobStatus.RUNNING
        adopted_task = job.remote_task_id
        events = [(e.old_status, e.new_status, e.message or "") for e in job_events(session, job_id)]
    # The late writer wrote one note and no transition of its own.
    late = [(old, new) for old, new, message in events if "late submit answer from w1" in message]
    assert late == [(JobStatus.RUNNING, JobStatus.RUNNING)]
    assert [(old, new) for old, new, _ in events].count((JobStatus.SUBMITTING, JobStatus.RUNNING)) == 1
    assert adopted_task is not None and adopted_task in first[0].detail
    assert tasks_created(emulator, dataset_id) == 1


def test_a_post_slower_than_its_deadline_is_ambiguous_at_the_deadline(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    emulator.configure(route_latency_ms={"import_from_explorer": 3000})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    started = time.monotonic()
    result = submit_as(runtime, job_id, owner="w1", now=T0, post_deadline_s=0.5)
    elapsed = time.monotonic() - started
    assert result.outcome is SubmitOutcome.AMBIGUOUS and "deadline" in result.detail
    assert elapsed < 2.0, f"the POST held the submit for {elapsed:.1f} s past its 0.5 s deadline"
    # The API did act: recovery adopts that task rather than sending the request again.
    report = recover(runtime, owner="sweeper", now=lambda: T0 + LEASE + timedelta(seconds=1), resend=[].append)
    assert [job for job, _ in report.adopted] == [job_id]
    assert tasks_created(emulator, dataset_id) == 1


def test_nothing_is_posted_for_a_job_past_its_deadline(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]}, deadline=timedelta(seconds=30))
    emulator.reset_stats()
    # A retry delivered after the deadline.
    result = submit_as(runtime, job_id, owner="w1", now=T0 + timedelta(seconds=31))
    assert result.outcome is SubmitOutcome.EXPIRED and result.finished
    assert status(runtime, job_id) is JobStatus.EXPIRED
    assert emulator.stats(include_tasks=False)["requests_total"] == 0


def test_a_retry_after_longer_than_the_sweep_window_is_honoured(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    emulator.configure(faults={"import_from_explorer": {"status": 429, "next": 1, "retry_after_s": 300}})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    result = submit_as(runtime, job_id, owner="w1", now=T0)
    assert result.outcome is SubmitOutcome.RETRY and result.retry_after_s == 300

    def sweep(at: datetime) -> list[str]:
        resent: list[str] = []
        recover(runtime, owner="sweeper", now=lambda: at, resend=resent.append)
        return resent

    # The stale-PENDING window (60 s) passes long before the API's 300 s: the sweep waits, and so does the task.
    assert sweep(T0 + timedelta(seconds=90)) == []
    emulator.reset_stats()
    early = submit_as(runtime, job_id, owner="w1", now=T0 + timedelta(seconds=90))
    assert early.outcome is SubmitOutcome.DEFERRED and early.retry_after_s == pytest.approx(210)
    assert emulator.stats(include_tasks=False)["requests_total"] == 0
    # Once the wait (and the sweep's own window after it) has passed, the job is sent again.
    assert sweep(T0 + timedelta(seconds=300 + 61)) == [job_id]
    assert submit_as(runtime, job_id, owner="w1", now=T0 + timedelta(seconds=362)).outcome is SubmitOutcome.ACCEPTED
