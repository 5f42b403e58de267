"""An interrupted submit found by recovery after the job's deadline: adopted if it arrived, never sent again.

The emulator runs on a socket with a frozen clock moved by the test; the sweep and the poller are called directly,
on both ledgers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from jobs.poll_loop import close_poll_loop, run_poll_rounds
from jobs.runtime import Runtime
from store.jobs import job_events
from store.models import JobStatus
from tests.fixtures.direct_runtime import load_job
from tests.fixtures.emulators import explorer_events, frozen_emulator_options

from . import adoption
from .adoption import LEASE_S, RESET_AFTER, RESET_BEFORE, interrupted_submit, sweep, tasks_by_creation

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEADLINE = T0 + timedelta(seconds=10)
PAST_DEADLINE = T0 + timedelta(seconds=LEASE_S + 2)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(T0, task_duration_s=600, seed=explorer_events(["evt-0"]))


def posts(emulator: EmulatorServer) -> int:
    return int(emulator.stats(include_tasks=False)["requests"].get("import_from_explorer", 0))


def test_an_interrupted_submit_past_its_deadline_with_no_remote_task_ends_expired_and_is_not_sent_again(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    job_id = adoption.new_job(runtime, dataset_id, ["evt-0"], now=T0, deadline_at=DEADLINE)
    interrupted_submit(runtime, emulator, job_id, RESET_BEFORE, at=T0)
    assert posts(emulator) == 1

    resent, report = sweep(runtime, PAST_DEADLINE)

    assert emulator.stats(include_tasks=False)["requests"]["list_tasks"] == 1  # it did look
    assert resent == [] and report.reset == [] and report.finished == [(job_id, "EXPIRED")]
    expired = load_job(runtime, job_id)
    assert expired.status is JobStatus.EXPIRED and expired.lease_owner is None
    with runtime.session_factory() as session:
        assert "past its deadline" in (job_events(session, job_id)[-1].message or "")
    # A later sweep has nothing left to do with it.
    resent, report = sweep(runtime, PAST_DEADLINE + timedelta(minutes=5))
    assert resent == [] and report.finished == []
    assert posts(emulator) == 1 and emulator.stats(include_tasks=False)["tasks_created"] == {}


def test_an_interrupted_submit_past_its_deadline_that_arrived_is_adopted_then_expires_at_its_next_poll(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    job_id = adoption.new_job(runtime, dataset_id, ["evt-0"], now=T0, deadline_at=DEADLINE)
    interrupted_submit(runtime, emulator, job_id, RESET_AFTER, at=T0)
    [task] = tasks_by_creation(emulator)

    resent, report = sweep(runtime, PAST_DEADLINE)

    assert report.adopted == [(job_id, task)] and resent == []
    assert load_job(runtime, job_id).status is JobStatus.RUNNING
    try:
        polled = run_poll_rounds(runtime, owner="poller", now=lambda: PAST_DEADLINE + timedelta(seconds=5))
    finally:
        close_poll_loop()
    assert polled.finished == [(job_id, "EXPIRED")]
    assert load_job(runtime, job_id).remote_task_id == task
    assert posts(emulator) == 1
