"""Security fixtures: Redis database 10, flushed before and after each test.

Set ``DSIMPORT_TEST_SECURITY_REDIS_URL`` to use another Redis database than the session's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.redis_db import flushed_redis, redis_test_url

TEST_REDIS_URL = redis_test_url("DSIMPORT_TEST_SECURITY_REDIS_URL", 10)


@pytest.fixture
def redis_url() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url
