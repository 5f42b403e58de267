"""Redis, broker and request stream at once, killed and restarted under a running service.

A worker that outlives its broker is not enough: Celery issues #8082 and #10205 show workers alive and idle after
a reconnect, and here Celery 5.7 stopped the worker outright on about one restart in four ("Unrecoverable error"
while closing the lost connection, see worker.broker_guard). So after each restart new work must get done by the
same worker process, which must still be running at the end: imports requested through
the broker, and requests written to the stream, all end COMPLETED with one remote import each. The Redis here is a
server of the test's own, with ``appendonly yes`` and ``appendfsync always``; with that, entries written while no
worker reads survive a crash of Redis too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.jobs import get_job
from store.models import ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.fixtures.servers import RedisServer, redis_server
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs

from .harness import (
    FAST_RECOVERY_ENV,
    STREAM,
    all_jobs,
    count,
    explorer_message,
    message_jobs,
    recovered,
    wait_until,
)

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROUNDS = 5
JOBS_PER_ROUND = 4
MESSAGES_PER_ROUND = 4
DOWN_S = 1.5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def broker_url(own_redis: RedisServer) -> str:
    # Broker and request stream on the test's own Redis (the stream defaults to the broker's server).
    return own_redis.url(0)


def started(requester: Requester, job_ids: list[str]) -> bool:
    with requester.sessions() as session:
        return any((job := get_job(session, j)) is not None and job.status is not JobStatus.PENDING for j in job_ids)


def test_the_same_worker_consumes_again_after_each_redis_restart(
    own_redis: RedisServer,
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    requester: Requester,
) -> None:
    processes.env.update(FAST_RECOVERY_ENV)
    total = (ROUNDS + 1) * (JOBS_PER_ROUND + MESSAGES_PER_ROUND)
    events = [f"evt-{n}" for n in range(total)]
    emulator.seed(explorer_events(events))
    emulator.configure(task_duration_s=[0.5, 2.0])
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(2)]
    stream = redis.Redis.from_url(own_redis.url(0), socket_timeout=5)
    worker = processes.start_worker("worker")
    beat = processes.start_beat()
    rng = random.Random(11)
    job_ids: list[str] = []
    message_ids: list[str] = []
    pending_events = iter(events)

    def request_round(round_number: int) -> list[str]:
        new_jobs = [
            requester.request(ImportKind.EXPLORER, datasets[n % 2], {"completion_event_ids": [next(pending_events)]})
            for n in range(JOBS_PER_ROUND)
        ]
        for n in range(MESSAGES_PER_ROUND):
            message_id = f"round-{round_number}-msg-{n}"
            stream.xadd(STREAM, {"body": explorer_message(message_id, datasets[n % 2], next(pending_events))})
            message_ids.append(message_id)
        job_ids.extend(new_jobs)
        return new_jobs

    restarted_at: list[float] = []
    for round_number in range(ROUNDS):
        new_jobs = request_round(round_number)
        # Break Redis while the worker is busy: once this round's first submit has started.
        wait_until(
            lambda new_jobs=new_jobs: started(requester, new_jobs),  # type: ignore[misc]
            timeout_s=60,
            what="a submit",
            logs=processes.logs,
        )
        time.sleep(rng.uniform(0.0, 0.6))
        own_redis.restart(down_s=DOWN_S)
        restarted_at.append(time.monotonic())

    # After the last restart: work that exists only now, so only a worker that consumes again can do it.
    last_jobs = request_round(ROUNDS)
    last_messages = message_ids[-MESSAGES_PER_ROUND:]
    wait_until(
        lambda: None not in message_jobs(requester.sessions, last_messages).values(),
        timeout_s=60,
        what="the stream entries written after the last restart to become jobs",
        logs=lambda: processes.logs() + own_redis.log(),
    )
    by_message = message_jobs(requester.sessions, message_ids)
    assert None not in by_message.values(), by_message
    finished = wait_for_jobs(
        requester.sessions,
        [*job_ids, *(j for j in by_message.values() if j is not None)],
        timeout_s=90,
        on_timeout=processes.logs,
    )
    recovered_in_s = time.monotonic() - restarted_at[-1]

    # The same processes did it all: neither worker nor beat died or was replaced.
    assert worker.poll() is None and beat.poll() is None, processes.logs()
    assert {finished[j].status for j in last_jobs} == {JobStatus.COMPLETED}
    figures = count(all_jobs(requester.sessions), emulator.stats(), requested=len(job_ids) + len(message_ids))
    print(
        f"redis restarts={ROUNDS} down={DOWN_S}s, last batch done {recovered_in_s:.1f}s after: {figures.line()} "
        f"recovered={recovered(requester.sessions)}"
    )
    assert figures.lost == 0 and figures.doubled == 0, figures.line()
    assert figures.by_status == {"COMPLETED": total}, figures.line()
    log = (processes.log_dir / "worker.log").read_text(errors="replace")
    assert log.count("Connected to redis://") >= ROUNDS + 1, "the worker never reconnected to the broker"
    # Restarts where Celery could not close the lost connection (worker.broker_guard kept the worker alive).
    print(f"lost connections dropped by the guard: {log.count('could not be closed cleanly')}")
    stream.close()


def test_requests_written_before_a_redis_crash_survive_it(
    own_redis: RedisServer,
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    requester: Requester,
) -> None:
    processes.env.update(FAST_RECOVERY_ENV)
    # No re-send of PENDING jobs by the sweep here: a submit message must come through the crash itself.
    processes.env["DSIMPORT_STALE_PENDING_S"] = "600"
    events = [f"evt-{n}" for n in range(12)]
    emulator.seed(explorer_events(events))
    target = api.create_dataset("target", "d").id
    stream = redis.Redis.from_url(own_redis.url(0), socket_timeout=5)

    # A first worker reads a message (the consumer group exists from then on), then stops.
    worker = processes.start_worker("worker-1")
    stream.xadd(STREAM, {"body": explorer_message("before-0", target, events[0])})
    wait_until(
        lambda: None not in message_jobs(requester.sessions, ["before-0"]).values(),
        timeout_s=60,
        what="the first message to become a job",
        logs=processes.logs,
    )
    processes.stop()
    assert worker.poll() is not None

    # Written while no worker runs: stream entries, and submit messages on the broker's queue.
    message_ids = [f"written-{n}" for n in range(6)]
    for n, message_id in enumerate(message_ids):
        stream.xadd(STREAM, {"body": explorer_message(message_id, target, events[1 + n])})
    job_ids = [
        requester.request(ImportKind.EXPLORER, target, {"completion_event_ids": [event]}) for event in events[7:12]
    ]
    stream.close()
    own_redis.kill()
    own_redis.start()
    assert redis.Redis.from_url(own_redis.url(0)).xlen(STREAM) == 1 + len(message_ids)

    processes.start_worker("worker-2")
    processes.start_beat()
    wait_until(
        lambda: None not in message_jobs(requester.sessions, message_ids).values(),
        timeout_s=60,
        what="the entries written before the crash to become jobs",
        logs=processes.logs,
    )
    by_message = message_jobs(requester.sessions, ["before-0", *message_ids])
    wait_for_jobs(
        requester.sessions,
        [*job_ids, *(j for j in by_message.values() if j is not None)],
        timeout_s=60,
        on_timeout=processes.logs,
    )
    jobs = all_jobs(requester.sessions)
    figures = count(jobs, emulator.stats(), requested=1 + len(message_ids) + len(job_ids))
    print(f"written before a Redis crash: {figures.line()}")
    assert figures.lost == 0 and figures.doubled == 0, figures.line()
    assert figures.by_status == {"COMPLETED": 1 + len(message_ids) + len(job_ids)}, figures.line()
    # Each submit came from the message that survived, not from a re-send by the recovery sweep.
    assert all(jobs[job_id].attempts == 1 for job_id in job_ids)
