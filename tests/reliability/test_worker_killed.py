"""A worker killed with SIGKILL at random moments, then restarted, over many rounds: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportKind, JobStatus
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs

pytestmark = pytest.mark.integration

ROUNDS = 6
JOBS_PER_ROUND = 8


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until_started(requester: Requester, job_ids: list[str], timeout_s: float = 60) -> None:
    from store.jobs import get_job

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with requester.sessions() as session:
            for job_id in job_ids:
                job = get_job(session, job_id)
                if job is not None and job.status is not JobStatus.PENDING:
                    return
        time.sleep(0.05)
    raise AssertionError("the worker never picked up a submit")


def test_sigkilled_workers_lose_no_job_and_start_no_import_twice(
    emulator: EmulatorServer, api: DatasetsClient, processes: ServiceProcesses, requester: Requester
) -> None:
    processes.env.update(
        {
            "DSIMPORT_RECOVERY_INTERVAL_S": "1",
            "DSIMPORT_STALE_PENDING_S": "2",
            "DSIMPORT_LEASE_S": "3",
            "DSIMPORT_API_TIMEOUT_S": "1.4",
            "DSIMPORT_API_MAX_ATTEMPTS": "2",
        }
    )
    # Slow POSTs and polls widen the windows a kill can land in: mid-submit and mid-poll-batch.
    emulator.configure(
        task_duration_s=[1.0, 3.0],
        route_latency_ms={"import_from_explorer": 250, "fetch_task": 100, "list_tasks": 100},
    )
    event_ids = [f"evt-{n}" for n in range(ROUNDS * JOBS_PER_ROUND)]
    emulator.seed(
        {
            "events": [
                {"event_id": e, "request_messages": [{"role": "user", "content": e}], "response_messages": []}
                for e in event_ids
            ]
        }
    )
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(3)]
    processes.start_beat()
    rng = random.Random(7)
    job_ids: list[str] = []
    worker = processes.start_worker("worker-0")
    for round_number in range(ROUNDS):
        for n in range(JOBS_PER_ROUND):
            event = event_ids[round_number * JOBS_PER_ROUND + n]
            job_ids.append(requester.request(ImportKind.EXPLORER, datasets[n % 3], {"completion_event_ids": [event]}))
        # Kill only a worker that is working: once it has picked up this round's first submit.
        wait_until_started(requester, job_ids[-JOBS_PER_ROUND:])
        time.sleep(rng.uniform(0.0, 1.0))
        kill_group(worker.pid)
        worker.wait()
        worker = processes.start_worker(f"worker-{round_number + 1}")

    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=120, on_timeout=processes.logs)
    statuses = {job.status for job in jobs.values()}
    assert statuses == {JobStatus.COMPLETED}, statuses
    stats = emulator.stats()
    # Exactly one remote import per job: as many tasks as jobs, each owned by exactly one job.
    assert sum(stats["tasks_created"].values()) == len(job_ids)
    remote_ids = [job.remote_task_id for job in jobs.values()]
    assert len(set(remote_ids)) == len(job_ids)
    assert set(remote_ids) == set(stats["tasks"])
    with requester.sessions() as session:
        recovered = [job_id for job_id in job_ids if _recovered(session, job_id)]
    print(f"{len(recovered)} of {len(job_ids)} jobs went through recovery")


def _recovered(session: object, job_id: str) -> bool:
    from sqlalchemy.orm import Session

    from store.jobs import job_events

    assert isinstance(session, Session)
    return any(
        (event.message or "").startswith(("adopted", "no remote task"))
        or (event.new_status is JobStatus.PENDING and event.old_status is not None)
        for event in job_events(session, job_id)
    )
