"""Stopping the stack's children: nothing survives, not a child that ignores SIGTERM, nor its own children."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from cli.local_stack.processes import Stack, StopSignals, wait_until

from .procs import alive

# Ignores SIGTERM, starts a grandchild that ignores it too, and reports both pids once the handlers are set.
STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    grandchild = subprocess.Popen([sys.executable, "-c", code + "time.sleep(600)"], stdout=subprocess.PIPE)
    grandchild.stdout.readline()
    with open(sys.argv[1], "w") as out:
        out.write(f"{os.getpid()} {grandchild.pid}")
    time.sleep(600)
    """
)

# Records when SIGTERM arrived, then exits.
POLITE = textwrap.dedent(
    """
    import signal, sys, time
    def on_term(signum, frame):
        with open(sys.argv[1], "w") as out:
            out.write(repr(time.monotonic()))
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    open(sys.argv[1] + ".ready", "w").close()
    time.sleep(600)
    """
)


def _start_stubborn(stack: Stack, tmp_path: Path, name: str = "stubborn") -> tuple[int, int]:
    pids = tmp_path / f"{name}.pids"
    stack.start(name, [sys.executable, "-c", STUBBORN, str(pids)], os.environ, tier=2)
    assert wait_until(lambda: pids.exists() and bool(pids.read_text()), timeout_s=20, stop=lambda: False)
    child, grandchild = (int(p) for p in pids.read_text().split())
    return child, grandchild


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stack = Stack(tmp_path, grace_s=1.0)
    child, grandchild = _start_stubborn(stack, tmp_path)
    said: list[str] = []
    started = time.monotonic()
    stack.stop(say=said.append)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0
    assert not alive(child)
    assert wait_until(lambda: not alive(grandchild), timeout_s=5, stop=lambda: False), "grandchild left behind"
    assert said == ["stubborn did not stop within 1 s; killing it"]
    assert stack.children == []


def test_a_second_signal_skips_the_grace_period(tmp_path: Path) -> None:
    stack = Stack(tmp_path, grace_s=60.0)
    child, grandchild = _start_stubborn(stack, tmp_path)
    started = time.monotonic()
    stack.stop(hurry=lambda: True)
    assert time.monotonic() - started < 3.0
    assert not alive(child)
    assert wait_until(lambda: not alive(grandchild), timeout_s=5, stop=lambda: False)


def test_service_tier_stops_before_infrastructure(tmp_path: Path) -> None:
    stack = Stack(tmp_path, grace_s=5.0)
    for name, tier in (("infra", 1), ("service", 2)):
        stack.start(name, [sys.executable, "-c", POLITE, str(tmp_path / name)], os.environ, tier=tier)
    for name in ("infra", "service"):
        ready = tmp_path / f"{name}.ready"
        assert wait_until(ready.exists, timeout_s=20, stop=lambda: False)
    stack.stop()
    service_at = float((tmp_path / "service").read_text())
    infra_at = float((tmp_path / "infra").read_text())
    assert service_at < infra_at


def test_children_have_their_own_session_and_a_log_file(tmp_path: Path) -> None:
    stack = Stack(tmp_path, grace_s=1.0)
    child = stack.start("echo", [sys.executable, "-c", "print('hello from the child')"], os.environ)
    assert child.process.wait(timeout=20) == 0
    assert os.getsid(os.getpid()) != child.pid  # the terminal's Ctrl-C does not reach it directly
    assert "hello from the child" in child.log_path.read_text()
    assert child.log_path == tmp_path / "logs" / "echo.log"
    assert stack.dead() == [child]
    stack.stop()


def test_stop_signals_count_and_restore() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    signals = StopSignals().install()
    try:
        assert not signals.stopping
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_until(lambda: signals.stopping, timeout_s=5, stop=lambda: False)
        assert not signals.hurry
        os.kill(os.getpid(), signal.SIGINT)
        assert wait_until(lambda: signals.hurry, timeout_s=5, stop=lambda: False)
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_wait_until_gives_up_when_asked() -> None:
    started = time.monotonic()
    assert not wait_until(lambda: False, timeout_s=30, stop=lambda: time.monotonic() - started > 0.2)
    assert time.monotonic() - started < 2
