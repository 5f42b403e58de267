"""Completed imports against the records they left: a job the ledger says COMPLETED holds a record of each of its
items in its dataset, unless the API said it skipped the item.

Like :mod:`tests.faultsim.checker`, this reads the ledger's rows and the emulator's inventory and task origins only.
An item's record is found by the origin the emulator gives the records it imports (``event:<id>``,
``span:<trace>:<span>``, ``conversation:<id>``, a copied record's own origin or ``record:<id>``).

- ``request-record-missing``: a COMPLETED job whose item has no record in the job's dataset (an item lost between
  the API's task and the ledger's word for it).

What the API skips is not missing. The emulator plans a task's records when it creates it and leaves out what it
cannot import (unavailable span references, campaign events deleted since their selection), counting those in the
task's ``result.skipped_record_count``; the task origins hold the planned records' origins and ``requested``. An
item of a COMPLETED job that is not among its task's planned origins, while the task's ``requested`` less its
planned count covers it, was skipped by the API: a note. A campaign's (or a file's) items are not in the job's
params: they are the origins its task planned, every one of which must then be held.

The jobs the schedule checker judges item by item (a window's or a copy's chunks, a plain schedule's imports:
``schedule-item-skipped`` there) are left to it, so one lost item is one violation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from .schedule_checker import record_origin

__all__ = ["check_completed_records", "item_origins"]


def item_origins(job: dict[str, Any], copied_origin: dict[str, str]) -> list[str] | None:
    """The origins of the records a job's items become, from its params; None when the params do not name them
    (a campaign, a file: the API resolves those)."""
    params = job.get("params") or {}
    kind = job.get("kind")
    if kind == "explorer":
        return [f"event:{event}" for event in params.get("completion_event_ids") or []]
    if kind == "dataset":
        return [copied_origin.get(str(record), f"record:{record}") for record in params.get("dataset_record_ids") or []]
    if kind == "spans":
        return [f"span:{ref['trace_id']}:{ref['span_id']}" for ref in params.get("span_references") or []]
    if kind == "playground":
        return [f"conversation:{conversation}" for conversation in params.get("conversation_ids") or []]
    return None


def check_completed_records(
    jobs: list[dict[str, Any]],
    records: dict[str, list[dict[str, Any]]],
    tasks: dict[str, dict[str, Any]],
    copied_origin: dict[str, str],
    violation: Callable[[str, str], None],
    note: Callable[[str], None],
    *,
    judged_elsewhere: Callable[[dict[str, Any]], bool],
    history: Callable[[dict[str, Any]], str],
) -> int:
    """Judge every COMPLETED job not ``judged_elsewhere``; ``records`` per dataset as the inventory lists them,
    ``tasks`` the emulator's task origins (live and deleted). Returns how many items were checked."""
    held = {dataset: Counter(record_origin(record) for record in listed) for dataset, listed in records.items()}
    unread: set[str] = set()
    checked = 0
    for job in jobs:
        if job["status"] != "COMPLETED" or judged_elsewhere(job):
            continue
        dataset = str(job["dataset_id"])
        if dataset not in held:
            unread.add(dataset)
            continue
        task = tasks.get(str(job.get("remote_task_id"))) if job.get("remote_task_id") else None
        planned = [str(origin) for origin in (task or {}).get("origins", [])]
        wanted = item_origins(job, copied_origin)
        if wanted is None:
            wanted = planned
        # How many of its items the API left out when it planned the task (it counts them as skipped).
        skipped_by_api = max(0, int((task or {}).get("requested", 0)) - len(planned)) if task else 0
        unplanned = [origin for origin in wanted if task is not None and origin not in planned]
        explained = unplanned if len(unplanned) <= skipped_by_api else []
        if explained:
            note(f"job {job['id'][:8]} ({job['key']}): {len(explained)} item(s) skipped by the API, not imported: "
                 + ", ".join(explained[:5]))  # fmt: skip
        for origin in wanted:
            checked += 1
            if origin in explained or held[dataset].get(origin, 0) > 0:
                continue
            violation(
                "request-record-missing",
                f"job {job['id']} ({job['key']}) COMPLETED but {origin} has no record in {dataset[:8]}: {history(job)}",
            )
    for dataset in sorted(unread):
        note(f"completed jobs on {dataset[:8]} not checked against their records: the inventory did not list it")
    return checked
