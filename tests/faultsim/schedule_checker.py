"""The schedule invariants of a run, judged from the ledger's rows and the emulator's inventory alone.

Like :mod:`tests.faultsim.checker`, nothing here imports ``store``, ``tasks`` or ``worker``: the schedules, their runs
and items are rows read with plain SQL, the items a schedule had to import are worked out here from the emulator's
events and source records, and what was imported is counted from the records in the target (the emulator runs with
``dedupe_imports`` off, so an item imported twice is two records of one origin: ``event:<id>`` for an event,
``record:<id>`` for a copied record that was itself created directly).

- ``schedule-fire-twice``: two runs of one schedule for one fire time.
- ``schedule-item-doubled``: an item in its schedule's target more than once (a plain schedule: more records of its
  event than jobs of it that completed, or than one when it skips what the target holds).
- ``schedule-item-skipped``: an item the schedule has covered but not in its target, and not explainably waiting.
  Covered: for ``explorer-window``, an event matching its filter created in ``[since, watermark)``; for
  ``dataset-copy``, a source record created before the fire time of its last completed (SUBMITTED or EMPTY) fire,
  which listed the whole source after that time. Waiting (a note): the item's job has not ended, or ended failed
  with retries left (the next fire requests it again), or the item was given up after its retries (visibly).
- ``schedule-item-stray``: a record in a run's dataset that no request and no schedule may have imported (an event
  of a team no filter names, one created before a window's start or past its watermark, a record of no source).
- ``schedule-window-gap``: the windows of an explorer-window schedule's fires do not tile ``[since, watermark)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL = frozenset(
    {"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT", "REJECTED", "LOST", "EXPIRED", "CANCELLED_LOCALLY"}
)
# Job ends after which a schedule requests the items again (up to RETRIES times), as its README says.
RETRIED = frozenset({"FAILED", "REJECTED", "TIMED_OUT", "LOST", "EXPIRED"})
RETRIES = 3
COMPLETED_RUNS = frozenset({"SUBMITTED", "EMPTY"})


@dataclass
class ScheduleSeen:
    """The schedules' part of what the checker reads."""

    # The start of every explorer-window's first window, as the campaign set it.
    since: str | None
    # Ledger rows: schedules {id, name, kind, dataset_id, params, watermark, ...}; runs {schedule_id, fire_time,
    # status, job_ids, window_start, window_end}; items {schedule_id, item_id, job_id, retries, given_up}.
    schedules: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    # The emulator's inventory: records {id, origin, created_at} per dataset; events {created_at, extra_fields}.
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


def ts(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def matches(condition: dict[str, Any] | None, event: dict[str, Any]) -> bool:
    """Whether an event's fields satisfy a filter of ``eq``/``neq`` conditions and AND/OR groups (the campaign's)."""
    if condition is None:
        return True
    if set(condition) <= {"AND", "OR"}:
        every = all(matches(member, event) for member in condition.get("AND") or [])
        some = not condition.get("OR") or any(matches(member, event) for member in condition["OR"])
        return every and some
    value: Any = event
    for part in str(condition["field"]).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if condition["op"] == "eq":
        return bool(value == condition["value"])
    if condition["op"] == "neq":
        return bool(value != condition["value"])
    raise ValueError(f"filter op {condition['op']!r} is not one the checker evaluates")


def record_origin(record: dict[str, Any]) -> str:
    """The origin a copy of ``record`` carries: its own origin, or ``record:<id>`` for a record created directly."""
    return str(record.get("origin") or f"record:{record['id']}")


@dataclass
class _Schedule:
    row: dict[str, Any]
    runs: list[dict[str, Any]]
    items: dict[str, dict[str, Any]]
    jobs: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.row["name"])


