"""Child processes of ``dsimport up``: started in process groups of their own, stopped without leaving any behind.

Each child gets its own session (so the terminal's Ctrl-C reaches only ``dsimport up``, which then stops the
children in order) and its own log file. Stopping goes tier by tier, highest first (the service before the Redis
and emulator it talks to): SIGTERM to each child's whole process group, a grace period, then SIGKILL to whatever is
still alive, and SIGKILL to the group in any case, so a grandchild (a worker's pool process) cannot outlive its
parent. A second Ctrl-C cuts the grace period short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

__all__ = ["STOP_GRACE_S", "Child", "Stack", "StopSignals", "wait_until"]

STOP_GRACE_S = 10.0
_POLL_S = 0.05


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tier: int

    @property
    def pid(self) -> int:
        return self.process.pid


class StopSignals:
    """Counts SIGINT/SIGTERM while installed: the first asks for a clean stop, a second for a quick one."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, object] = {}

    @property
    def stopping(self) -> bool:
        return self.count > 0

    @property
    def hurry(self) -> bool:
        return self.count > 1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def install(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()


@dataclass
class Stack:
    """The running children; :meth:`stop` ends them all, highest tier first."""

    home: Path
    grace_s: float = STOP_GRACE_S
    children: list[Child] = field(default_factory=list)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, tier: int = 1, cwd: Path | None = None
    ) -> Child:
        log_path = self.home / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path, tier)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [child for child in self.children if child.process.poll() is not None]

    def stop(self, *, hurry: Callable[[], bool] = lambda: False, say: Callable[[str], object] | None = None) -> None:
        """Stop every child and everything in its process group; returns once all are reaped."""
        for tier in sorted({child.tier for child in self.children}, reverse=True):
            group = [child for child in reversed(self.children) if child.tier == tier]
            self._stop_group(group, hurry, say)
        self.children.clear()

    def _stop_group(self, group: list[Child], hurry: Callable[[], bool], say: Callable[[str], object] | None) -> None:
        for child in group:
            if child.process.poll() is None:
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while any(child.process.poll() is None for child in group):
            if time.monotonic() >= deadline or hurry():
                break
            time.sleep(_POLL_S)
        for child in group:
            if child.process.poll() is None:
                if say is not None:
                    say(f"{child.name} did not stop within {self.grace_s:g} s; killing it")
                _signal_group(child.pid, signal.SIGKILL)
                child.process.wait()
            # Whatever the child started in its group goes too, even when the child itself exited cleanly.
            _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, stop: Callable[[], bool], interval_s: float = 0.1
) -> bool:
    """Poll ``check`` until it is true (True), the time runs out or ``stop`` says to give up (False)."""
    deadline = time.monotonic() + timeout_s
    while not stop():
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return False
