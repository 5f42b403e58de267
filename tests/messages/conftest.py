"""Fixtures of the queue-message tests: a Redis database of their own (3), an intake on a migrated ledger.

Redis database 3 keeps these tests apart from the other suites' databases when several run at once; set
``DSIMPORT_TEST_MESSAGES_REDIS_URL`` to use another.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from tests.fixtures.redis_db import flushed_redis
from triggers.messages.intake import Intake
from triggers.messages.stream_consumer import StreamConfig, ensure_group

TEST_REDIS_URL = os.environ.get("DSIMPORT_TEST_MESSAGES_REDIS_URL", "redis://127.0.0.1:6379/3")


@pytest.fixture
def redis_url() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, protocol=2)
    yield client
    client.close()


@pytest.fixture
def config() -> StreamConfig:
    suffix = uuid.uuid4().hex[:8]
    return StreamConfig(
        stream=f"test:requests:{suffix}",
        group="dsimport",
        consumer="consumer-a",
        dead_letter_stream=f"test:dead-letters:{suffix}",
        block_ms=100,
        claim_min_idle_ms=200,
        claim_interval_s=0.1,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


@pytest.fixture
def stream(client: redis.Redis, config: StreamConfig) -> StreamConfig:
    ensure_group(client, config)
    return config


@dataclass
class Sent:
    """Stands in for the submit task: records the job ids it was handed."""

    job_ids: list[str] = field(default_factory=list)

    def __call__(self, job_id: str) -> None:
        self.job_ids.append(job_id)


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def intake(session_factory: sessionmaker[Session], sent: Sent) -> Intake:
    return Intake(session_factory=session_factory, send=sent, deadline_s=3600.0, max_bytes=64 * 1024)