def check_schedules(
    seen: ScheduleSeen,
    jobs: list[dict[str, Any]],
    request_origins: dict[str, set[str]],
    violation: Callable[[str, str], None],
    note: Callable[[str], None],
) -> dict[str, Any]:
    """Judge every schedule of the run; ``request_origins`` holds, per dataset, the origins its requests import.
    Returns figures (items covered, imported once, waiting)."""
    jobs_by_id = {job["id"]: job for job in jobs}
    by_id: dict[str, _Schedule] = {}
    for row in seen.schedules:
        prefix = f"schedule:{row['name']}:"
        mine = [job for job in jobs if str(job["key"]).startswith(prefix)]
        by_id[row["id"]] = _Schedule(row, [], {}, mine)
    for run in seen.runs:
        if run["schedule_id"] in by_id:
            by_id[run["schedule_id"]].runs.append(run)
    for item in seen.items:
        if item["schedule_id"] in by_id:
            by_id[item["schedule_id"]].items[item["item_id"]] = item

    figures: Counter[str] = Counter()
    # Per dataset, the origins some request or schedule may have put there.
    allowed: dict[str, set[str]] = {dataset: set(origins) for dataset, origins in request_origins.items()}
    for schedule in by_id.values():
        twice = [fire for fire, n in Counter(run["fire_time"] for run in schedule.runs).items() if n > 1]
        for fire in sorted(twice):
            violation("schedule-fire-twice", f"schedule {schedule.name}: {fire} has more than one run")
        figures["fires"] += len(schedule.runs)
        figures["failed_fires"] += sum(1 for run in schedule.runs if run["status"] == "FAILED")
        figures["retries"] += sum(1 for job in schedule.jobs if ":retry:" in str(job["key"]))
        # A run taken over from a task presumed dead (its lease ran out): the first must have written nothing.
        figures["takeovers"] += sum(int(run.get("attempts") or 1) - 1 for run in schedule.runs)
        kind = schedule.row["kind"]
        target = str(schedule.row["dataset_id"])
        counts = Counter(record_origin(record) for record in seen.records.get(target, []))
        if kind == "explorer-window":
            covered, may = _window_items(seen, schedule, violation)
        elif kind == "dataset-copy":
            covered, may = _copy_items(seen, schedule)
        else:
            may = _plain(schedule, counts, violation, note)
            allowed.setdefault(target, set()).update(may)
            continue
        allowed.setdefault(target, set()).update(may.values())
        for item_id, origin in sorted(may.items()):
            found = counts.get(origin, 0)
            if found > 1:
                violation("schedule-item-doubled", f"schedule {schedule.name}: {origin} {found}x in {target[:8]}; "
                          + _history(schedule, item_id, jobs_by_id))  # fmt: skip
            elif item_id in covered and found == 0:
                why = _waiting(schedule, item_id, jobs_by_id)
                if why is None:
                    violation("schedule-item-skipped", f"schedule {schedule.name}: {origin} not in {target[:8]}; "
                              + _history(schedule, item_id, jobs_by_id))  # fmt: skip
                else:
                    figures["items_waiting"] += 1
                    note(f"schedule {schedule.name}: {origin} not imported yet: {why}")
            elif item_id in covered:
                figures["items_imported_once"] += 1
        figures["items_covered"] += len(covered)
    for dataset, records in sorted(seen.records.items()):
        if dataset not in allowed:
            continue  # a copy source: its records were created by the run, not imported
        strays = Counter(record_origin(record) for record in records if record_origin(record) not in allowed[dataset])
        for origin, n in sorted(strays.items()):
            violation("schedule-item-stray", f"{origin} {n}x in {dataset[:8]}: no request or schedule may import it")
    return dict(figures)


def _window_items(
    seen: ScheduleSeen, schedule: _Schedule, violation: Callable[[str, str], None]
) -> tuple[set[str], dict[str, str]]:
    """(events covered, every event it may have imported -> origin): matching its filter, in [since, watermark)."""
    since, watermark = ts(seen.since), ts(schedule.row.get("watermark"))
    start = since if since is not None else ts(schedule.row.get("created_at")) or 0.0
    end = watermark if watermark is not None else start
    flt = (schedule.row.get("params") or {}).get("filter")
    may = {
        event_id: f"event:{event_id}"
        for event_id, event in seen.events.items()
        if matches(flt, event) and start <= (ts(event["created_at"]) or 0.0) < end
    }
    # The fires' windows tile [since, watermark): a hole is a time no fire searched.
    windows = sorted(
        (ts(run["window_start"]) or 0.0, ts(run["window_end"]) or 0.0)
        for run in schedule.runs
        if run["status"] in COMPLETED_RUNS and run.get("window_start") and run.get("window_end")
    )
    reached = start
    for low, high in windows:
        if low > reached + 1e-3:
            violation("schedule-window-gap", f"schedule {schedule.name}: no fire searched {reached:.3f}..{low:.3f}")
        reached = max(reached, high)
    if windows and abs(reached - end) > 1e-3:
        violation("schedule-window-gap", f"schedule {schedule.name}: windows reach {reached:.3f}, watermark {end:.3f}")
    return set(may), may


