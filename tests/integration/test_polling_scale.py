"""The batch poller under load: many imports on a small worker, and several workers sharing the polling."""

from __future__ import annotations

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events

from .service import Requester, ServiceProcesses, wait_for_jobs

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def seed_events(emulator: EmulatorServer, count: int) -> list[str]:
    ids = [f"evt-{n}" for n in range(count)]
    emulator.seed(explorer_events(ids, answer="ok"))
    return ids


def test_200_imports_in_flight_on_one_worker_with_concurrency_2(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    # A sleeping poll task would hold both slots for a whole import: 200 imports of 4-8 s would take minutes.
    emulator.configure(task_duration_s=[4.0, 8.0])
    event_ids = seed_events(emulator, 200)
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(10)]
    job_ids = [
        requester.request(ImportKind.EXPLORER, datasets[n % 10], {"completion_event_ids": [event_id]})
        for n, event_id in enumerate(event_ids)
    ]
    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=90, on_timeout=service.logs)
    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}
    stats = emulator.stats()
    assert sum(stats["tasks_created"].values()) == 200
    calls = stats["requests"].get("fetch_task", 0) + stats["requests"].get("list_tasks", 0)
    # Economy: 20 jobs per dataset are grouped into list_tasks pages, so far fewer calls than imports x polls.
    polls = sum(job.poll_count for job in jobs.values())
    assert calls < polls


def test_two_workers_never_poll_the_same_job_for_the_same_due_time(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    requester: Requester,
) -> None:
    # fetch_task only (no grouping), so the emulator's per-task count can be compared with the ledger's polls.
    processes.env["DSIMPORT_POLL_GROUP_THRESHOLD"] = "100000"
    processes.env["DSIMPORT_POLL_TICK_S"] = "0.2"
    processes.start_worker("worker-a")
    processes.start_worker("worker-b")
    processes.start_beat()
    emulator.configure(task_duration_s=[2.0, 5.0])
    event_ids = seed_events(emulator, 40)
    target = api.create_dataset("target", "d").id
    job_ids = [
        requester.request(ImportKind.EXPLORER, target, {"completion_event_ids": [event_id]}) for event_id in event_ids
    ]
    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=60, on_timeout=processes.logs)
    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}
    tasks = emulator.stats()["tasks"]
    for job in jobs.values():
        assert job.remote_task_id is not None
        # Every fetch of a task was one poll recorded on its job: none was made twice for one due time.
        assert tasks[job.remote_task_id]["fetch_count"] == job.poll_count, job.id
    assert len(tasks) == 40
