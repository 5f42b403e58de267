"""Security fixtures: Redis database 10, flushed before and after each test.

Set ``DSIMPORT_TEST_SECURITY_REDIS_URL`` to use another Redis database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fixtures.redis_db import flushed_redis

TEST_REDIS_URL = os.environ.get("DSIMPORT_TEST_SECURITY_REDIS_URL", "redis://127.0.0.1:6379/10")


@pytest.fixture
def redis_url() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url