def _copy_items(seen: ScheduleSeen, schedule: _Schedule) -> tuple[set[str], dict[str, str]]:
    """(source records covered, every source record -> origin): covered if created before its last completed fire."""
    source = str((schedule.row.get("params") or {}).get("from_dataset_id"))
    records = seen.records.get(source, [])
    fires = [ts(run["fire_time"]) or 0.0 for run in schedule.runs if run["status"] in COMPLETED_RUNS]
    until = max(fires, default=None)
    covered = {
        str(record["id"]) for record in records if until is not None and (ts(record["created_at"]) or 0.0) < until
    }
    return covered, {str(record["id"]): record_origin(record) for record in records}


def _plain(
    schedule: _Schedule, counts: Counter[str], violation: Callable[[str, str], None], note: Callable[[str], None]
) -> set[str]:
    """A plain schedule imports its events once per completed job: as many records of each as such jobs. With
    ``skip_existing`` (the default) every later job finds them held: exactly one record of each once a job
    completed."""
    events = (schedule.row.get("params") or {}).get("completion_event_ids") or []
    completed = sum(1 for job in schedule.jobs if job["status"] == "COMPLETED")
    running = sum(1 for job in schedule.jobs if job["status"] not in TERMINAL)
    if schedule.row.get("skip_existing"):
        completed, running = min(completed, 1), (1 if running and not completed else 0)
    origins = {f"event:{event}" for event in events}
    for origin in sorted(origins):
        found = counts.get(origin, 0)
        if found > completed + running:
            violation("schedule-item-doubled", f"schedule {schedule.name}: {origin} {found}x, {completed} jobs "
                      f"completed of {len(schedule.jobs)} ({running} running)")  # fmt: skip
        elif found < completed:
            violation("schedule-item-skipped", f"schedule {schedule.name}: {origin} {found}x, {completed} jobs "
                      "completed")  # fmt: skip
        elif found < completed + running:
            note(f"schedule {schedule.name}: {completed + running - found} fire(s) of {origin} still importing")
    return origins


def _waiting(schedule: _Schedule, item_id: str, jobs: dict[str, dict[str, Any]]) -> str | None:
    """Why a covered item is not imported yet, when the ledger shows it is on its way (None: it is not)."""
    item = schedule.items.get(item_id)
    if item is None:
        return None
    job = jobs.get(item["job_id"])
    if job is None:
        return None
    if item["given_up"]:
        return f"given up after {item['retries']} retries (job {job['id'][:8]} ended {job['status']})"
    if job["status"] not in TERMINAL:
        return f"job {job['id'][:8]} is {job['status']}"
    if job["status"] in RETRIED and item["retries"] < RETRIES:
        return f"job {job['id'][:8]} ended {job['status']}: retry {item['retries'] + 1} due at the next fire"
    return None


def _history(schedule: _Schedule, item_id: str, jobs: dict[str, dict[str, Any]]) -> str:
    item = schedule.items.get(item_id)
    if item is None:
        return "never requested (no item row)"
    job = jobs.get(item["job_id"])
    chunk = [j["id"][:8] + ":" + j["status"] for j in schedule.jobs if item_id in _job_items(j)]
    state = f"job {item['job_id'][:8]} {job['status'] if job else 'missing'}"
    return f"item {state}, retries {item['retries']}, given up {item['given_up']}; jobs holding it: {', '.join(chunk)}"


def _job_items(job: dict[str, Any]) -> list[str]:
    params = job.get("params") or {}
    return [str(value) for values in params.values() if isinstance(values, list) for value in values]
