"""PostgreSQL, the ledger, crashed and restarted under a running service: no job lost, none doubled.

The database is a cluster of the test's own; ``pg_ctl stop -m immediate`` kills every backend mid-transaction, as a
crash of the database host would. Meanwhile submits, poll rounds and the stream consumer are all writing: every
pooled connection dies at once, and each of them must be noticed (``pool_pre_ping``) and replaced, every write that
failed must be redone by someone (the submit's lease runs out and recovery adopts the remote task it started; the
poll's lease runs out and the job is polled again; the stream entry stays pending and is taken over), and nothing
may be submitted twice. Requests arrive on the stream while the database is down, too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
import redis

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.db import upgrade
from store.jobs import get_job
from store.models import ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.fixtures.servers import PostgresServer, postgres_server
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs

from .harness import (
    FAST_RECOVERY_ENV,
    STREAM,
    all_jobs,
    count,
    explorer_message,
    message_jobs,
    recovered,
    shared_redis_url,
    wait_until,
)

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(480)]

ROUNDS = 3
JOBS_PER_ROUND = 6
MESSAGES_WHILE_DOWN = 3
DOWN_S = 1.5


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    upgrade(own_postgres.url)
    return own_postgres.url


@pytest.fixture
def broker_redis_url() -> str:
    return shared_redis_url(12)


def test_no_job_is_lost_or_doubled_when_postgres_crashes_mid_run(
    own_postgres: PostgresServer,
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    requester: Requester,
    broker_url: str,
) -> None:
    processes.env.update(FAST_RECOVERY_ENV)
    total_jobs = (ROUNDS + 1) * JOBS_PER_ROUND
    total_messages = ROUNDS * MESSAGES_WHILE_DOWN
    events = [f"evt-{n}" for n in range(total_jobs + total_messages)]
    emulator.seed(explorer_events(events))
    # Slow POSTs and polls widen the moments a crash can land in: between the POST and the commit of its answer,
    # and between a poll and the write-back of its round.
    emulator.configure(
        task_duration_s=[1.0, 3.0],
        route_latency_ms={"import_from_explorer": 200, "fetch_task": 100, "list_tasks": 100},
    )
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(3)]
    stream = redis.Redis.from_url(broker_url, socket_timeout=5)
    worker = processes.start_worker("worker")
    beat = processes.start_beat()
    rng = random.Random(5)
    pending_events = iter(events)
    job_ids: list[str] = []
    message_ids: list[str] = []

    def request_jobs() -> list[str]:
        new = [
            requester.request(ImportKind.EXPLORER, datasets[n % 3], {"completion_event_ids": [next(pending_events)]})
            for n in range(JOBS_PER_ROUND)
        ]
        job_ids.extend(new)
        return new

    def submitting(new: list[str]) -> bool:
        with requester.sessions() as session:
            return any((job := get_job(session, j)) is not None and job.status is not JobStatus.PENDING for j in new)

    for round_number in range(ROUNDS):
        new = request_jobs()
        wait_until(
            lambda new=new: submitting(new),  # type: ignore[misc]
            timeout_s=60,
            what="a submit",
            logs=processes.logs,
        )
        time.sleep(rng.uniform(0.0, 0.8))
        own_postgres.crash()
        # Requests that arrive while the ledger is down: read, not writable, so left pending and taken over later.
        for n in range(MESSAGES_WHILE_DOWN):
            message_id = f"down-{round_number}-{n}"
            stream.xadd(STREAM, {"body": explorer_message(message_id, datasets[n % 3], next(pending_events))})
            message_ids.append(message_id)
        time.sleep(DOWN_S)
        own_postgres.start()

    last = request_jobs()
    wait_until(
        lambda: None not in message_jobs(requester.sessions, message_ids).values(),
        timeout_s=60,
        what="the messages sent while the database was down to become jobs",
        logs=processes.logs,
    )
    by_message = message_jobs(requester.sessions, message_ids)
    finished = wait_for_jobs(
        requester.sessions,
        [*job_ids, *(j for j in by_message.values() if j is not None)],
        timeout_s=90,
        on_timeout=lambda: processes.logs() + own_postgres.log(),
    )

    assert worker.poll() is None and beat.poll() is None, processes.logs()
    assert {finished[j].status for j in last} == {JobStatus.COMPLETED}
    figures = count(all_jobs(requester.sessions), emulator.stats(), requested=total_jobs + total_messages)
    print(
        f"postgres crashes={ROUNDS} down={DOWN_S}s: {figures.line()} recovered={recovered(requester.sessions)}"
    )
    assert figures.lost == 0 and figures.doubled == 0, figures.line()
    assert figures.by_status == {"COMPLETED": total_jobs + total_messages}, figures.line()
    stream.close()
