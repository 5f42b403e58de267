"""The service processes of a run, each in a slot that can be killed, paused and started again.

A slot is one role (``worker-0``, ``beat-1``) whose process is replaced after a kill; each start is a new process
group (``python -m cli ...``, see :class:`tests.integration.service.ServiceProcesses`), so SIGKILL and SIGSTOP
reach the prefork children too. A slot remembers whether its process was ended on purpose, so a process that dies
by itself is reported instead of silently replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.service import ServiceProcesses


@dataclass
class Slot:
    name: str
    role: str  # "worker" or "beat"
    processes: ServiceProcesses
    concurrency: int = 2
    generation: int = 0
    process: subprocess.Popen[bytes] | None = None
    killed_on_purpose: bool = False
    paused: bool = False
    # Deaths nobody caused: (generation, exit code).
    deaths: list[tuple[int, int]] = field(default_factory=list)
    # Starts refused because a server was down at that moment (the one-line start-up check; a supervisor starts
    # the process again, as the run does): (generation, the line).
    refusals: list[tuple[int, str]] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.name}-g{self.generation}"

    def start(self) -> None:
        self.generation += 1
        label = self.label()
        if self.role == "worker":
            self.process = self.processes.start_worker(label, concurrency=self.concurrency)
        else:
            self.process = self.processes.start(label, "beat")
        self.killed_on_purpose = False
        self.paused = False

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL to the whole group, reaped; the slot stays empty until :meth:`start`."""
        if self.process is None:
            return
        self.check()
        self.killed_on_purpose = True
        self._signal(signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.process = None

    def pause(self) -> None:
        self.paused = True
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def check(self) -> None:
        """Record a death nobody caused (and empty the slot, so :meth:`ensure_running` refills it)."""
        if self.process is not None and not self.killed_on_purpose:
            code = self.process.poll()
            if code is not None:
                refusal = self._start_refusal()
                if refusal is not None:
                    self.refusals.append((self.generation, refusal))
                else:
                    self.deaths.append((self.generation, code))
                self.process = None

    def _start_refusal(self) -> str | None:
        """The start-up check's line when the process refused to start because a server was unreachable."""
        path = self.processes.log_dir / f"{self.label()}.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        last = lines[-1] if lines else ""
        return last if last.startswith("dsimport: error:") and "is not reachable" in last else None

    def ensure_running(self) -> None:
        self.check()
        if self.paused:
            self.resume()
        if self.process is None:
            self.start()


class Fleet:
    """Workers and beats of one run; the last worker may run with its own environment (a skewed clock)."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        *,
        workers: int,
        beats: int,
        concurrency: int,
        skewed_env: dict[str, str] | None,
    ) -> None:
        self.groups: list[ServiceProcesses] = []
        self.workers: list[Slot] = []
        self.beats: list[Slot] = []
        for n in range(workers):
            own_env = skewed_env if skewed_env is not None and n == workers - 1 else env
            group = ServiceProcesses(dict(own_env), log_dir)
            self.groups.append(group)
            self.workers.append(Slot(f"worker-{n}", "worker", group, concurrency=concurrency))
        for n in range(beats):
            group = ServiceProcesses(dict(env), log_dir)
            self.groups.append(group)
            self.beats.append(Slot(f"beat-{n}", "beat", group))
        self.log_dir = log_dir

    @property
    def slots(self) -> list[Slot]:
        return [*self.workers, *self.beats]

    def start(self) -> None:
        for slot in self.slots:
            slot.start()

    def ensure_running(self) -> None:
        for slot in self.slots:
            slot.ensure_running()

    def check(self) -> None:
        for slot in self.slots:
            slot.check()

    def deaths(self) -> list[str]:
        return [f"{slot.name} generation {gen} exited {code}" for slot in self.slots for gen, code in slot.deaths]

    def refusals(self) -> list[str]:
        return [
            f"{slot.name} generation {gen} refused to start: {line}"
            for slot in self.slots
            for gen, line in slot.refusals
        ]

    def stop(self) -> None:
        for slot in self.slots:
            if slot.paused:
                slot.resume()
        for group in self.groups:
            group.stop()

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name}\n{text[-tail:]}")
        return "\n".join(parts)
