"""Recovery: a lost submit message, a submit whose answer was lost, a submit cut before the API acted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from jobs.request_import import request_import
from store.jobs import job_events
from store.models import ImportKind, JobStatus

from .service import Requester, ServiceProcesses, wait_for_jobs, wait_for_poll_ticks

pytestmark = pytest.mark.integration


@pytest.fixture
def fast_recovery(processes: ServiceProcesses) -> ServiceProcesses:
    processes.env.update(
        {
            "DSIMPORT_RECOVERY_INTERVAL_S": "1",
            "DSIMPORT_STALE_PENDING_S": "1",
            "DSIMPORT_LEASE_S": "2",
            # Calls made under a lease must end within it (checked at start-up).
            "DSIMPORT_API_TIMEOUT_S": "0.9",
            "DSIMPORT_API_MAX_ATTEMPTS": "2",
        }
    )
    processes.start_worker()
    processes.start_beat()
    return processes


def seed(emulator: EmulatorServer) -> None:
    emulator.seed(
        {
            "events": [
                {
                    "event_id": f"evt-{n}",
                    "request_messages": [{"role": "user", "content": "q"}],
                    "response_messages": [{"role": "assistant", "content": "a"}],
                }
                for n in range(3)
            ]
        }
    )


def test_a_job_whose_submit_message_was_lost_is_sent_again(
    emulator: EmulatorServer, api: DatasetsClient, fast_recovery: ServiceProcesses, requester: Requester
) -> None:
    seed(emulator)
    target = api.create_dataset("target", "d")
    requested = request_import(
        requester.sessions,
        kind=ImportKind.EXPLORER,
        dataset_id=target.id,
        params={"completion_event_ids": ["evt-0"]},
        origin="test",
        now=datetime.now(UTC),
        deadline_s=600,
        send=lambda job_id: None,  # the broker "lost" the message
    )
    job = wait_for_jobs(requester.sessions, [requested.job_id], timeout_s=30, on_timeout=fast_recovery.logs)
    assert job[requested.job_id].status is JobStatus.COMPLETED
    assert emulator.stats(include_tasks=False)["tasks_created"] == {target.id: 1}


def test_a_submit_whose_answer_was_lost_adopts_the_remote_task_instead_of_posting_again(
    emulator: EmulatorServer, api: DatasetsClient, fast_recovery: ServiceProcesses, requester: Requester
) -> None:
    seed(emulator)
    # The API starts the import, then the answer is a 500: the job cannot know whether a task exists.
    emulator.configure(faults={"import_from_explorer": {"status": 500, "next": 1, "phase": "after"}})
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-1"]})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=40, on_timeout=fast_recovery.logs)[job_id]
    assert job.status is JobStatus.COMPLETED
    stats = emulator.stats()
    assert stats["tasks_created"] == {target.id: 1}
    assert stats["requests"]["import_from_explorer"] == 1
    with requester.sessions() as session:
        messages = [event.message or "" for event in job_events(session, job_id)]
    assert any(message.startswith("adopted remote task") for message in messages)


def test_a_submit_refused_before_the_api_acted_is_posted_again_once(
    emulator: EmulatorServer, api: DatasetsClient, fast_recovery: ServiceProcesses, requester: Requester
) -> None:
    seed(emulator)
    emulator.configure(faults={"import_from_explorer": {"status": 500, "next": 1, "phase": "before"}})
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-2"]})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=40, on_timeout=fast_recovery.logs)[job_id]
    assert job.status is JobStatus.COMPLETED
    stats = emulator.stats(include_tasks=False)
    assert stats["tasks_created"] == {target.id: 1}
    assert stats["requests"]["import_from_explorer"] == 2
    assert job.attempts == 2


def test_503_bursts_are_resolved_by_recovery_and_end_in_one_import(
    emulator: EmulatorServer, api: DatasetsClient, fast_recovery: ServiceProcesses, requester: Requester
) -> None:
    # A 503 may follow a request the API acted on: each one waits for recovery, which finds no task and sends again.
    seed(emulator)
    emulator.configure(faults={"import_from_explorer": {"status": 503, "next": 2}})
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-0"]})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=40, on_timeout=fast_recovery.logs)[job_id]
    assert job.status is JobStatus.COMPLETED
    assert job.attempts == 3
    assert emulator.stats(include_tasks=False)["tasks_created"] == {target.id: 1}


def test_a_cancelled_job_is_no_longer_polled(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    import time

    from store.jobs import cancel_job, get_job

    seed(emulator)
    emulator.configure(task_duration_s=20.0)
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-0"]})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with requester.sessions() as session:
            job = get_job(session, job_id)
            if job is not None and job.status is JobStatus.RUNNING:
                cancel_job(session, job_id, now=datetime.now(UTC))
                session.commit()
                break
        time.sleep(0.1)
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=5)[job_id]
    assert job.status is JobStatus.CANCELLED_LOCALLY
    assert job.remote_task_id is not None
    fetched = emulator.stats()["tasks"][job.remote_task_id]["fetch_count"]
    # Poll ticks run for a few seconds after the cancel; one poll already under way may still land.
    wait_for_poll_ticks(service.env["DSIMPORT_BROKER_URL"], after=time.time(), spread_s=3.0, on_timeout=service.logs)
    assert emulator.stats()["tasks"][job.remote_task_id]["fetch_count"] <= fetched + 1
