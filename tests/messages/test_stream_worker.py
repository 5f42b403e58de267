"""Queue messages end to end: real worker processes with the stream bootstep, Redis (database 3), the emulator on a
socket, and the ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.db import make_engine
from store.jobs import get_job_by_key
from store.models import DeadLetter, ImportJob, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.integration.service import REPO, ServiceProcesses, wait_for_jobs
from triggers.messages.message_model import idempotency_key
from triggers.messages.stream_consumer import read_stats
from worker.celery_app import create_app
from worker.settings import Settings

from .corpus import bad_corpus, encode, invalid_bodies

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STREAM = "dsimport:requests"
DEAD = "dsimport:dead-letters"
EVENTS = [f"evt-{n}" for n in range(8)]


@pytest.fixture
def broker_url(redis_url: str) -> str:
    return redis_url  # this suite's database (tests/messages/conftest.py): the broker and the request stream


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {"task_duration_s": (0.3, 0.8), "seed": explorer_events(EVENTS, answer="ok")}


@pytest.fixture
def target(emulator: EmulatorServer) -> str:
    with DatasetsClient(emulator.api_key, base_url=emulator.url) as api:
        return api.create_dataset("target", "filled from the stream").id


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {
        # Polls keep up with imports of 0.3 to 0.8 s.
        "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.3",
        "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
        # Stream reads, take-overs of a dead consumer's entries and backoffs in seconds rather than minutes.
        "DSIMPORT_STREAM_BLOCK_S": "0.5",
        "DSIMPORT_STREAM_CLAIM_MIN_IDLE_S": "2",
        "DSIMPORT_STREAM_CLAIM_INTERVAL_S": "0.5",
        "DSIMPORT_STREAM_BACKOFF_MAX_S": "1",
    }


def message(message_id: str, dataset_id: str, *events: str) -> dict[str, Any]:
    return {"id": message_id, "kind": "explorer", "dataset_id": dataset_id, "completion_event_ids": list(events)}


def wait_for(condition: Callable[[], bool], *, timeout_s: float, on_timeout: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out\n{on_timeout()}")
        time.sleep(0.2)


def jobs_for(
    ledger: sessionmaker[Session], message_ids: list[str], service: ServiceProcesses, timeout_s: float = 60
) -> dict[str, ImportJob]:
    """The job of each message once a worker created it and it ended."""
    found: dict[str, str] = {}

    def all_created() -> bool:
        with ledger() as session:
            for message_id in message_ids:
                job = get_job_by_key(session, idempotency_key(message_id))
                if job is not None:
                    found[message_id] = job.id
        return len(found) == len(message_ids)

    wait_for(all_created, timeout_s=timeout_s, on_timeout=service.logs)
    jobs = wait_for_jobs(ledger, found.values(), timeout_s=timeout_s, on_timeout=service.logs)
    return {message_id: jobs[job_id] for message_id, job_id in found.items()}


def count(ledger: sessionmaker[Session], model: type[Any]) -> int:
    with ledger() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def pending(client: redis.Redis) -> dict[str, int]:
    info: Any = client.xpending(STREAM, "dsimport")
    return {c["name"].decode(): int(c["pending"]) for c in info["consumers"]}


def test_a_message_becomes_one_job_that_completes_whichever_way_and_however_often_it_is_sent(
    processes: ServiceProcesses,
    client: redis.Redis,
    ledger: sessionmaker[Session],
    emulator: EmulatorServer,
    target: str,
    service_env: dict[str, str],
) -> None:
    processes.start_worker("w1")
    processes.start_beat()
    client.xadd(STREAM, {"body": encode(message("order-1", target, "evt-0", "evt-1"))})
    client.xadd(STREAM, {"body": encode(message("order-1", target, "evt-0", "evt-1"))})
    # A Python producer through the Celery task: a new request, and order-1 once more.
    app = create_app(Settings(broker_url=service_env["DSIMPORT_BROKER_URL"]))
    try:
        app.send_task("dsimport.request_import", args=[message("order-2", target, "evt-2")])
        app.send_task("dsimport.request_import", args=[message("order-1", target, "evt-0", "evt-1")])
    finally:
        app.close()
    # An operator with the command line, following the job to its end.
    cli = subprocess.run(
        [sys.executable, "-m", "cli", "messages", "send", "explorer", "--dataset", target,
         "--event", "evt-3", "--id", "order-3", "--wait"],
        env=service_env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr + processes.logs()
    assert cli.stdout.strip() == "order-3"

    jobs = jobs_for(ledger, ["order-1", "order-2", "order-3"], processes)

    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}, processes.logs()
    assert jobs["order-1"].imported_count == 2
    assert jobs["order-1"].origin == f"stream:{STREAM}"
    assert jobs["order-2"].origin == "task:dsimport.request_import"
    assert count(ledger, ImportJob) == 3
    assert count(ledger, DeadLetter) == 0
    assert emulator.stats(include_tasks=False)["tasks_created"] == {target: 3}
    assert read_stats(client, STREAM) == {"processed": 3, "created": 2, "duplicate": 1, "dead_lettered": 0}
    assert sum(pending(client).values()) == 0

    processes.stop()
    log = (processes.log_dir / "w1.log").read_text()
    assert "stream consumer w1@" in log and "stopped:" in log


def generated_bad_bodies(examples: int) -> list[bytes]:
    """Bodies from the Hypothesis generator, collected for sending (no shrinking: nothing fails here)."""
    bodies: list[bytes] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(invalid_bodies())
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    return bodies


def test_bad_messages_are_dead_lettered_while_good_ones_between_them_complete(
    processes: ServiceProcesses,
    client: redis.Redis,
    ledger: sessionmaker[Session],
    emulator: EmulatorServer,
    target: str,
) -> None:
    corpus = bad_corpus()
    generated = generated_bad_bodies(40)
    bad_entries = [entry.fields for entry in corpus] + [{b"body": body} for body in generated]
    good_ids = []
    for n, fields in enumerate(bad_entries):
        if n % 10 == 0:
            good_ids.append(f"good-{n}")
            client.xadd(STREAM, {"body": encode(message(good_ids[-1], target, EVENTS[len(good_ids) % 8]))})
        client.xadd(STREAM, fields)
    processes.start_worker("w1")
    processes.start_beat()

    jobs = jobs_for(ledger, good_ids, processes)
    wait_for(lambda: count(ledger, DeadLetter) == len(bad_entries), timeout_s=30, on_timeout=processes.logs)

    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}
    assert count(ledger, ImportJob) == len(good_ids) >= 9
    with ledger() as session:
        letters = list(session.scalars(select(DeadLetter)))
    assert all(letter.reason and "\n" not in letter.reason for letter in letters)
    by_entry_reason = sorted(letter.reason for letter in letters)
    for entry in corpus:
        assert any(entry.reason in reason for reason in by_entry_reason), entry.name
    assert client.xlen(DEAD) == len(bad_entries)
    stats = read_stats(client, STREAM)
    assert stats["dead_lettered"] == len(bad_entries)
    assert stats["created"] == len(good_ids)
    assert sum(pending(client).values()) == 0
    assert sum(emulator.stats(include_tasks=False)["tasks_created"].values()) == len(good_ids)


class LedgerLock:
    """Holds the ledger's write lock from the test, so a consumer blocks after reading, before committing."""

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)
        self.conn: Connection = self.engine.connect()
        self.conn.begin()  # SQLite: BEGIN IMMEDIATE takes the write lock
        if self.engine.dialect.name == "postgresql":
            self.conn.execute(text("LOCK TABLE import_jobs IN ACCESS EXCLUSIVE MODE"))

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()
        self.engine.dispose()


