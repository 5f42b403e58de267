"""A whole read of the request stream at once (stream_consumer.process_entries): one ledger transaction for its
jobs, one submit message for them, one MULTI that copies dead letters, acknowledges and counts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.jobs import get_job_by_key
from store.models import DeadLetter, ImportJob
from triggers.messages.intake import Intake, Outcome
from triggers.messages.stream_consumer import StreamConfig, StreamConsumer, process_entries, read_stats

from .conftest import Sent
from .corpus import encode, good


def read_all(client: redis.Redis, config: StreamConfig) -> list[tuple[bytes, dict[bytes, bytes]]]:
    reply: Any = client.xreadgroup(config.group, config.consumer, {config.stream: ">"}, count=1000)
    return list(reply[0][1]) if reply else []


def pending(client: redis.Redis, config: StreamConfig) -> int:
    info: Any = client.xpending(config.stream, config.group)
    return int(info["pending"])


def count(sessions: sessionmaker[Session], table: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


class Batches:
    """Stands in for the submit_batch task: records each batch of job ids it was handed."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, job_ids: list[str]) -> None:
        self.calls.append(list(job_ids))


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture
def batch_intake(session_factory: sessionmaker[Session], sent: Sent, batches: Batches) -> Intake:
    return Intake(session_factory=session_factory, send=sent, send_batch=batches, deadline_s=3600.0)


def test_a_read_becomes_its_jobs_one_submit_message_and_its_dead_letters(
    client: redis.Redis, stream: StreamConfig, batch_intake: Intake, sent: Sent, batches: Batches
) -> None:
    bodies = [
        encode(good("explorer", message_id="a")),
        b"{not json",
        encode(good("campaign", message_id="b")),
        encode(good("explorer", message_id="a")),  # the same message again, in the same read
        encode(good("explorer", message_id="c", completion_event_ids=[])),
    ]
    for body in bodies:
        client.xadd(stream.stream, {"body": body})

    results = process_entries(client, batch_intake, stream, read_all(client, stream))

    outcomes = [r.outcome if r is not None else None for r in results]
    assert outcomes == [
        Outcome.CREATED,
        Outcome.DEAD_LETTERED,
        Outcome.CREATED,
        Outcome.DUPLICATE,
        Outcome.DEAD_LETTERED,
    ]
    assert results[0] is not None and results[3] is not None and results[0].job_id == results[3].job_id
    # One message for the read's new jobs, none alone; each job once.
    assert sent.job_ids == []
    assert results[2] is not None and batches.calls == [[results[0].job_id, results[2].job_id]]
    assert pending(client, stream) == 0
    assert count(batch_intake.session_factory, ImportJob) == 2
    assert count(batch_intake.session_factory, DeadLetter) == 2
    assert client.xlen(stream.dead_letter_stream) == 2
    assert read_stats(client, stream.stream) == {"processed": 5, "created": 2, "duplicate": 1, "dead_lettered": 2}


def test_a_read_whose_jobs_fail_to_commit_is_not_acknowledged(
    client: redis.Redis, stream: StreamConfig, session_factory: sessionmaker[Session], batches: Batches
) -> None:
    def failing_sessions() -> Session:
        raise OperationalError("COMMIT", {}, Exception("the database went away"))

    intake = Intake(
        session_factory=failing_sessions,  # type: ignore[arg-type]
        send=lambda job_id: None,
        send_batch=batches,
        deadline_s=60.0,
    )
    for n in range(3):
        client.xadd(stream.stream, {"body": encode(good(message_id=f"fail-{n}"))})

    with pytest.raises(OperationalError):
        process_entries(client, intake, stream, read_all(client, stream))

    # Every entry of the read is still owed: a consumer claims them again once idle.
    assert pending(client, stream) == 3
    assert batches.calls == [] and count(session_factory, ImportJob) == 0


def test_the_loop_takes_a_read_whole_and_a_redelivered_read_adds_nothing(
    client: redis.Redis, stream: StreamConfig, batch_intake: Intake, batches: Batches
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for message_id in ids:
        client.xadd(stream.stream, {"body": encode(good(message_id=message_id))})
    consumer = StreamConsumer(lambda: redis.Redis(connection_pool=client.connection_pool), batch_intake, stream)
    assert consumer.poll(client) == 0
    assert len(batches.calls) == 1 and len(batches.calls[0]) == 4
    assert consumer.stats.snapshot()["created"] == 4

    # The same messages written again (a producer retrying): found, not created. Still PENDING, they are sent
    # again in one message (harmless: the claim lets one submit through), as a lone duplicate would be.
    for message_id in ids:
        client.xadd(stream.stream, {"body": encode(good(message_id=message_id))})
    assert consumer.poll(client) == 0
    assert consumer.stats.snapshot()["duplicate"] == 4
    assert batches.calls[1] == batches.calls[0]
    assert count(batch_intake.session_factory, ImportJob) == 4
    with batch_intake.session_factory() as session:
        assert all(get_job_by_key(session, f"message:{message_id}") is not None for message_id in ids)
