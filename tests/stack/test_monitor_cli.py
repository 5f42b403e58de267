"""``dsimport flower``, ``dsimport dashboard`` and ``dsimport check``: login required, password never on argv."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.local_stack.launcher import free_port
from cli.main import main
from cli.monitor_commands import flower_argv
from jobs import metrics
from store.db import upgrade
from tests.fixtures.redis_db import flushed_redis, redis_test_url
from worker.settings import Settings

from .procs import cmdline

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "MARKER-ui-password-93b1"


@pytest.fixture
def broker() -> Iterator[str]:
    with flushed_redis(redis_test_url("DSIMPORT_TEST_DASHBOARD_REDIS_URL", 9)) as url:
        yield url


@pytest.fixture
def env(tmp_path: Path, broker: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a service process, also applied to this process for in-process CLI calls."""
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(database_url)
    values = {
        "DSIMPORT_HOME": str(tmp_path),
        "DSIMPORT_DATABASE_URL": database_url,
        "DSIMPORT_BROKER_URL": broker,
        "DSIMPORT_UI_PASSWORD": PASSWORD,
    }
    for key in list(os.environ):
        if key.startswith(("DSIMPORT_", "MISTRAL_", "FLOWER_")):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def _serve(argv: list[str], env: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *argv],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{argv[0]} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(ready_url, timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    _stop(process)
    raise AssertionError(f"{argv[0]} did not answer at {ready_url}:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def test_flower_requires_the_login_and_keeps_the_password_off_argv(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "flower.log"
    process = _serve(["flower", "--port", str(port)], env, log, base + "/healthcheck")
    try:
        assert PASSWORD not in cmdline(process.pid)
        assert httpx.get(base + "/").status_code == 401
        assert httpx.get(base + "/", auth=("admin", "wrong")).status_code == 401
        assert httpx.get(base + "/", auth=("admin", PASSWORD)).status_code == 200
        assert httpx.get(base + "/api/workers", auth=("admin", PASSWORD)).status_code == 200
        prometheus = httpx.get(base + "/metrics")
        assert prometheus.status_code == 200 and "flower_" in prometheus.text
        assert main(["check", "url", base + "/api/workers"]) == 0  # the compose health check, with the login
    finally:
        _stop(process)
    assert PASSWORD not in log.read_text()


def test_dashboard_serves_with_the_login(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dashboard.log"
    process = _serve(["dashboard", "--port", str(port)], env, log, base + "/healthz")
    try:
        assert PASSWORD not in cmdline(process.pid)
        assert httpx.get(base + "/").status_code == 401
        page = httpx.get(base + "/", auth=("admin", PASSWORD))
        assert page.status_code == 200 and "no jobs" in page.text
        assert "dsimport_jobs" in httpx.get(base + "/metrics").text
    finally:
        _stop(process)
    output = log.read_text()
    assert PASSWORD not in output
    assert '"logger": "uvicorn.access"' in output  # uvicorn's lines go through the structured handler


def test_flower_argv_bounds_the_tasks_and_holds_no_secret() -> None:
    settings = Settings(ui_password=PASSWORD, flower_max_tasks=500)
    argv = flower_argv(settings, address=None, port=None, extra=["--url_prefix=flower"])
    assert argv[:3] == ["flower", "--address=127.0.0.1", "--port=5555"]
    assert "--max_tasks=500" in argv and argv[-1] == "--url_prefix=flower"
    assert not any(PASSWORD in arg for arg in argv)


@pytest.mark.parametrize("command", ["flower", "dashboard"])
def test_no_password_no_service(
    command: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DSIMPORT_UI_PASSWORD")
    assert main([command]) == 1
    assert "set DSIMPORT_UI_PASSWORD" in capsys.readouterr().err


def test_flower_refuses_a_password_with_a_comma(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DSIMPORT_UI_PASSWORD", "a,b-long-enough")
    assert main(["flower"]) == 1
    assert "cannot contain ','" in capsys.readouterr().err


def test_dashboard_refuses_an_unmigrated_ledger(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert main(["dashboard"]) == 1
    assert "dsimport db upgrade" in capsys.readouterr().err


def test_check_db_and_broker(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "db"]) == 0
    assert main(["check", "broker"]) == 0
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert main(["check", "db"]) == 1
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    assert main(["check", "broker"]) == 1
    err = capsys.readouterr().err
    assert "dsimport db upgrade" in err and "not reachable" in err


def test_check_beat_reads_the_heartbeat(env: dict[str, str], broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "beat"]) == 1
    assert "has not ticked yet" in capsys.readouterr().err
    metrics.install(broker)
    try:
        metrics.record_beat_tick(now=time.time() - 120)
        assert main(["check", "beat", "--max-age", "60"]) == 1
        assert "last ticked 120 s ago" in capsys.readouterr().err
        metrics.record_beat_tick()
        assert main(["check", "beat"]) == 0
    finally:
        metrics.install(None)


def test_check_worker_fails_when_none_replies(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "worker", "--any", "--timeout", "0.5"]) == 1
    assert "no worker replied" in capsys.readouterr().err


def test_check_url_reports_the_status(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["check", "url", f"http://127.0.0.1:{port}/healthz", "--timeout", "1"]) == 1
    assert "ConnectError" in capsys.readouterr().err