def test_entries_read_by_a_killed_worker_are_claimed_by_another_and_none_is_lost(
    processes: ServiceProcesses,
    client: redis.Redis,
    ledger: sessionmaker[Session],
    emulator: EmulatorServer,
    target: str,
    database_url: str,
) -> None:
    first = processes.start_worker("w1")
    wait_for(lambda: client.exists(STREAM) == 1, timeout_s=30, on_timeout=processes.logs)  # group created
    lock = LedgerLock(database_url)
    try:
        ids = [f"kill-{n}" for n in range(5)]
        # In one transaction, so the consumer's blocked read wakes up to all five at once.
        pipe = client.pipeline(transaction=True)
        for n, message_id in enumerate(ids):
            pipe.xadd(STREAM, {"body": encode(message(message_id, target, EVENTS[n]))})
        pipe.execute()
        # w1 has read all five and is stuck writing the first one.
        wait_for(
            lambda: pending(client) == {name: 5 for name in pending(client) if name.startswith("w1@")} != {},
            timeout_s=20,
            on_timeout=lambda: f"pending: {pending(client)}\n{processes.logs()}",
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        lock.release()
    assert count(ledger, ImportJob) == 0
    assert sum(pending(client).values()) == 5  # still owed by the dead consumer

    processes.start_worker("w2")
    processes.start_beat()
    jobs = jobs_for(ledger, ids, processes)

    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}
    assert count(ledger, ImportJob) == 5
    assert sum(pending(client).values()) == 0
    assert sum(emulator.stats(include_tasks=False)["tasks_created"].values()) == 5
    assert "took over 5 stale entries" in (processes.log_dir / "w2.log").read_text()
