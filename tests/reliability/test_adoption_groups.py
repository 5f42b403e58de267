"""Several submits on one dataset interrupted at the same time: recovery resolves them together.

The API has no idempotency key and its tasks do not say what they import, so after a lost answer the only clue
is time: a task on the dataset, created while the job was being submitted, that no job owns. When two interrupted
submits overlap, a task in the window may be either one's; one still in flight may yet start one. Adopting a task
for the wrong job starts a double import (its own job finds nothing and posts again) and loses the other. These
tests call the recovery sweep directly against the emulator on a socket (frozen clock), on both ledgers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from jobs.runtime import Runtime
from store.jobs import begin_submit, get_job, job_events
from store.models import ImportKind, JobStatus
from store.state_machine import apply_transition
from tests.fixtures.direct_runtime import load_job
from tests.fixtures.emulators import explorer_events, frozen_emulator_options

from . import adoption
from .adoption import LEASE_S, RESET_AFTER, RESET_BEFORE, interrupted_submit, sweep, tasks_by_creation

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = [f"evt-{n}" for n in range(4)]


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(T0, task_duration_s=10, seed=explorer_events(EVENTS))


def new_job(runtime: Runtime, dataset_id: str, events: list[str]) -> str:
    return adoption.new_job(runtime, dataset_id, events, now=T0, deadline_at=T0 + timedelta(hours=1))


def job(runtime: Runtime, job_id: str) -> Any:
    return load_job(runtime, job_id)


def test_when_fewer_tasks_than_different_requests_appeared_the_pairing_is_a_guess_written_on_both_jobs(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    # A's request arrived and started a task; B's, sent just after, never did (a worker killed mid-request does
    # this). Nothing tells which of two different requests started the task: they are paired in order of time (the
    # earlier request is the likelier to have arrived), which is right here, and would be wrong had B gone first.
    # Either way the guess is on both jobs' history and last error, for an operator to check.
    a = new_job(runtime, dataset_id, EVENTS[0:1])
    b = new_job(runtime, dataset_id, EVENTS[1:2])
    interrupted_submit(runtime, emulator, a, RESET_AFTER, at=T0)
    interrupted_submit(runtime, emulator, b, RESET_BEFORE, at=T0 + timedelta(seconds=1))
    [a_task] = tasks_by_creation(emulator)

    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))

    assert report.adopted == [(a, a_task)] and resent == [b]
    assert job(runtime, a).status is JobStatus.RUNNING and job(runtime, b).status is JobStatus.PENDING
    for job_id in (a, b):
        assert (job(runtime, job_id).last_error or "").startswith("a guess: 1 remote task(s) for 2 interrupted")
        with runtime.session_factory() as session:
            assert "a guess" in (job_events(session, job_id)[-1].message or "")
    assert sum(emulator.stats()["tasks_created"].values()) == 1


def test_overlapping_interrupted_submits_that_all_arrived_each_adopt_their_own_task(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    b = new_job(runtime, dataset_id, EVENTS[1:2])
    a = new_job(runtime, dataset_id, EVENTS[0:1])
    interrupted_submit(runtime, emulator, b, RESET_AFTER, at=T0)
    interrupted_submit(runtime, emulator, a, RESET_AFTER, at=T0 + timedelta(seconds=1))
    b_task, a_task = tasks_by_creation(emulator)

    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))

    assert resent == [] and sorted(report.adopted) == sorted([(a, a_task), (b, b_task)])
    assert (job(runtime, a).remote_task_id, job(runtime, b).remote_task_id) == (a_task, b_task)
    assert {job(runtime, a).status, job(runtime, b).status} == {JobStatus.RUNNING}


def test_identical_requests_share_out_the_tasks_found_and_send_the_rest_again(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    # Same request twice (two schedules asking for the same events): whichever job takes the task, the import that
    # happened is the one both asked for, so one adopts it and the other is sent again.
    b = new_job(runtime, dataset_id, EVENTS[2:3])
    a = new_job(runtime, dataset_id, EVENTS[2:3])
    interrupted_submit(runtime, emulator, b, RESET_BEFORE, at=T0)
    interrupted_submit(runtime, emulator, a, RESET_AFTER, at=T0 + timedelta(seconds=1))
    [task] = tasks_by_creation(emulator)

    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))

    assert len(report.adopted) == 1 and report.adopted[0][1] == task
    assert resent == [job_id for job_id in (a, b) if job_id != report.adopted[0][0]]
    assert job(runtime, resent[0]).status is JobStatus.PENDING


def test_a_job_still_being_submitted_keeps_the_others_waiting(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    # C began its POST within A's window; the API has started C's task but C has not recorded the answer yet (its
    # lease is live). That task is no orphan: taking it for A would import C's request twice and A's never.
    a = new_job(runtime, dataset_id, EVENTS[0:1])
    c = new_job(runtime, dataset_id, EVENTS[3:4])
    interrupted_submit(runtime, emulator, a, RESET_BEFORE, at=T0)
    c_started = T0 + timedelta(seconds=20)
    with runtime.session_factory() as session:
        assert begin_submit(session, c, owner="other", now=c_started, lease_s=LEASE_S) is not None
        session.commit()
    emulator.advance_clock(20)
    with runtime.client_factory() as client:
        c_task = client.start_import(dataset_id, ImportKind.EXPLORER, {"completion_event_ids": EVENTS[3:4]})

    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))
    assert resent == [] and report.adopted == [] and report.finished == []
    assert job(runtime, a).status is JobStatus.SUBMITTING and job(runtime, a).lease_owner != "sweeper"

    # C's answer is recorded, as its worker does; then A is resolved alone: no orphan task, so it is sent again.
    with runtime.session_factory() as session:
        recorded = get_job(session, c)
        assert recorded is not None
        recorded.remote_task_id, recorded.lease_owner, recorded.lease_expires_at = c_task.id, None, None
        apply_transition(recorded, JobStatus.RUNNING, now=c_started, message=f"remote task {c_task.id}")
        session.commit()
    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 3))
    assert resent == [a] and report.adopted == []
    assert job(runtime, c).remote_task_id == c_task.id


def test_interrupted_submits_with_no_task_are_all_sent_again_and_that_is_no_guess(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    a = new_job(runtime, dataset_id, EVENTS[0:1])
    b = new_job(runtime, dataset_id, EVENTS[1:2])
    interrupted_submit(runtime, emulator, a, RESET_BEFORE, at=T0)
    interrupted_submit(runtime, emulator, b, RESET_BEFORE, at=T0 + timedelta(seconds=1))
    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))
    assert sorted(resent) == sorted([a, b]) and report.adopted == []
    assert all("guess" not in (job(runtime, job_id).last_error or "") for job_id in (a, b))


def test_a_lone_interrupted_submit_still_adopts_its_task(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    a = new_job(runtime, dataset_id, EVENTS[0:1])
    interrupted_submit(runtime, emulator, a, RESET_AFTER, at=T0)
    [task] = tasks_by_creation(emulator)
    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 1))
    assert resent == [] and report.adopted == [(a, task)]
