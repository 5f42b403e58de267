"""`dsimport import` against a SQLite ledger whose write lock another process holds past the busy timeout.

Run as real processes: the command waits (retrying with backoff) until the lock is released and records its
request; held past ``DSIMPORT_DB_LOCKED_RETRY_S``, it gives up with one line and exit 1, having recorded nothing.
The broker is the suite's flushed test Redis (``broker_url``, tests/fixtures/service_stack.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import make_engine, make_session_factory, upgrade
from store.models import ImportJob

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"
BUSY_TIMEOUT_S = 0.2


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    upgrade(f"sqlite:///{path}")
    return path


def command_env(tmp_path: Path, ledger_path: Path, broker_url: str, *, retry_s: float) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DSIMPORT_", "MISTRAL_"))}
    env.update(
        DSIMPORT_HOME=str(tmp_path / "home"),
        DSIMPORT_DATABASE_URL=f"sqlite:///{ledger_path}",
        DSIMPORT_BROKER_URL=broker_url,
        DSIMPORT_DB_BUSY_TIMEOUT_S=str(BUSY_TIMEOUT_S),
        DSIMPORT_DB_LOCKED_RETRY_S=str(retry_s),
    )
    return env


def start_import(env: dict[str, str], key: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "cli", "import", "campaign", "--dataset", DATASET, "--campaign", CAMPAIGN]
    return subprocess.Popen(
        [*argv, "--key", key], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def has_ledger_open(pid: int, path: Path) -> bool:
    """The process has opened the ledger (it checks the migration first, then writes)."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def jobs(path: Path) -> list[ImportJob]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        with make_session_factory(engine, read_only=True)() as session:
            return list(session.scalars(select(ImportJob)))
    finally:
        engine.dispose()


@pytest.mark.timeout(90)
def test_the_request_is_recorded_once_the_lock_is_released(tmp_path: Path, ledger_path: Path, broker_url: str) -> None:
    holder = hold_write_lock(ledger_path)
    try:
        process = start_import(command_env(tmp_path, ledger_path, broker_url, retry_s=60), "k-waits")
        deadline = time.monotonic() + 45
        while not has_ledger_open(process.pid, ledger_path):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the command never opened the ledger"
            time.sleep(0.05)
        # From its migration check to its write the command needs well under this; it then waits on the lock
        # for many busy timeouts.
        time.sleep(3.0)
        assert process.poll() is None, process.communicate()
        released_at = datetime.now(UTC)
        holder.execute("COMMIT")
    finally:
        holder.close()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    [job] = jobs(ledger_path)
    assert out.strip() == job.id
    assert "Traceback" not in err
    # The command stamped its request before it asked for the lock, and that was longer than its busy timeout
    # before the lock was released: it did wait past the point where it used to fail.
    assert job.created_at < released_at - timedelta(seconds=BUSY_TIMEOUT_S * 2)


@pytest.mark.timeout(90)
def test_a_lock_held_past_the_bound_is_one_line_and_exit_1(tmp_path: Path, ledger_path: Path, broker_url: str) -> None:
    holder = hold_write_lock(ledger_path)
    try:
        process = start_import(command_env(tmp_path, ledger_path, broker_url, retry_s=1.0), "k-gives-up")
        # Held for as long as the command runs: it must give up on its own, soon after its bound.
        out, err = process.communicate(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert process.returncode == 1
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dsimport: error: a write to sqlite:///")
    assert "stayed locked by other writers" in lines[0]
    assert jobs(ledger_path) == []
