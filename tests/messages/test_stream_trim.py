"""Trimming the request stream, on a real Redis: acknowledged entries go; pending and undelivered ones never do."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from store.jobs import get_job_by_key
from triggers.messages.intake import Intake
from triggers.messages.stream_consumer import StreamConfig, StreamConsumer, trim_acknowledged

from .conftest import Sent

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"


def ids_in(client: redis.Redis, stream: str) -> list[bytes]:
    entries: Any = client.xrange(stream)
    return [entry_id for entry_id, _fields in entries]


def add(client: redis.Redis, stream: str, count: int) -> list[bytes]:
    return [client.xadd(stream, {"body": f'{{"n": {n}}}'}) for n in range(count)]  # type: ignore[misc]


def deliver(client: redis.Redis, config: StreamConfig, count: int, consumer: str = "c1") -> list[bytes]:
    reply: Any = client.xreadgroup(config.group, consumer, {config.stream: ">"}, count=count)
    return [entry_id for entry_id, _fields in reply[0][1]]


def test_acknowledged_entries_go_pending_and_undelivered_ones_stay(client: redis.Redis, stream: StreamConfig) -> None:
    e1, e2, e3, e4, e5 = add(client, stream.stream, 5)
    assert deliver(client, stream, 3) == [e1, e2, e3]
    client.xack(stream.stream, stream.group, e1, e3)
    # e2 is pending (read, never acknowledged): e3 after it stays too, since a trim only cuts below a point.
    assert trim_acknowledged(client, stream.stream) == 1
    assert ids_in(client, stream.stream) == [e2, e3, e4, e5]
    # Still pending: nothing more goes, however often it runs.
    assert trim_acknowledged(client, stream.stream) == 0
    client.xack(stream.stream, stream.group, e2)
    # Everything delivered is acknowledged now: up to the last delivered entry goes, the undelivered stay.
    assert trim_acknowledged(client, stream.stream) == 2
    assert ids_in(client, stream.stream) == [e4, e5]
    pending: Any = client.xpending(stream.stream, stream.group)
    assert pending["pending"] == 0
    # The undelivered entries are still read by the group afterwards.
    assert deliver(client, stream, 10) == [e4, e5]


def test_a_pending_entry_survives_and_can_still_be_claimed(client: redis.Redis, stream: StreamConfig) -> None:
    e1, e2, e3 = add(client, stream.stream, 3)
    deliver(client, stream, 3, consumer="dead")
    client.xack(stream.stream, stream.group, e2, e3)
    assert trim_acknowledged(client, stream.stream) == 0
    claimed: Any = client.xautoclaim(stream.stream, stream.group, "alive", min_idle_time=0, start_id="0-0")
    assert [entry_id for entry_id, _fields in claimed[1]] == [e1]
    assert claimed[1][0][1] == {b"body": b'{"n": 0}'}


def test_another_group_on_the_stream_keeps_what_it_has_not_read(client: redis.Redis, stream: StreamConfig) -> None:
    e1, e2, e3 = add(client, stream.stream, 3)
    client.xgroup_create(stream.stream, "audit", id="0")
    deliver(client, stream, 3)
    client.xack(stream.stream, stream.group, e1, e2, e3)
    assert trim_acknowledged(client, stream.stream) == 0  # "audit" has read nothing yet
    audit: Any = client.xreadgroup("audit", "a1", {stream.stream: ">"}, count=1)
    client.xack(stream.stream, "audit", audit[0][1][0][0])
    assert trim_acknowledged(client, stream.stream) == 1
    assert ids_in(client, stream.stream) == [e2, e3]


def test_a_stream_without_groups_or_entries_is_left_alone(client: redis.Redis, config: StreamConfig) -> None:
    assert trim_acknowledged(client, config.stream) == 0  # no such key
    add(client, config.stream, 2)
    assert trim_acknowledged(client, config.stream) == 0  # no group reads it: nothing is known to be done
    assert len(ids_in(client, config.stream)) == 2


@pytest.mark.timeout(30)
def test_the_consumer_trims_what_it_processed(
    client: redis.Redis, stream: StreamConfig, intake: Intake, sent: Sent, session_factory: sessionmaker[Session]
) -> None:
    config = StreamConfig(**{**stream.__dict__, "trim_interval_s": 0.2})
    body = '{"id": "m-%d", "kind": "campaign", "dataset_id": "%s", "campaign_id": "%s"}'
    for n in range(5):
        client.xadd(config.stream, {"body": body % (n, DATASET, CAMPAIGN)})
    consumer = StreamConsumer(lambda: redis.Redis.from_url(_url(client), protocol=2), intake, config)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        # Live first: every entry became a job. Then the entries, all acknowledged, leave the stream.
        _wait(lambda: len(sent.job_ids) == 5, timeout_s=20)
        _wait(lambda: client.xlen(config.stream) == 0, timeout_s=5)
    finally:
        consumer.stop()
        thread.join(5)
    with session_factory() as session:
        assert all(get_job_by_key(session, f"message:m-{n}") is not None for n in range(5))
    assert consumer.stats.snapshot()["trimmed"] == 5


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def _wait(condition: Any, *, timeout_s: float) -> None:
    event = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("condition not met in time")
