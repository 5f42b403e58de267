"""Fixtures of the queue-message tests: a Redis database of their own (3), an intake on a migrated ledger.

Redis database 3 keeps these tests apart from the other suites' databases when several run at once; set
``DSIMPORT_TEST_MESSAGES_REDIS_URL`` to use another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from tests.fixtures.redis_db import flushed_redis, redis_test_url
from tests.fixtures.streams import stream_config
from triggers.messages.intake import Intake
from triggers.messages.stream_consumer import StreamConfig, ensure_group


@pytest.fixture
def redis_url() -> Iterator[str]:
    with flushed_redis(redis_test_url("DSIMPORT_TEST_MESSAGES_REDIS_URL", 3)) as url:
        yield url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, protocol=2)
    yield client
    client.close()


@pytest.fixture
def config() -> StreamConfig:
    return stream_config("test", claim_min_idle_ms=200, claim_interval_s=0.1)


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
