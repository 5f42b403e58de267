"""A worker killed with SIGKILL, then restarted, over many rounds: nothing lost, nothing doubled.

Each kill lands while a POST the API has already carried out is still waiting for its answer, the one moment where
a lost answer would make a resend a second import; the rest of the service (polls of earlier rounds, finishes) is
wherever it happens to be.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs

pytestmark = pytest.mark.integration

ROUNDS = 6
JOBS_PER_ROUND = 8
POST_ROUTE = "import_from_explorer"
# The next POST's answer, held back after its task exists: far longer than a look at the emulator's counters plus
# the random wait before the kill.
SLOW_ANSWER: dict[str, Any] = {"kind": "slow", "delay_ms": 2500, "phase": "after", "next": 1}


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def post_counts(emulator: EmulatorServer) -> tuple[int, int]:
    """(POSTs still waiting for their answer, remote tasks created so far)."""
    stats = emulator.stats(include_tasks=False)
    answered = sum(stats["responses"].get(POST_ROUTE, {}).values())
    return stats["requests"].get(POST_ROUTE, 0) - answered, sum(stats["tasks_created"].values())


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def wait_until_answer_owed(emulator: EmulatorServer, before: tuple[int, int]) -> None:
    """Until a POST made since ``before`` (``post_counts``) has created its task and its answer is still owed."""

    def owed() -> bool:
        in_flight, tasks = post_counts(emulator)
        return in_flight > before[0] and tasks > before[1]

    def still_owed() -> bool:
        # Twice, some time apart: a fast POST is answered within milliseconds, only the held-back one stays owed.
        if not owed():
            return False
        time.sleep(0.15)
        return owed()

    wait_until(still_owed, "a POST's task exists and its answer is owed")


@pytest.mark.timeout(420)  # above its own waits: 30 s a round, 150 s at the end
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
    # Slow polls widen the mid-poll-batch window a kill can land in.
    emulator.configure(task_duration_s=[1.0, 3.0], route_latency_ms={"fetch_task": 100, "list_tasks": 100})
    event_ids = [f"evt-{n}" for n in range(ROUNDS * JOBS_PER_ROUND)]
    emulator.seed(explorer_events(event_ids))
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(3)]
    processes.start_beat()
    rng = random.Random(7)
    job_ids: list[str] = []
    worker = processes.start_worker("worker-0")
    answer_sent_at = 0.0
    for round_number in range(ROUNDS):
        # The previous round's held-back answer has gone out (to a dead worker), so what follows is this round's.
        time.sleep(max(0.0, answer_sent_at - time.monotonic()))
        before = post_counts(emulator)
        # The dangerous window: the API has created the import and its answer is still on the way. A kill there
        # leaves a SUBMITTING job whose task exists remotely; only adoption keeps recovery from posting it again.
        emulator.configure(faults={POST_ROUTE: SLOW_ANSWER})
        for n in range(JOBS_PER_ROUND):
            event = event_ids[round_number * JOBS_PER_ROUND + n]
            job_ids.append(requester.request(ImportKind.EXPLORER, datasets[n % 3], {"completion_event_ids": [event]}))
        wait_until_answer_owed(emulator, before)
        # Anywhere inside that window; other jobs of earlier rounds are being polled or finished meanwhile.
        time.sleep(rng.uniform(0.0, 0.5))
        kill_group(worker.pid)
        answer_sent_at = time.monotonic() + SLOW_ANSWER["delay_ms"] / 1000
        worker.wait()
        worker = processes.start_worker(f"worker-{round_number + 1}")

    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=150, on_timeout=processes.logs)
    statuses = {job.status for job in jobs.values()}
    assert statuses == {JobStatus.COMPLETED}, statuses
    stats = emulator.stats()
    # Exactly one remote import per job: as many tasks as jobs, each owned by exactly one job.
    assert sum(stats["tasks_created"].values()) == len(job_ids), stats["tasks_created"]
    remote_ids = [job.remote_task_id for job in jobs.values()]
    assert len(set(remote_ids)) == len(job_ids)
    assert set(remote_ids) == set(stats["tasks"])
    with requester.sessions() as session:
        adopted = [job_id for job_id in job_ids if _adopted(session, job_id)]
        recovered = [job_id for job_id in job_ids if _recovered(session, job_id)]
    # Every round's kill cut off an answer whose task existed: each such job was found again, not re-sent.
    assert len(adopted) >= ROUNDS, f"only {len(adopted)} adoptions for {ROUNDS} kills inside the window"
    print(f"{len(recovered)} of {len(job_ids)} jobs went through recovery, {len(adopted)} adopted their task")


def _adopted(session: object, job_id: str) -> bool:
    from sqlalchemy.orm import Session

    from store.jobs import job_events

    assert isinstance(session, Session)
    return any((event.message or "").startswith("adopted") for event in job_events(session, job_id))


def _recovered(session: object, job_id: str) -> bool:
    from sqlalchemy.orm import Session

    from store.jobs import job_events

    assert isinstance(session, Session)
    return any(
        (event.message or "").startswith(("adopted", "no remote task"))
        or (event.new_status is JobStatus.PENDING and event.old_status is not None)
        for event in job_events(session, job_id)
    )
