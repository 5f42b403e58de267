"""Interrupted submits and recovery sweeps, driven directly against the emulator on a socket (frozen clocks).

Shared by the adoption tests: a job is submitted through a fault that leaves its outcome unknown, then the recovery
sweep is called at a chosen time and what it did is read back from its report, the ledger and the emulator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emulator import EmulatorClock
from emulator.import_kinds import start_import
from emulator.testing import EmulatorServer
from jobs.recover import RecoveryReport, recover
from jobs.runtime import JobTuning, Runtime
from jobs.submit import SubmitOutcome
from tests.fixtures.direct_runtime import direct_submit, record_job

LEASE_S = 30.0
RESET_AFTER = {"kind": "reset", "next": 1, "phase": "after"}  # the task starts, the answer is lost
RESET_BEFORE = {"kind": "reset", "next": 1}  # nothing starts, no answer either
TASKS_PER_SECOND = 25
# The runtime the tests sweep with (tests/reliability/conftest.py).
TUNING = JobTuning(lease_s=LEASE_S, submit_max_retries=3, stale_pending_s=600.0)


def new_job(runtime: Runtime, dataset_id: str, events: list[str], *, now: datetime, deadline_at: datetime) -> str:
    return record_job(runtime, dataset_id, {"completion_event_ids": events}, now=now, deadline_at=deadline_at)


def emulator_now(emulator: EmulatorServer) -> datetime:
    return datetime.fromisoformat(emulator.stats(include_tasks=False)["now"])


def move_emulator_clock(emulator: EmulatorServer, to: datetime) -> None:
    emulator.advance_clock((to - emulator_now(emulator)).total_seconds())


def interrupted_submit(
    runtime: Runtime, emulator: EmulatorServer, job_id: str, fault: dict[str, Any], *, at: datetime
) -> None:
    """Submit ``job_id`` at ``at`` (our clock and the emulator's) through ``fault``: the outcome is unknown."""
    move_emulator_clock(emulator, at)
    emulator.configure(faults={"import_from_explorer": fault})
    assert direct_submit(runtime, job_id, at=at, owner="worker").outcome is SubmitOutcome.AMBIGUOUS


def sweep(runtime: Runtime, at: datetime) -> tuple[list[str], RecoveryReport]:
    """One recovery sweep at ``at``; returns the jobs it sent again and its report."""
    resent: list[str] = []
    report = recover(runtime, owner="sweeper", now=lambda: at, resend=resent.append)
    return resent, report


def tasks_by_creation(emulator: EmulatorServer) -> list[str]:
    tasks = emulator.stats()["tasks"]
    return sorted(tasks, key=lambda task_id: (tasks[task_id]["created_at"], task_id))


def create_tasks(emulator: EmulatorServer, dataset_id: str, event_id: str, *, count: int, start: datetime) -> None:
    """``count`` imports by other clients on the dataset (owned by no job) from ``start`` on, 25 a second.

    They are started in the emulator's process, under its lock, as its import route does: they are the world the
    code under test finds, and it reads them over the socket like any task. Hundreds of POSTs would make up most of
    a test's time on a busy machine.
    """
    clock = emulator.clock
    assert isinstance(clock, EmulatorClock) and clock.frozen
    world, stats = emulator.emulator.world, emulator.emulator.stats
    with world.lock:
        for n in range(count):
            clock.set(start.timestamp() + n // TASKS_PER_SECOND)
            start_import(world, "explorer", dataset_id, {"completion_event_ids": [event_id]})
            stats.count_task(dataset_id)
