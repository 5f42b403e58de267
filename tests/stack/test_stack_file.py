"""The stack file: written owner-only and whole, read as a layer of the settings between the environment and the
defaults, ignored (with one line) when stale; the embedded Redis's preferred port; the printed demo commands."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli.local_stack import launcher
from cli.local_stack.demo_commands import demo_commands, demo_import_ids
from cli.local_stack.processes import Stack
from emulator.seed import DEMO_FIXTURE
from worker.settings import DEFAULT_API_BASE_URL, load_settings
from worker.stack_file import (
    StackRecord,
    broker_answers,
    live_stack,
    read_stack_file,
    remove_stack_file,
    stack_file_path,
    write_stack_file,
)

TEST_REDIS_URL = os.environ.get("DSIMPORT_TEST_DASHBOARD_REDIS_URL", "redis://127.0.0.1:6379/9")
_SETTINGS_VARS = (
    "DSIMPORT_BROKER_URL",
    "DSIMPORT_DATABASE_URL",
    "DSIMPORT_API_BASE_URL",
    "DSIMPORT_API_KEY_FILE",
    "DSIMPORT_API_KEY",
    "MISTRAL_API_KEY",
)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _record(tmp_path: Path, *, pid: int | None = None, broker_url: str = TEST_REDIS_URL) -> StackRecord:
    key_file = tmp_path / "emulator-api-key"
    key_file.write_text("the-stack-key\n")
    return StackRecord(
        pid=os.getpid() if pid is None else pid,
        started_at="2026-12-01T01:00:00+00:00",
        broker_url=broker_url,
        database_url=f"sqlite:///{tmp_path / 'stack-ledger.db'}",
        api_base_url="http://127.0.0.1:43210",
        api_key_file=str(key_file),
        jobs_page_url="http://127.0.0.1:8080/",
        flower_url="http://127.0.0.1:5555/",
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home named by the environment alone, as in a second terminal."""
    for name in _SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "home"
    monkeypatch.setenv("DSIMPORT_HOME", str(folder))
    return folder


def test_the_file_is_written_whole_owner_only_and_read_back(tmp_path: Path) -> None:
    record = _record(tmp_path)
    path = write_stack_file(tmp_path / "home", record)
    assert path == tmp_path / "home" / "stack.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_stack_file(path) == record
    assert sorted(p.name for p in path.parent.iterdir()) == ["stack.json"]  # no temporary file left behind
    assert "the-stack-key" not in path.read_text()  # the key file's path, never the key


