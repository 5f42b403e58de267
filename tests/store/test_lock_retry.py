"""Waiting out a locked SQLite ledger: the retry helper alone, then an engine whose write lock is held elsewhere."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from store.db import make_engine, make_session_factory, upgrade
from store.errors import StoreError
from store.lock_retry import DatabaseLockedError, is_locked_error, retry_when_locked
from store.models import ImportJob

from .conftest import add_job


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def locked() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("database is locked")


def test_locked_errors_are_recognised_raw_and_wrapped() -> None:
    assert is_locked_error(locked())
    assert is_locked_error(sqlite3.OperationalError("database is busy"))
    assert is_locked_error(OperationalError("BEGIN IMMEDIATE", {}, locked()))
    assert not is_locked_error(sqlite3.OperationalError("no such table: import_jobs"))
    assert not is_locked_error(RuntimeError("database is locked"))


def test_work_is_retried_with_growing_jittered_pauses_until_it_succeeds() -> None:
    clock = FakeClock()
    failures = iter([locked()] * 6)

    def work() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "written"

    result = retry_when_locked(work, budget_s=60, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    assert result == "written"
    assert len(clock.sleeps) == 6
    # Each pause lies in [half, all] of a doubling step (50 ms, 100 ms, ...), capped at 2 s.
    for attempt, pause in enumerate(clock.sleeps):
        step = min(0.05 * 2**attempt, 2.0)
        assert step / 2 <= pause <= step


def test_a_lock_held_past_the_budget_is_one_clear_error() -> None:
    clock = FakeClock()
    calls = []

    def work() -> None:
        calls.append(clock.now)
        raise locked()

    with pytest.raises(DatabaseLockedError) as raised:
        retry_when_locked(work, budget_s=10, what="recording the request", clock=clock, sleep=clock.sleep)
    assert isinstance(raised.value, StoreError)
    assert 10 <= raised.value.waited_s <= 10.01
    assert raised.value.attempts == len(calls) > 5
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("recording the request: the database stayed locked by other writers for 10 s")
    assert "DSIMPORT_DB_LOCKED_RETRY_S" in message


def test_other_errors_are_not_retried() -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        retry_when_locked(work, budget_s=60, sleep=lambda _s: None)
    assert calls == [1]


# --- a real engine, its write lock held by another connection -------------------------------------------------


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    upgrade(f"sqlite:///{path}")
    return path


def hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def count_jobs(path: Path) -> int:
    engine = make_engine(f"sqlite:///{path}")
    try:
        with make_session_factory(engine, read_only=True)() as session:
            return int(session.scalar(select(func.count()).select_from(ImportJob)) or 0)
    finally:
        engine.dispose()


@pytest.mark.timeout(30)
def test_a_writer_waits_past_the_busy_timeout_until_the_lock_is_released(ledger_path: Path) -> None:
    engine = make_engine(f"sqlite:///{ledger_path}", busy_timeout_s=0.1, locked_retry_s=20)
    holder = hold_write_lock(ledger_path)
    release_after_s = 1.5  # fifteen busy timeouts
    threading.Timer(release_after_s, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    try:
        with make_session_factory(engine)() as session:
            add_job(session, "k-waited")
            session.commit()
    finally:
        engine.dispose()
        holder.close()
    assert time.monotonic() - started >= release_after_s - 0.05
    assert count_jobs(ledger_path) == 1


@pytest.mark.timeout(30)
def test_a_writer_gives_up_after_its_budget_and_the_engine_recovers(ledger_path: Path) -> None:
    engine = make_engine(f"sqlite:///{ledger_path}", busy_timeout_s=0.1, locked_retry_s=0.6)
    holder = hold_write_lock(ledger_path)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseLockedError, match="stayed locked by other writers"):
            with make_session_factory(engine)() as session:
                add_job(session, "k-refused")
                session.commit()
        # Gave up after the budget plus at most one busy timeout, not after some fixed long wait.
        assert 0.6 <= time.monotonic() - started < 3.0
        holder.execute("COMMIT")
        with make_session_factory(engine)() as session:
            add_job(session, "k-after")
            session.commit()
    finally:
        engine.dispose()
        holder.close()
    assert count_jobs(ledger_path) == 1


def test_read_only_sessions_do_not_wait_for_the_write_lock(ledger_path: Path) -> None:
    engine = make_engine(f"sqlite:///{ledger_path}", busy_timeout_s=0.1, locked_retry_s=20)
    holder = hold_write_lock(ledger_path)
    try:
        started = time.monotonic()
        with make_session_factory(engine, read_only=True)() as session:
            assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
        assert time.monotonic() - started < 1.0
    finally:
        engine.dispose()
        holder.close()
