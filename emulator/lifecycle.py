"""Import tasks that progress lazily from the clock.

No timer, thread or asyncio task exists per task. A task fixes its timeline when it is created
(duration, status sequence, outcome); its status and progress are computed whenever it is read.
The first read after its end time (fetch_task, list_tasks, list_records, export, stats) *settles*
it: the planned records are written into the target dataset and the result counts are frozen.
Callers hold ``world.lock``, so a task settles exactly once.
"""

from __future__ import annotations

import heapq

from .config import TERMINAL_STATUSES
from .models import PlannedRecord, Task
from .wire import TaskView
from .world import OWNER_ID, WORKSPACE_ID, World, new_id

__all__ = ["create_task", "initial_view", "observe", "settle_all", "settle_dataset", "view"]

INJECTED_FAILURE_MESSAGE = "Import failed: injected failure"


def create_task(
    world: World,
    *,
    dataset_id: str,
    kind: str,
    plan: list[PlannedRecord],
    requested: int,
    failure: tuple[str, float] | None = None,
) -> Task:
    """Register a task whose timeline follows the current knobs.

    ``failure`` is (message, fraction of the work done) when planning already found the import
    bad (e.g. a malformed JSONL line); the task then fails at that fraction of its duration.
    """
    knobs, rng, now = world.knobs, world.rng, world.now()
    low, high = knobs.task_duration_s
    duration = low if low == high else rng.uniform(low, high)
    outcome, message, fraction = knobs.terminal_status, None, 1.0
    if failure is not None:
        outcome, (message, fraction) = "FAILED", failure
    elif outcome == "COMPLETED" and knobs.failure_rate > 0 and rng.random() < knobs.failure_rate:
        outcome, message, fraction = "FAILED", INJECTED_FAILURE_MESSAGE, rng.uniform(0.25, 1.0)
    elif outcome in TERMINAL_STATUSES and outcome != "COMPLETED":
        message = f"Import {outcome.lower().replace('_', ' ')}"
    task = Task(
        id=new_id(),
        dataset_id=dataset_id,
        kind=kind,
        creator_id=OWNER_ID,
        workspace_id=WORKSPACE_ID,
        created_at=now,
        duration_s=duration,
        end_at=now + duration * fraction,
        sequence=knobs.status_sequence,
        outcome=outcome,
        outcome_message=message,
        end_progress=min(99, int(fraction * 100)),
        plan=plan,
        requested=requested,
        origins=tuple(record.origin for record in plan if record.origin is not None),
    )
    world.add_task(task)
    return task


def initial_view(task: Task) -> TaskView:
    """What the import POST answers: the first status of the sequence, nothing done yet."""
    status = task.sequence[0]
    return TaskView(status, None if status == "UNKNOWN" else 0, None, task.created_at, None)


def view(task: Task, now: float) -> TaskView:
    """The task at ``now`` (pure; does not settle)."""
    if now >= task.end_at or task.settled:
        outcome = task.outcome
        if outcome == "COMPLETED":
            return TaskView(outcome, 100, task.outcome_message, task.end_at, task.result)
        if outcome in TERMINAL_STATUSES:
            return TaskView(outcome, task.end_progress, task.outcome_message, task.end_at, None)
        # A non-terminal outcome: the task stays there forever.
        progress = None if outcome == "UNKNOWN" else task.end_progress
        return TaskView(outcome, progress, None, task.end_at, None)
    span = task.end_at - task.created_at
    elapsed = max(0.0, now - task.created_at)
    sequence = task.sequence
    # span and duration are > 0 here unless the clock was moved before the task's creation.
    share = elapsed / span if span > 0 else 0.0
    index = min(len(sequence) - 1, int(share * len(sequence)))
    status = sequence[index]
    updated_at = task.created_at + span * index / len(sequence)
    if status == "UNKNOWN":
        return TaskView(status, None, None, updated_at, None)
    progress = min(99, int(elapsed / task.duration_s * 100)) if task.duration_s > 0 else 0
    updated_at = max(updated_at, task.created_at + task.duration_s * progress / 100)
    return TaskView(status, progress, None, updated_at, None)


def observe(world: World, task: Task, now: float) -> TaskView:
    """Read a task, settling it first if it has just reached a terminal outcome."""
    if not task.settled and now >= task.end_at and task.outcome in TERMINAL_STATUSES:
        _settle(world, task, now)
    return view(task, now)


def settle_dataset(world: World, dataset_id: str, now: float) -> None:
    """Settle every task of one dataset whose end time has passed."""
    heap = world.due.get(dataset_id)
    while heap and heap[0][0] <= now:
        _, task_id = heapq.heappop(heap)
        task = world.tasks.get(task_id)
        if task is not None:
            observe(world, task, now)


def settle_all(world: World, now: float) -> None:
    for dataset_id in list(world.due):
        settle_dataset(world, dataset_id, now)


def _settle(world: World, task: Task, now: float) -> None:
    task.settled = True
    task.observed_at = now
    task.body_cache = None
    plan, task.plan = task.plan, []
    if task.outcome != "COMPLETED":
        return
    dataset = world.datasets.get(task.dataset_id)
    if dataset is None or dataset.deleted_at is not None:
        task.outcome = "FAILED"
        task.outcome_message = "DATASET_NOT_FOUND: the target dataset was deleted during the import"
        task.end_progress = 99
        return
    dedupe = world.knobs.dedupe_imports
    origins = world.origins_by_dataset.setdefault(task.dataset_id, set())
    imported = 0
    for planned in plan:
        if dedupe and planned.origin is not None and planned.origin in origins:
            continue
        world.add_record(
            task.dataset_id,
            planned.payload,
            planned.properties,
            planned.source,
            planned.origin,
            created_at=task.end_at,
        )
        imported += 1
    task.result = {
        "requested_record_count": task.requested,
        "imported_record_count": imported,
        "skipped_record_count": task.requested - imported,
    }
