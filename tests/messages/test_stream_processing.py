"""The stream consumer's functions and loop against a real Redis (database 3) and a real ledger, without a worker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.dead_letters import decode_body, list_dead_letters
from store.jobs import get_job_by_key
from store.models import DeadLetter, ImportJob, JobStatus
from triggers.messages import stream_consumer
from triggers.messages.intake import Intake, Outcome
from triggers.messages.stream_consumer import (
    StreamConfig,
    StreamConsumer,
    claim_stale,
    ensure_group,
    forget_idle_consumers,
    process_entry,
    read_stats,
)

from .conftest import Sent
from .corpus import bad_corpus, encode, good


def add(client: redis.Redis, config: StreamConfig, message: Any) -> bytes:
    entry_id: bytes = client.xadd(config.stream, {"body": encode(message)})
    return entry_id


def read_as(client: redis.Redis, config: StreamConfig, consumer: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    reply: Any = client.xreadgroup(config.group, consumer, {config.stream: ">"}, count=1000)
    return list(reply[0][1]) if reply else []


def pending(client: redis.Redis, config: StreamConfig) -> int:
    info: Any = client.xpending(config.stream, config.group)
    return int(info["pending"])


def job_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ImportJob)) or 0)


def test_a_valid_entry_becomes_a_job_then_is_acknowledged(
    client: redis.Redis, stream: StreamConfig, intake: Intake, sent: Sent
) -> None:
    add(client, stream, good("explorer", message_id="order-1"))
    ((entry_id, fields),) = read_as(client, stream, stream.consumer)
    assert pending(client, stream) == 1

    result = process_entry(client, intake, stream, entry_id, fields)

    assert result is not None and result.outcome is Outcome.CREATED
    assert pending(client, stream) == 0
    assert sent.job_ids == [result.job_id]
    with intake.session_factory() as session:
        job = get_job_by_key(session, "message:order-1")
        assert job is not None and job.id == result.job_id
        assert job.status is JobStatus.PENDING
        assert job.params == {"completion_event_ids": ["evt-1", "evt-2"]}
        assert job.origin == f"stream:{stream.stream}"
    assert read_stats(client, stream.stream) == {"processed": 1, "created": 1, "duplicate": 0, "dead_lettered": 0}


def test_the_same_message_twice_is_one_job(
    client: redis.Redis, stream: StreamConfig, intake: Intake, sent: Sent
) -> None:
    message = good("campaign", message_id="order-2")
    add(client, stream, message)
    add(client, stream, message | {"dataset_id": str(uuid.uuid4())})  # the id, not the content, names a request
    outcomes = [process_entry(client, intake, stream, eid, fields) for eid, fields in read_as(client, stream, "c")]

    assert [r.outcome for r in outcomes if r is not None] == [Outcome.CREATED, Outcome.DUPLICATE]
    assert len({r.job_id for r in outcomes if r is not None}) == 1
    assert job_count(intake.session_factory) == 1
    assert set(sent.job_ids) == {outcomes[0].job_id if outcomes[0] else None}
    assert read_stats(client, stream.stream)["duplicate"] == 1


def test_every_bad_entry_is_dead_lettered_copied_and_acknowledged(
    client: redis.Redis, stream: StreamConfig, intake: Intake, sent: Sent
) -> None:
    corpus = bad_corpus(intake.max_bytes)
    entry_ids = [client.xadd(stream.stream, entry.fields) for entry in corpus]
    results = [process_entry(client, intake, stream, eid, fields) for eid, fields in read_as(client, stream, "c")]

    assert all(r is not None and r.outcome is Outcome.DEAD_LETTERED for r in results)
    assert pending(client, stream) == 0
    assert sent.job_ids == []
    assert job_count(intake.session_factory) == 0
    with intake.session_factory() as session:
        letters = {letter.entry_id: letter for letter in list_dead_letters(session, limit=1000)}
    assert len(letters) == len(corpus)
    copies: Any = client.xrange(stream.dead_letter_stream)
    assert len(copies) == len(corpus)
    copy_by_entry = {fields[b"entry_id"].decode(): fields for _, fields in copies}
    for entry, entry_id in zip(corpus, entry_ids, strict=True):
        letter = letters[entry_id.decode()]
        assert entry.reason in letter.reason, entry.name
        assert letter.stream == f"stream:{stream.stream}"
        copy = copy_by_entry[entry_id.decode()]
        assert copy[b"reason"].decode() == letter.reason
        assert copy[b"dead_letter_id"].decode() == str(letter.id)
        kept = decode_body(letter.body, letter.body_base64)
        assert copy[b"body"] == kept
        if entry.body is None:
            assert json.loads(kept) == {k.decode(): v.decode() for k, v in entry.fields.items()}
        elif len(entry.body) > intake.max_bytes:
            assert kept == entry.body[: intake.max_bytes]
            assert letter.body_size == len(entry.body)
        else:
            assert kept == entry.body
    assert read_stats(client, stream.stream)["dead_lettered"] == len(corpus)


def test_a_schema_failure_keeps_the_message_id(client: redis.Redis, stream: StreamConfig, intake: Intake) -> None:
    add(client, stream, good(message_id="order-3", completion_event_ids=[]))
    ((entry_id, fields),) = read_as(client, stream, "c")
    result = process_entry(client, intake, stream, entry_id, fields)
    assert result is not None and result.message_id == "order-3"
    copies: Any = client.xrange(stream.dead_letter_stream)
    assert copies[0][1][b"message_id"] == b"order-3"


def test_an_entry_processed_again_after_a_crash_before_its_ack_changes_nothing(
    client: redis.Redis, stream: StreamConfig, intake: Intake
) -> None:
    add(client, stream, good(message_id="order-4"))
    client.xadd(stream.stream, {"body": b"{broken"})
    (good_entry, bad_entry) = read_as(client, stream, "c")
    # The first delivery committed its rows and died before acknowledging.
    for entry_id, fields in (good_entry, bad_entry):
        intake.accept(fields[b"body"], source=stream.source, entry_id=entry_id.decode())
    assert pending(client, stream) == 2

    again = [process_entry(client, intake, stream, eid, fields) for eid, fields in (good_entry, bad_entry)]

    assert [r.outcome for r in again if r is not None] == [Outcome.DUPLICATE, Outcome.DEAD_LETTERED]
    assert pending(client, stream) == 0
    assert job_count(intake.session_factory) == 1
    with intake.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 1


def test_an_entry_whose_job_row_fails_to_commit_is_not_acknowledged(
    client: redis.Redis, stream: StreamConfig, session_factory: sessionmaker[Session], sent: Sent
) -> None:
    def failing_sessions() -> Session:
        raise OperationalError("COMMIT", {}, Exception("the database went away"))

    intake = Intake(session_factory=failing_sessions, send=sent, deadline_s=60.0)  # type: ignore[arg-type]
    add(client, stream, good(message_id="order-commit"))
    ((entry_id, fields),) = read_as(client, stream, stream.consumer)

    with pytest.raises(OperationalError):
        process_entry(client, intake, stream, entry_id, fields)

    # Still owed: a consumer claims it again once idle. Acknowledged here, the request would be gone for good.
    assert pending(client, stream) == 1
    assert job_count(session_factory) == 0


def test_entries_of_a_dead_consumer_are_claimed_once_idle(
    client: redis.Redis, stream: StreamConfig, intake: Intake
) -> None:
    for n in range(3):
        add(client, stream, good(message_id=f"order-claim-{n}"))
    assert len(read_as(client, stream, "dead-consumer")) == 3

    assert claim_stale(client, stream) == []  # not idle long enough yet
    time.sleep(stream.claim_min_idle_ms / 1000 + 0.05)
    claimed = claim_stale(client, stream)

    assert len(claimed) == 3
    info: Any = client.xpending(stream.stream, stream.group)
    assert {c["name"]: c["pending"] for c in info["consumers"]} == {stream.consumer.encode(): 3}
    for entry_id, fields in claimed:
        process_entry(client, intake, stream, entry_id, fields)
    assert pending(client, stream) == 0
    assert job_count(intake.session_factory) == 3


def test_claiming_pages_through_many_entries(client: redis.Redis, stream: StreamConfig) -> None:
    small = StreamConfig(**{**stream.__dict__, "batch_size": 4})
    for n in range(10):
        add(client, small, good(message_id=f"page-{n}"))
    read_as(client, small, "dead-consumer")
    time.sleep(small.claim_min_idle_ms / 1000 + 0.05)
    assert len(claim_stale(client, small)) == 10


def test_a_deleted_entry_is_acknowledged_and_skipped(
    client: redis.Redis, stream: StreamConfig, intake: Intake
) -> None:
    entry_id = add(client, stream, good())
    read_as(client, stream, stream.consumer)
    client.xdel(stream.stream, entry_id)
    reply: Any = client.xreadgroup(stream.group, stream.consumer, {stream.stream: "0"})
    ((_, fields),) = reply[0][1]
    assert process_entry(client, intake, stream, entry_id, fields) is None
    assert pending(client, stream) == 0


def test_the_group_reads_entries_written_before_it_existed(
    client: redis.Redis, config: StreamConfig, intake: Intake
) -> None:
    add(client, config, good(message_id="early"))
    ensure_group(client, config)
    ensure_group(client, config)  # a second worker starting: no error
    assert len(read_as(client, config, "c")) == 1


def test_idle_consumers_holding_nothing_are_forgotten(
    client: redis.Redis, stream: StreamConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for consumer in ("gone-worker", stream.consumer):  # both hold nothing; only the other one goes
        add(client, stream, good())
        for entry_id, _ in read_as(client, stream, consumer):
            client.xack(stream.stream, stream.group, entry_id)
    add(client, stream, good())
    read_as(client, stream, "busy-worker")  # holds an entry: kept
    monkeypatch.setattr(stream_consumer, "_FORGET_CONSUMER_IDLE_MS", -1)
    assert forget_idle_consumers(client, stream) == ["gone-worker"]
    consumers: Any = client.xinfo_consumers(stream.stream, stream.group)
    assert sorted(c["name"] for c in consumers) == [b"busy-worker", stream.consumer.encode()]


# --- the loop --------------------------------------------------------------------------------------------------


@pytest.fixture
def run_consumer() -> Iterator[Callable[[StreamConsumer], threading.Thread]]:
    started: list[tuple[StreamConsumer, threading.Thread]] = []

    def run(consumer: StreamConsumer) -> threading.Thread:
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        started.append((consumer, thread))
        return thread

    yield run
    for consumer, thread in started:
        consumer.stop()
        thread.join(5)
        assert not thread.is_alive(), "the consumer did not stop"


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_the_loop_processes_good_and_bad_entries_and_stops_promptly(
    client: redis.Redis,
    redis_url: str,
    config: StreamConfig,
    intake: Intake,
    run_consumer: Callable[[StreamConsumer], threading.Thread],
) -> None:
    consumer = StreamConsumer(lambda: redis.Redis.from_url(redis_url, protocol=2), intake, config)
    thread = run_consumer(consumer)
    assert consumer.ready.wait(5)
    for n in range(5):
        add(client, config, good(message_id=f"loop-{n}"))
        client.xadd(config.stream, {"body": b"not json"})
    add(client, config, good(message_id="loop-0"))

    wait_until(lambda: consumer.stats.processed == 11)

    assert consumer.stats.snapshot() | {"claimed": 0, "trimmed": 0} == {
        "processed": 11,
        "created": 5,
        "duplicate": 1,
        "dead_lettered": 5,
        "deleted": 0,
        "claimed": 0,
        "trimmed": 0,
        "errors": 0,
        "reconnects": 0,
    }
    assert read_stats(client, config.stream)["processed"] == 11
    started = time.monotonic()
    consumer.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < config.block_ms / 1000 + 1


def test_the_loop_survives_redis_going_away(
    client: redis.Redis,
    redis_url: str,
    config: StreamConfig,
    intake: Intake,
    run_consumer: Callable[[StreamConsumer], threading.Thread],
) -> None:
    name = f"test-consumer-{uuid.uuid4().hex[:8]}"
    attempts = {"n": 0}

    def connect() -> redis.Redis:
        attempts["n"] += 1
        if attempts["n"] <= 2:
            raise redis.ConnectionError("Redis is restarting")
        return redis.Redis.from_url(redis_url, protocol=2, client_name=name)

    consumer = StreamConsumer(connect, intake, config)
    run_consumer(consumer)
    assert consumer.ready.wait(5)
    add(client, config, good(message_id="before"))
    wait_until(lambda: consumer.stats.processed == 1)

    # Cut the consumer's connection in the middle of its blocking read.
    clients: Any = client.client_list()
    for info in clients:
        if info.get("name") == name:
            client.client_kill_filter(_id=info["id"])
    add(client, config, good(message_id="after"))
    wait_until(lambda: consumer.stats.processed == 2)

    assert consumer.stats.reconnects >= 3
    assert pending(client, config) == 0
    assert job_count(intake.session_factory) == 2


def test_an_entry_that_fails_on_the_database_stays_pending_and_is_retried(
    client: redis.Redis,
    redis_url: str,
    config: StreamConfig,
    session_factory: sessionmaker[Session],
    sent: Sent,
    run_consumer: Callable[[StreamConsumer], threading.Thread],
) -> None:
    failures = {"left": 2}

    def flaky_sessions() -> Session:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("SELECT 1", {}, Exception("the database is restarting"))
        return session_factory()

    intake = Intake(session_factory=flaky_sessions, send=sent, deadline_s=60.0)  # type: ignore[arg-type]
    consumer = StreamConsumer(lambda: redis.Redis.from_url(redis_url, protocol=2), intake, config)
    run_consumer(consumer)
    assert consumer.ready.wait(5)
    add(client, config, good(message_id="order-db"))

    wait_until(lambda: consumer.stats.processed == 1)

    assert consumer.stats.errors >= 1
    assert consumer.stats.claimed >= 1
    assert pending(client, config) == 0
    assert job_count(session_factory) == 1


def test_the_loop_recreates_a_group_deleted_under_it(
    client: redis.Redis,
    redis_url: str,
    config: StreamConfig,
    intake: Intake,
    run_consumer: Callable[[StreamConsumer], threading.Thread],
) -> None:
    consumer = StreamConsumer(lambda: redis.Redis.from_url(redis_url, protocol=2), intake, config)
    run_consumer(consumer)
    assert consumer.ready.wait(5)
    client.delete(config.stream)  # an operator's FLUSHDB, or the stream trimmed away with its group
    add(client, config, good(message_id="after-flush"))
    wait_until(lambda: consumer.stats.processed == 1)
    assert consumer.stats.reconnects >= 1
    assert job_count(intake.session_factory) == 1
