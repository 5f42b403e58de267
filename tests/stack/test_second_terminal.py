"""A new user's second terminal: `dsimport up` runs with an embedded Redis away from Redis's usual port (which may
be someone else's), and the two commands it prints run to success from another process that names only the home."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.local_stack.launcher import REDIS_DEFAULT_PORT, free_port
from tests.fixtures.up_process import running_up
from worker.stack_file import read_stack_file, stack_file_path

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@dataclass
class UpStack:
    process: subprocess.Popen[bytes]
    home: Path
    output: Path
    ready_at: float  # time.monotonic() when "press Ctrl-C to stop" was printed
    usual_port_was_taken: bool  # someone else's Redis (or anything) listened on 6379 before `up` started

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _someone_listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _clean_env() -> dict[str, str]:
    """The environment of a fresh terminal: nothing of dsimport's, and this tree's code on the path."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, "PYTHONPATH": str(REPO)}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpStack]:
    home = tmp_path / "home"
    env = {
        **_clean_env(),
        "DSIMPORT_HOME": str(home),
        # Nothing answers here, so `up` starts its own Redis (it would adopt a Redis answering on its broker URL).
        "DSIMPORT_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DSIMPORT_FLOWER_PORT": str(free_port()),
        "DSIMPORT_DASHBOARD_PORT": str(free_port()),
        "DSIMPORT_POLL_TICK_S": "0.5",
        "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.5",
        "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
    }
    output = tmp_path / "up.out"
    usual_port_was_taken = _someone_listens(REDIS_DEFAULT_PORT)
    with running_up(env, output, cwd=REPO) as process:
        yield UpStack(process, home, output, time.monotonic(), usual_port_was_taken)


def _printed_commands(text: str) -> list[str]:
    after = text.split("try it from another terminal:\n", 1)[1]
    return [line.strip() for line in after.splitlines() if line.startswith("  ")]


def _second_terminal(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], env=_clean_env(), cwd=cwd, capture_output=True, text=True, timeout=90
    )


def test_the_printed_commands_run_from_another_terminal_that_names_only_the_home(
    up: UpStack, tmp_path: Path
) -> None:
    text = up.text()
    broker = re.search(r"broker     redis://127\.0\.0\.1:(\d+)/0  \(embedded Redis", text)
    assert broker is not None, text
    embedded_port = int(broker.group(1))
    # Redis's usual port when free; else (on this machine someone else's Redis holds it) elsewhere, found anyway.
    assert (embedded_port == REDIS_DEFAULT_PORT) is not up.usual_port_was_taken
    record = read_stack_file(stack_file_path(up.home))
    assert record is not None and record.pid == up.process.pid
    assert record.broker_url == f"redis://127.0.0.1:{embedded_port}/0"

    listing, importing = _printed_commands(text)
    assert listing == f"DSIMPORT_HOME={up.home} {sys.executable} -m cli datasets list"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    listed = _second_terminal(listing, elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert "Scratch" in listed.stdout and listed.stderr == ""

    started = time.monotonic()
    imported = _second_terminal(importing, elsewhere)
    seconds = time.monotonic() - started
    assert imported.returncode == 0, (imported.stdout, imported.stderr)
    assert "COMPLETED" in imported.stderr + imported.stdout
    assert "not sent" not in imported.stderr  # the job reached the stack's broker at once
    # The emulator `up` starts runs each import 3-12 s; a job left for recovery would take over a minute.
    assert seconds < 40, f"the import took {seconds:.1f} s"
    print(
        f"\nsecond terminal: import completed in {seconds:.1f} s; "
        f"{time.monotonic() - up.ready_at:.1f} s from `up` ready to the import's end"
    )

    # Once the stack stops, its file goes, and the second terminal is back to the embedded defaults.
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=60) == 0
    assert not stack_file_path(up.home).exists()
    after = _second_terminal(listing, elsewhere)
    assert after.returncode == 1
    assert after.stderr.startswith("dsimport: error: no API key for https://api.mistral.ai")
