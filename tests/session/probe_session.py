"""Run by test_session_services.py in a pytest session of its own (not collected otherwise: no test_ prefix).

Records what the session gave it into the JSON file named by ``PROBE_OUT``: the Redis URL of every suite, what the
Redis server says of itself, what a child process inherits, and the PostgreSQL server of the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.fixtures.databases import PostgresServer
from tests.fixtures.session_services import BENCH_REDIS_VARIABLE, REDIS_URL_VARIABLES


def _record(**found: object) -> None:
    path = Path(os.environ["PROBE_OUT"])
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, **found}))


def test_redis() -> None:
    urls = {name: os.environ.get(name) for name in (*REDIS_URL_VARIABLES, BENCH_REDIS_VARIABLE)}
    client = redis.Redis.from_url(os.environ["DSIMPORT_TEST_REDIS_URL"])
    info = client.info("server")
    client.close()
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('DSIMPORT_TEST_MESSAGES_REDIS_URL'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    _record(urls=urls, executable=info.get("executable", ""), child=child.stdout.strip())


def test_postgres(postgres_server: PostgresServer) -> None:
    _record(postgres_url=postgres_server.url, postgres_error=postgres_server.error)
