"""`dsimport worker` and `beat` pass unknown options to Celery: a bad one is still a clean error.

The environment passes every start-up check (a migrated ledger, a key, the broker answering on Redis database 10, a
UI password), so each command gets as far as handing its options over; the bad option must then stop it with exit 2
and one line, not a traceback, and not a worker that starts anyway. They run as real processes (a mistake here
would start a worker), all at once to keep the file quick; one that is still running after a while has started
and fails the test. `dsimport flower` checks the options it passes to Flower itself, before anything starts: those
cases are in test_cli_arguments.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store.db import upgrade
from tests.integration.service import REPO

CASES: list[tuple[str, list[str], str]] = [
    ("worker: unknown option", ["worker", "--no-such-option"], "No such option '--no-such-option'"),
    ("worker: concurrency of words", ["worker", "--concurrency", "many"], "Invalid value for '-c' / '--concurrency'"),
    ("worker: unknown pool", ["worker", "--pool", "nope"], "Invalid value for '-P' / '--pool'"),
    ("worker: unknown log level", ["worker", "--loglevel", "LOUD"], "Invalid value for '-l' / '--loglevel'"),
    ("worker: stray argument", ["worker", "now"], "Unable to parse extra configuration from command line. Reason:"),
    ("beat: unknown option", ["beat", "--bogus"], "No such option '--bogus'"),
    ("beat: max interval of words", ["beat", "--max-interval", "x"], "Invalid value for '--max-interval'"),
]


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_", "FLOWER_"))}
    env.update(
        {
            "DSIMPORT_HOME": str(tmp_path),
            "DSIMPORT_DATABASE_URL": database_url,
            "DSIMPORT_BROKER_URL": redis_url,
            "MISTRAL_API_KEY": "sk-badinput-passthrough-0001",
            "DSIMPORT_UI_PASSWORD": "badinput-ui-password",
            "DSIMPORT_FLOWER_PORT": "0",
        }
    )
    return env


def test_a_bad_option_for_celery_is_one_line_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    started = {}
    for name, argv, _ in CASES:
        started[name] = subprocess.Popen(
            [sys.executable, "-m", "cli", *argv],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    failures = []
    for name, argv, expected in CASES:
        process = started[name]
        try:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            failures.append(f"{name}: still running, so it started despite {argv[1:]}\n{err[-2000:]}")
            continue
        if process.returncode != 2 or expected not in err or err.count("\n") != 1 or "Traceback" in err + out:
            failures.append(f"{name}: exit {process.returncode}\n{err[-2000:]}{out[-500:]}")
    assert not failures, "\n\n".join(failures)
