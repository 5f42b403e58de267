"""Adoption on a busy dataset: the interrupted submit's task is found wherever the list puts it, or the job waits.

A job's POST reached the API (a task started) but its answer was lost; by the time recovery looks, hundreds of other
imports have been started on the same dataset. The task list may come newest first or oldest first (the contract
promises neither), so the orphan sits on page 7 either way. Recovery must read as far as the submit window goes and
adopt it; a lookup that could not read that far (a page bound, an API error mid-scan) knows nothing, so the job
waits for the next sweep and is never POSTed again on a partial answer. The emulator runs on a socket with a frozen
clock moved by the test, the sweep is called directly, on both ledgers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetImportTask, DatasetsClient, Page, RetryPolicy
from emulator.testing import EmulatorServer
from jobs import recover as recovery
from jobs.runtime import Runtime
from store.models import JobStatus
from tests.fixtures.direct_runtime import load_job
from tests.fixtures.emulators import explorer_events, frozen_emulator_options

from . import adoption
from .adoption import LEASE_S, RESET_AFTER, RESET_BEFORE, interrupted_submit, sweep

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY_START = T0 - timedelta(hours=1)  # tasks older than any submit window
LATER_START = T0 + timedelta(seconds=LEASE_S + 60)  # tasks younger than the window: started by later submits
SWEEP_AT = T0 + timedelta(hours=1)
EVENTS = ["evt-job", "evt-other"]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(HISTORY_START, task_duration_s=7200, seed=explorer_events(EVENTS))


def crashed_submit(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str, *, history: int, later: int, fault: dict[str, Any]
) -> tuple[str, list[str]]:
    """``history`` tasks, then a job's submit through ``fault`` at T0, then ``later`` tasks; (job id, its tasks)."""
    adoption.create_tasks(emulator, dataset_id, EVENTS[1], count=history, start=HISTORY_START)
    job_id = adoption.new_job(runtime, dataset_id, EVENTS[:1], now=T0, deadline_at=T0 + timedelta(days=1))
    before = set(emulator.stats()["tasks"])
    interrupted_submit(runtime, emulator, job_id, fault, at=T0)
    started = sorted(set(emulator.stats()["tasks"]) - before)
    adoption.create_tasks(emulator, dataset_id, EVENTS[1], count=later, start=LATER_START)
    emulator.reset_stats()
    return job_id, started


def posts(emulator: EmulatorServer) -> int:
    return int(emulator.stats(include_tasks=False)["requests"].get("import_from_explorer", 0))


def list_calls(emulator: EmulatorServer) -> int:
    return int(emulator.stats(include_tasks=False)["requests"].get("list_tasks", 0))


def test_newest_first_the_orphan_on_page_7_is_adopted_and_the_scan_stops_past_the_window(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    # 100 old tasks, the orphan, 600 newer ones: newest first, page 7 holds the orphan and the old tasks after it.
    job_id, [orphan] = crashed_submit(runtime, emulator, dataset_id, history=100, later=600, fault=RESET_AFTER)

    resent, report = sweep(runtime, SWEEP_AT)

    assert report.adopted == [(job_id, orphan)] and resent == []
    assert load_job(runtime, job_id).status is JobStatus.RUNNING
    assert load_job(runtime, job_id).remote_task_id == orphan
    # Page 7 ends with a task older than the window: page 8 is not read.
    assert list_calls(emulator) == 7
    assert posts(emulator) == 0


def test_oldest_first_the_orphan_after_600_older_tasks_is_adopted_from_the_end_of_the_list(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    emulator.configure(task_list_order="oldest")
    job_id, [orphan] = crashed_submit(runtime, emulator, dataset_id, history=600, later=5, fault=RESET_AFTER)

    resent, report = sweep(runtime, SWEEP_AT)

    assert report.adopted == [(job_id, orphan)] and resent == []
    assert load_job(runtime, job_id).remote_task_id == orphan
    # Page 1 shows the order, page 7 (the last) holds the orphan, page 6 starts before the window.
    assert list_calls(emulator) == 3
    assert posts(emulator) == 0


def test_a_job_whose_request_never_arrived_is_sent_again_after_a_complete_scan_of_a_long_list(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str
) -> None:
    job_id, started = crashed_submit(runtime, emulator, dataset_id, history=50, later=250, fault=RESET_BEFORE)
    assert started == []

    resent, report = sweep(runtime, SWEEP_AT)

    assert resent == [job_id] and report.adopted == []
    assert load_job(runtime, job_id).status is JobStatus.PENDING


def test_a_scan_cut_short_by_its_page_bound_sends_nothing_and_the_job_waits_for_the_next_sweep(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The orphan is on page 7 of the newest-first list; the lookup may read 5 pages.
    job_id, [orphan] = crashed_submit(runtime, emulator, dataset_id, history=0, later=600, fault=RESET_AFTER)
    monkeypatch.setattr(recovery, "ADOPTION_MAX_PAGES", 5)

    resent, report = sweep(runtime, SWEEP_AT)

    assert list_calls(emulator) == 5  # the lookup ran, and stopped at its bound
    assert resent == [] and report.adopted == [] and report.reset == [] and report.finished == []
    waiting = load_job(runtime, job_id)
    assert waiting.status is JobStatus.SUBMITTING and waiting.lease_owner is None
    assert "not looked up yet" in (waiting.last_error or "")

    monkeypatch.undo()
    resent, report = sweep(runtime, SWEEP_AT + timedelta(minutes=1))
    assert report.adopted == [(job_id, orphan)] and resent == []
    assert posts(emulator) == 0


class _FailsAfterTwoPages(DatasetsClient):
    """A client that, once it has read page 2 of a task list, arms a 502 on the emulator for the next page."""

    def __init__(self, emulator: EmulatorServer) -> None:
        super().__init__(emulator.api_key, base_url=emulator.url, retry=RetryPolicy.none())
        self._emulator = emulator

    def list_tasks(self, dataset_id: str, page: int = 1, page_size: int = 50) -> Page[DatasetImportTask]:
        result = super().list_tasks(dataset_id, page=page, page_size=page_size)
        if page == 2:
            self._emulator.configure(faults={"list_tasks": {"status": 502, "next": 1}})
        return result


def test_an_api_error_in_the_middle_of_the_scan_sends_nothing_and_the_job_waits(
    runtime: Runtime, emulator: EmulatorServer, dataset_id: str, session_factory: sessionmaker[Session]
) -> None:
    job_id, [orphan] = crashed_submit(runtime, emulator, dataset_id, history=0, later=250, fault=RESET_AFTER)
    failing = Runtime(
        session_factory=runtime.session_factory,
        client_factory=lambda: _FailsAfterTwoPages(emulator),
        async_client_factory=runtime.async_client_factory,
        poll_policy=runtime.poll_policy,
        tuning=runtime.tuning,
    )

    resent, report = sweep(failing, SWEEP_AT)

    assert list_calls(emulator) == 3  # pages 1 and 2, then the 502
    assert resent == [] and report.adopted == [] and report.reset == []
    assert load_job(runtime, job_id).status is JobStatus.SUBMITTING
    resent, report = sweep(runtime, SWEEP_AT + timedelta(minutes=1))
    assert report.adopted == [(job_id, orphan)] and resent == []
    assert posts(emulator) == 0
