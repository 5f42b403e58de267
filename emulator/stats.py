"""Request and task counters, read by tests and benchmarks through ``GET /_emulator/stats``.

Shape (``?tasks=false`` leaves out ``tasks``)::

    {
      "now": ISO,                                   # the emulator's clock
      "requests_total": int,                        # API requests (admin routes are not counted)
      "requests": {route_name: int},                # e.g. {"fetch_task": 812, "import_from_file": 40}
      "responses": {route_name: {"200": int, "503": int, "reset": int, ...}},  # reset: no answer
      "tasks_created": {dataset_id: int},           # import tasks started per dataset
      "tasks_by_status": {status: int},
      "world": {"datasets", "records", "tasks", "campaigns", "events", "conversations", "files": int},
      "tasks": {task_id: {"dataset_id", "kind", "status", "created_at": ISO,
                          "terminal_at": ISO | null,   # when the emulator ended it (null: never ends)
                          "observed_at": ISO | null,   # first read after the end (records copied then)
                          "fetch_count": int}}         # fetch_task calls for this task
    }

Counters (not the world) are zeroed by ``POST /_emulator/stats/reset``. Reading the stats settles
every task whose end has passed.
"""

from __future__ import annotations

from typing import Any

from .clock import iso, iso_or_none
from .config import TERMINAL_STATUSES
from .lifecycle import settle_all, view
from .world import World

__all__ = ["Stats"]


class Stats:
    """Counts per route name. Only the event-loop thread writes, so plain dicts suffice."""

    def __init__(self) -> None:
        self.requests_total = 0
        self.requests: dict[str, int] = {}
        self.responses: dict[str, dict[str, int]] = {}
        self.tasks_created: dict[str, int] = {}

    def count_request(self, route: str) -> None:
        self.requests_total += 1
        self.requests[route] = self.requests.get(route, 0) + 1

    def count_response(self, route: str, status: int | str) -> None:
        by_status = self.responses.setdefault(route, {})
        key = str(status)
        by_status[key] = by_status.get(key, 0) + 1

    def count_task(self, dataset_id: str) -> None:
        self.tasks_created[dataset_id] = self.tasks_created.get(dataset_id, 0) + 1

    def reset(self, world: World) -> None:
        self.requests_total = 0
        self.requests.clear()
        self.responses.clear()
        self.tasks_created.clear()
        with world.lock:
            for task in world.tasks.values():
                task.fetch_count = 0

    def snapshot(self, world: World, *, include_tasks: bool = True) -> dict[str, Any]:
        """Counters plus the state of every task (settling those whose end has passed)."""
        with world.lock:
            now = world.now()
            settle_all(world, now)
            by_status: dict[str, int] = {}
            tasks: dict[str, dict[str, Any]] = {}
            for task in world.tasks.values():
                status = view(task, now).status
                by_status[status] = by_status.get(status, 0) + 1
                if include_tasks:
                    tasks[task.id] = {
                        "dataset_id": task.dataset_id,
                        "kind": task.kind,
                        "status": status,
                        "created_at": iso(task.created_at),
                        "terminal_at": iso(task.end_at) if task.outcome in TERMINAL_STATUSES else None,
                        "observed_at": iso_or_none(task.observed_at),
                        "fetch_count": task.fetch_count,
                    }
            snapshot: dict[str, Any] = {
                "now": iso(now),
                "requests_total": self.requests_total,
                "requests": dict(self.requests),
                "responses": {route: dict(codes) for route, codes in self.responses.items()},
                "tasks_created": dict(self.tasks_created),
                "tasks_by_status": by_status,
                "world": world.counts(),
            }
            if include_tasks:
                snapshot["tasks"] = tasks
            return snapshot
