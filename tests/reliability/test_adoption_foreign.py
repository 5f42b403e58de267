"""Adoption on a shared dataset: another user's imports in the submit window are never taken for ours.

A job's POST reached the API but its answer was lost; another user (another API key: another ``creator_id``)
started imports on the same dataset at the same moment. Their tasks are unowned by any job of ours and sit in the
window, older than ours: pairing by time alone would adopt one of them, record its outcome as our job's and leave
our own import unowned. The recovery sweep runs in a process that has started no task yet (a restarted worker), so
it first learns who "we" are from a task the ledger says is ours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from emulator.world import OWNER_ID
from jobs import own_creators
from jobs.runtime import Runtime
from jobs.submit import SubmitOutcome
from store.models import JobStatus
from tests.fixtures.direct_runtime import direct_submit, load_job
from tests.fixtures.emulators import explorer_events, frozen_emulator_options

from . import adoption
from .adoption import LEASE_S, RESET_AFTER, interrupted_submit, sweep

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = ["evt-earlier", "evt-job"]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(T0 - timedelta(minutes=5), task_duration_s=7200, seed=explorer_events(EVENTS))


@pytest.fixture
def restarted_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process has started no task yet: who we are must be learned again."""
    monkeypatch.setattr(own_creators, "_known", set())


def test_another_users_tasks_in_the_window_are_not_adopted(
    runtime: Runtime, emulator: EmulatorServer, restarted_process: None
) -> None:
    with runtime.client_factory() as client:
        earlier_dataset = client.create_dataset("earlier", "d").id
        shared = client.create_dataset("shared", "d").id
    # An import of ours that went well, on another dataset: the ledger knows one task of ours.
    earlier = adoption.new_job(runtime, earlier_dataset, EVENTS[:1], now=T0, deadline_at=T0 + timedelta(days=1))
    adoption.move_emulator_clock(emulator, T0 - timedelta(minutes=1))
    accepted = direct_submit(runtime, earlier, at=T0 - timedelta(minutes=1), owner="worker")
    assert accepted.outcome is SubmitOutcome.ACCEPTED
    own_creators._known.clear()  # then the worker restarted

    # Another user starts three imports on the shared dataset a second before our submit, inside its window.
    adoption.move_emulator_clock(emulator, T0 - timedelta(seconds=1))
    foreign = set(emulator.add_foreign_tasks(shared, 3))
    job_id = adoption.new_job(runtime, shared, EVENTS[1:], now=T0, deadline_at=T0 + timedelta(days=1))
    before = set(emulator.stats()["tasks"])
    interrupted_submit(runtime, emulator, job_id, RESET_AFTER, at=T0)
    ours = set(emulator.stats()["tasks"]) - before
    assert len(ours) == 1

    resent, report = sweep(runtime, T0 + timedelta(seconds=LEASE_S + 2))
    job = load_job(runtime, job_id)
    assert resent == [] and [adopted for _, adopted in report.adopted] == list(ours)
    assert job.status is JobStatus.RUNNING and job.remote_task_id in ours and job.remote_task_id not in foreign
    # Learned from the ledger's task of the earlier import.
    assert own_creators.known() == {OWNER_ID}