def test_a_live_stack_supplies_broker_ledger_and_api_the_environment_leaves_unset(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record(tmp_path)
    write_stack_file(home, record)
    settings = load_settings()
    assert settings.broker_url == record.broker_url
    assert settings.database_url == record.database_url
    assert settings.api_base_url == record.api_base_url
    key = settings.resolved_api_key()
    assert key is not None and key.get_secret_value() == "the-stack-key"
    assert capsys.readouterr().err == ""
    # Without the file, the embedded defaults.
    stack_file_path(home).unlink()
    defaults = load_settings()
    assert defaults.broker_url == "redis://127.0.0.1:6379/0"
    assert defaults.api_base_url == DEFAULT_API_BASE_URL
    assert defaults.database_url == f"sqlite:///{(home / 'ledger.db').resolve()}"


def test_the_environment_wins_over_the_stack_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record(tmp_path)
    write_stack_file(home, record)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:6999/2")
    settings = load_settings()
    assert settings.broker_url == "redis://127.0.0.1:6999/2"
    assert settings.database_url == record.database_url  # each setting on its own
    # A key of one's own is never sent to the stack's API, nor the stack's key file to another API.
    monkeypatch.setenv("MISTRAL_API_KEY", "my-own-key")
    with_key = load_settings()
    assert with_key.api_base_url == DEFAULT_API_BASE_URL and with_key.api_key_file is None
    monkeypatch.delenv("MISTRAL_API_KEY")
    monkeypatch.setenv("DSIMPORT_API_BASE_URL", "http://127.0.0.1:1234")
    with_url = load_settings()
    assert with_url.api_base_url == "http://127.0.0.1:1234" and with_url.api_key_file is None


def test_up_reads_the_environment_alone(home: Path, tmp_path: Path) -> None:
    write_stack_file(home, _record(tmp_path))
    assert load_settings(stack_file=False).broker_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("stale", ["writer gone", "broker silent", "unreadable"])
def test_a_stale_file_is_ignored_with_one_line(
    stale: str, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if stale == "writer gone":
        write_stack_file(home, _record(tmp_path, pid=_dead_pid()))
        reason = "the stack that wrote it (pid"
    elif stale == "broker silent":
        write_stack_file(home, _record(tmp_path, broker_url=f"redis://127.0.0.1:{launcher.free_port()}/0"))
        reason = "its broker does not answer"
    else:
        home.mkdir(parents=True)
        stack_file_path(home).write_text("{not json")
        reason = "it cannot be read"
    settings = load_settings()
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.api_base_url == DEFAULT_API_BASE_URL
    load_settings()  # read twice by one command: said once
    err = capsys.readouterr().err
    assert err.startswith(f"dsimport: ignoring {stack_file_path(home)}: ") and reason in err
    assert len(err.splitlines()) == 1


def test_the_file_is_not_read_when_the_environment_names_everything(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stack's own children name everything: a stale file in their home costs them nothing and says nothing.
    write_stack_file(home, _record(tmp_path, pid=_dead_pid()))
    monkeypatch.setenv("DSIMPORT_BROKER_URL", TEST_REDIS_URL)
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'own.db'}")
    monkeypatch.setenv("MISTRAL_API_KEY", "own")
    load_settings()
    assert capsys.readouterr().err == ""


def test_only_its_writer_removes_the_file(tmp_path: Path) -> None:
    write_stack_file(tmp_path, _record(tmp_path, pid=os.getpid()))
    assert not remove_stack_file(tmp_path, pid=os.getpid() + 1)
    assert stack_file_path(tmp_path).exists()
    assert remove_stack_file(tmp_path, pid=os.getpid())
    assert not stack_file_path(tmp_path).exists()


def test_broker_answers_only_for_a_redis() -> None:
    assert broker_answers(TEST_REDIS_URL)
    assert not broker_answers(f"redis://127.0.0.1:{launcher.free_port()}/0")
    with socket.socket() as silent:  # listens, accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert not broker_answers(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.3)


def test_up_refuses_a_second_stack_in_the_same_home(home: Path, tmp_path: Path) -> None:
    write_stack_file(home, _record(tmp_path))
    said: list[str] = []
    assert launcher.run_stack(load_settings(stack_file=False), echo=said.append) == 1
    assert said == [
        f"dsimport up: a stack already runs from {home.resolve()} (pid {os.getpid()}, since 2026-12-01T01:00:00+00:00):"
        " stop it first, or set another DSIMPORT_HOME"
    ]
    assert live_stack(home) is not None  # the running stack's file is left alone


@pytest.mark.parametrize("usual_port_free", [True, False])
def test_the_embedded_redis_prefers_its_usual_port(
    usual_port_free: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usual = launcher.free_port()  # stands for 6379, which someone else's Redis may hold on this machine
    monkeypatch.setattr(launcher, "REDIS_DEFAULT_PORT", usual)
    holder = socket.socket()
    if not usual_port_free:
        holder.bind(("127.0.0.1", usual))
        holder.listen()
    stack = Stack(tmp_path, grace_s=5.0)
    try:
        url = launcher.start_embedded_redis(stack, tmp_path, dict(os.environ), stop=lambda: False)
    finally:
        stack.stop()
        holder.close()
    port = int(url.removeprefix("redis://127.0.0.1:").split("/")[0])
    assert (port == usual) is usual_port_free


def test_the_demo_commands_name_the_home_and_real_ids_of_the_demo_world(tmp_path: Path) -> None:
    world = json.loads(DEMO_FIXTURE.read_text())
    ids = demo_import_ids(world)
    assert ids is not None
    dataset, campaign = ids
    assert {d["name"] for d in world["datasets"] if d["id"] == dataset} == {"Scratch"}
    assert any(c["id"] == campaign and c["selected_event_ids"] for c in world["campaigns"])
    listing, importing = demo_commands(tmp_path / "my home", demo_world=world)
    assert listing.startswith(f"DSIMPORT_HOME='{tmp_path / 'my home'}' ") and listing.endswith(" datasets list")
    assert importing.endswith(f" import campaign --dataset {dataset} --campaign {campaign} --wait")
    # With the real API there is no demo world: only the listing.
    [only] = demo_commands(tmp_path, demo_world=None)
    assert only == listing.replace(f"'{tmp_path / 'my home'}'", str(tmp_path))
