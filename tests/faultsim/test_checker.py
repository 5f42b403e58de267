"""The campaign's own parts, without processes: plans are reproducible, the checker sees what it must see."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .checker import Observation, ScheduleSeen, check
from .plan import FAULT_WEIGHTS, draw_plan, parse_seeds
from .schedule_plan import COPY, PLAIN, SCHEDULE_FAULTS, WINDOW
from .test_faultsim import CI_SEEDS

DATASET = "00000000-0000-0000-0000-00000000000a"


def test_a_seed_always_draws_the_same_plan() -> None:
    assert draw_plan(42).describe() == draw_plan(42).describe()
    assert draw_plan(42).describe() != draw_plan(43).describe()


def test_every_fault_kind_is_drawn_within_a_hundred_seeds() -> None:
    drawn = {fault.kind for seed in range(1, 101) for fault in draw_plan(seed).faults}
    assert drawn == set(FAULT_WEIGHTS)


def test_every_run_has_an_item_schedule_and_every_kind_and_way_is_drawn() -> None:
    plans = [draw_plan(seed).schedule for seed in range(1, 21)]
    assert all(any(spec.kind in (WINDOW, COPY) for spec in plan.schedules) for plan in plans)
    assert {(spec.kind, spec.via) for plan in plans for spec in plan.schedules} == {
        (kind, via) for kind in (WINDOW, COPY, PLAIN) for via in ("cli", "file")
    }
    # Items arrive during the run, before the faults end.
    assert all(0 < at_s < draw_plan(seed).fault_window_s for seed in range(1, 21) for at_s, _ in
               draw_plan(seed).schedule.arrivals())  # fmt: skip


def test_the_ci_seeds_draw_every_fault_both_ledgers_every_schedule_kind_and_two_beats() -> None:
    plans = [draw_plan(seed) for seed in CI_SEEDS]
    assert {fault.kind for plan in plans for fault in plan.faults} == set(FAULT_WEIGHTS)
    statuses = {fault.args["status"] for plan in plans for fault in plan.faults if fault.kind == "post_lost_status"}
    assert {502, 503, 504} <= statuses
    assert {plan.backend for plan in plans} == {"sqlite", "postgresql"}
    specs = [spec for plan in plans for spec in plan.schedule.schedules]
    assert {spec.kind for spec in specs} == {WINDOW, COPY, PLAIN}
    assert {spec.via for spec in specs} == {"cli", "file"}
    assert {fault.kind for plan in plans for fault in plan.schedule.faults} == set(SCHEDULE_FAULTS)
    assert any(plan.beats == 2 for plan in plans)


def test_seed_ranges() -> None:
    assert parse_seeds("1-3,7, 9-10") == [1, 2, 3, 7, 9, 10]


def _clean(seed: int = 5) -> Observation:
    plan = replace(draw_plan(seed), datasets=1)
    plan = replace(plan, sends=tuple(replace(s, request=replace(s.request, dataset=0)) for s in plan.sends))
    jobs: list[dict[str, Any]] = []
    tasks: dict[str, dict[str, Any]] = {}
    origins: dict[str, dict[str, Any]] = {}
    for n, request in enumerate(plan.requests):
        task_id = f"task-{n}"
        jobs.append(
            {"id": f"job-{n}", "key": f"message:{request.message_id}", "kind": "explorer", "dataset_id": DATASET,
             "params": {"completion_event_ids": [request.event_id]}, "status": "COMPLETED", "remote_task_id": task_id}
        )  # fmt: skip
        tasks[task_id] = {
            "dataset_id": DATASET,
            "kind": "explorer",
            "status": "COMPLETED",
            "created_at": "2026-01-01T00:00:00.000Z",
            "observed_at": "2026-01-01T00:00:02.000Z",
        }
        origins[task_id] = {"dataset_id": DATASET, "kind": "explorer", "origins": [f"event:{request.event_id}"]}
    stats = {
        "now": "2026-01-01T00:00:10.000Z",
        "requests": {"import_from_explorer": len(jobs), "fetch_task": 2 * len(jobs)},
        "responses": {"import_from_explorer": {"202": len(jobs)}},
        "tasks_created": {DATASET: len(jobs)},
        "tasks": tasks,
    }
    return Observation(
        plan=plan, dataset_ids=[DATASET], sent={r.message_id: 1 for r in plan.requests}, jobs=jobs, events={},
        stats=stats, origins=origins, foreign_tasks=set(), deleted_tasks={}, interrupted_submits=0, late_posts=0,
        pending=[], last_delivered="5-0", stream_length=5, last_entry="5-0", calls_in_idle_window=0, all_ended=True,
        deaths=[],
    )  # fmt: skip


def test_a_clean_run_passes() -> None:
    verdict = check(_clean())
    assert verdict.ok, verdict.violations


def test_a_second_import_of_one_request_is_seen_without_the_ledger_s_help() -> None:
    seen = _clean()
    event = seen.plan.requests[0].event_id
    seen.stats["tasks"]["extra"] = dict(seen.stats["tasks"]["task-0"])
    seen.origins["extra"] = {"dataset_id": DATASET, "kind": "explorer", "origins": [f"event:{event}"]}
    seen.stats["tasks_created"][DATASET] += 1
    seen.stats["requests"]["import_from_explorer"] += 1
    kinds = check(seen).kinds()
    assert kinds["double-import"] == 1 and kinds["orphan-task"] == 1 and kinds["dataset-overfilled"] == 1
    assert kinds["api-calls-over-bound"] == 1  # one POST more than requests, with nothing to explain it


def test_swapped_tasks_and_lost_requests_and_stuck_jobs() -> None:
    seen = _clean()
    first, second = seen.jobs[0], seen.jobs[1]
    first["remote_task_id"], second["remote_task_id"] = second["remote_task_id"], first["remote_task_id"]
    seen.jobs[2]["status"] = "SUBMITTING"
    dropped = seen.jobs.pop(3)
    seen.stats["tasks"].pop(dropped["remote_task_id"])
    seen.origins.pop(dropped["remote_task_id"])
    seen.stats["tasks_created"][DATASET] -= 1
    seen.pending = [{"id": "1-0", "idle_ms": 60_000}]
    kinds = check(seen).kinds()
    assert kinds["wrong-owner"] == 2
    assert kinds["stuck-job"] == 1
    assert kinds["request-without-job"] == 1
    assert kinds["stale-unacked"] == 1


# --- schedules ---------------------------------------------------------------------------------------------------

TARGET = "00000000-0000-0000-0000-0000000000b0"
SOURCE = "00000000-0000-0000-0000-0000000000c0"
RECORDS = {n: f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3)}


def at(seconds: float) -> str:
    """A time ``seconds`` after 2026-01-01T00:00:00Z, as the campaign passes times on."""
    return datetime.fromtimestamp(1_767_225_600 + seconds, UTC).isoformat().replace("+00:00", "Z")


def _add_schedule_job(seen: Observation, job_id: str, key: str, params: dict[str, Any], origins: list[str]) -> None:
    """A schedule's chunk job, COMPLETED, with the remote task that imported ``origins`` into TARGET."""
    kind = "explorer" if "completion_event_ids" in params else "dataset"
    task_id = f"task-{job_id}"
    seen.jobs.append(
        {"id": job_id, "key": key, "kind": kind, "dataset_id": TARGET, "params": params, "status": "COMPLETED",
         "remote_task_id": task_id}
    )  # fmt: skip
    seen.stats["tasks"][task_id] = {
        "dataset_id": TARGET,
        "kind": kind,
        "status": "COMPLETED",
        "created_at": "2026-01-01T00:00:00.000Z",
        "observed_at": "2026-01-01T00:00:02.000Z",
    }
    seen.origins[task_id] = {"dataset_id": TARGET, "kind": kind, "origins": origins}
    seen.stats["tasks_created"][TARGET] = seen.stats["tasks_created"].get(TARGET, 0) + 1
    route = "import_from_explorer" if kind == "explorer" else "import_from_dataset"
    seen.stats["requests"][route] = seen.stats["requests"].get(route, 0) + 1


def _with_schedules() -> Observation:
    """The clean run plus an explorer-window schedule (team a, since t=50, watermark t=300, two fires) and a
    dataset-copy schedule (last fire at t=300) writing into TARGET, each item imported once.

    Events: e1 (t=100) and e2 (t=200) in the window; ``old`` before its start, ``late`` past its watermark, ``other``
    of team b. Source records 1 (t=100) and 2 (t=250) before the copy's last fire, 3 (t=350) after it."""
    seen = _clean()
    seen.dataset_ids.append(TARGET)
    window = {
        "id": "sch-w",
        "name": "win",
        "kind": "explorer-window",
        "dataset_id": TARGET,
        "watermark": at(300),
        "params": {"filter": {"field": "extra_fields.team", "op": "eq", "value": "a"}, "chunk_size": 2},
    }
    copy = {"id": "sch-c", "name": "copy", "kind": "dataset-copy", "dataset_id": TARGET, "watermark": None,
            "params": {"from_dataset_id": SOURCE, "chunk_size": 2}}  # fmt: skip
    runs = [
        {"schedule_id": "sch-w", "fire_time": at(200), "status": "SUBMITTED", "job_ids": ["jw1"],
         "window_start": at(50), "window_end": at(200)},
        {"schedule_id": "sch-w", "fire_time": at(300), "status": "SUBMITTED", "job_ids": ["jw2"],
         "window_start": at(200), "window_end": at(300)},
        {"schedule_id": "sch-c", "fire_time": at(300), "status": "SUBMITTED", "job_ids": ["jc1"],
         "window_start": None, "window_end": None},
    ]  # fmt: skip
    items = [
        {"schedule_id": "sch-w", "item_id": "e1", "job_id": "jw1", "retries": 0, "given_up": False},
        {"schedule_id": "sch-w", "item_id": "e2", "job_id": "jw2", "retries": 0, "given_up": False},
        {"schedule_id": "sch-c", "item_id": RECORDS[1], "job_id": "jc1", "retries": 0, "given_up": False},
        {"schedule_id": "sch-c", "item_id": RECORDS[2], "job_id": "jc1", "retries": 0, "given_up": False},
    ]
    _add_schedule_job(seen, "jw1", f"schedule:win:{at(200)}:0", {"completion_event_ids": ["e1"]}, ["event:e1"])
    _add_schedule_job(seen, "jw2", f"schedule:win:{at(300)}:0", {"completion_event_ids": ["e2"]}, ["event:e2"])
    copied = [RECORDS[1], RECORDS[2]]
    _add_schedule_job(
        seen, "jc1", f"schedule:copy:{at(300)}:0", {"dataset_record_ids": copied}, [f"record:{r}" for r in copied]
    )
    events = {
        name: {"created_at": at(t), "extra_fields": {"team": team}}
        for name, t, team in (("e1", 100, "a"), ("e2", 200, "a"), ("old", 10, "a"), ("late", 400, "a"),
                              ("other", 150, "b"))
    }  # fmt: skip
    source = [{"id": RECORDS[n], "origin": None, "created_at": at(t)} for n, t in ((1, 100), (2, 250), (3, 350))]
    target = [{"id": f"t-{origin}", "origin": origin, "created_at": at(301)}
              for origin in ("event:e1", "event:e2", f"record:{RECORDS[1]}", f"record:{RECORDS[2]}")]  # fmt: skip
    # Each request's event, imported once into the requests' dataset.
    requested = [{"id": f"q-{r.event_id}", "origin": f"event:{r.event_id}", "created_at": at(60)}
                 for r in seen.plan.requests]  # fmt: skip
    seen.schedules = ScheduleSeen(
        since=at(50), schedules=[window, copy], runs=runs, items=items,
        records={TARGET: target, SOURCE: source, DATASET: requested}, events=events,
    )  # fmt: skip
    return seen


def _target_record(seen: Observation, origin: str) -> None:
    assert seen.schedules is not None
    seen.schedules.records[TARGET].append({"id": f"extra-{origin}", "origin": origin, "created_at": at(302)})


def test_schedules_whose_items_are_each_imported_once_pass() -> None:
    verdict = check(_with_schedules())
    assert verdict.ok, verdict.violations
    # e1, e2 and records 1 and 2: record 3 came after the copy's last fire, ``late`` after the watermark.
    assert verdict.figures["schedule_items"] == 4
    assert verdict.figures["schedule_fires"] == 3


def test_a_request_s_event_held_twice_in_its_dataset_is_a_doubled_record() -> None:
    # What a double import leaves with the emulator's dedupe off, even when its second task is not seen.
    seen = _with_schedules()
    assert seen.schedules is not None
    event = seen.plan.requests[0].event_id
    seen.schedules.records[DATASET].append({"id": "r-again", "origin": f"event:{event}", "created_at": at(100)})
    assert check(seen).kinds() == Counter({"request-record-doubled": 1})
    seen.schedules.records[DATASET].pop()
    assert check(seen).ok


def test_a_completed_request_whose_record_is_gone_is_a_missing_record() -> None:
    # The ledger says COMPLETED, the task imported the event, yet its dataset holds no record of it: an item lost.
    seen = _with_schedules()
    assert seen.schedules is not None
    verdict = check(seen)
    assert verdict.ok, verdict.violations
    assert verdict.figures["completed_items_checked"] == len(seen.plan.requests)
    lost = seen.plan.requests[2]
    seen.schedules.records[DATASET] = [
        record for record in seen.schedules.records[DATASET] if record["origin"] != f"event:{lost.event_id}"
    ]
    verdict = check(seen)
    assert verdict.kinds() == Counter({"request-record-missing": 1})
    [(_, line)] = verdict.violations
    assert f"message:{lost.message_id}" in line and f"event:{lost.event_id} has no record" in line
    # A job not COMPLETED is not held to its records (a failed import imported nothing; the stuck check sees a
    # running one).
    seen.jobs[2]["status"] = "FAILED"
    seen.stats["tasks"][seen.jobs[2]["remote_task_id"]]["status"] = "FAILED"
    assert check(seen).ok


def test_an_item_imported_twice_is_a_doubled_item() -> None:
    seen = _with_schedules()
    _target_record(seen, "event:e1")
    _target_record(seen, f"record:{RECORDS[2]}")
    assert check(seen).kinds() == Counter({"schedule-item-doubled": 2})


def test_a_covered_item_missing_from_the_target_is_skipped() -> None:
    seen = _with_schedules()
    assert seen.schedules is not None
    # Record 2's chunk job says COMPLETED, yet the record is not in the target.
    seen.schedules.records[TARGET] = [
        r for r in seen.schedules.records[TARGET] if r["origin"] != f"record:{RECORDS[2]}"
    ]
    # An event in the window that no fire ever requested (no item row): the watermark passed it by.
    seen.schedules.events["e3"] = {"created_at": at(250), "extra_fields": {"team": "a"}}
    verdict = check(seen)
    assert verdict.kinds() == Counter({"schedule-item-skipped": 2})
    assert any("never requested" in line for _, line in verdict.violations)


def test_an_item_whose_job_still_runs_or_is_retried_next_is_a_note_not_a_violation() -> None:
    seen = _with_schedules()
    assert seen.schedules is not None
    seen.schedules.records[TARGET] = [r for r in seen.schedules.records[TARGET] if r["origin"].startswith("record:")]
    running, lost = seen.jobs[-3], seen.jobs[-2]
    running["status"] = "RUNNING"
    seen.stats["tasks"][running["remote_task_id"]]["status"] = "RUNNING"
    lost["status"] = "LOST"
    lost["remote_task_id"] = None  # its task vanished from the API
    seen.stats["tasks"].pop("task-jw2")
    seen.origins.pop("task-jw2")
    seen.stats["tasks_created"][TARGET] -= 1
    verdict = check(seen)
    assert verdict.ok, verdict.violations
    assert verdict.figures["schedule_waiting"] == 2
    assert any("is RUNNING" in note for note in verdict.notes)
    assert any("retry 1 due at the next fire" in note for note in verdict.notes)
    # Once its retries are spent (and not given up), a failed chunk's item is skipped.
    seen.schedules.items[1]["retries"] = 3
    assert check(seen).kinds() == Counter({"schedule-item-skipped": 1})


def test_a_fire_time_run_twice_is_seen() -> None:
    seen = _with_schedules()
    assert seen.schedules is not None
    seen.schedules.runs.append(dict(seen.schedules.runs[2], status="EMPTY", job_ids=[]))
    assert check(seen).kinds() == Counter({"schedule-fire-twice": 1})


def test_records_no_schedule_may_import_are_strays() -> None:
    seen = _with_schedules()
    for origin in ("event:old", "event:late", "event:other", f"record:{RECORDS[3]}", "record:nowhere"):
        _target_record(seen, origin)
    # Record 3 was created after the copy's last fire, but a fire listing the source later could take it: allowed.
    assert check(seen).kinds() == Counter({"schedule-item-stray": 4})


def test_a_window_no_fire_searched_is_a_gap() -> None:
    seen = _with_schedules()
    assert seen.schedules is not None
    seen.schedules.runs[1]["window_start"] = at(210)
    assert check(seen).kinds() == Counter({"schedule-window-gap": 1})


def test_a_plain_schedule_imports_once_per_completed_job() -> None:
    seen = _with_schedules()
    assert seen.schedules is not None
    seen.schedules.schedules.append(
        {"id": "sch-p", "name": "plain", "kind": "plain", "dataset_id": TARGET, "watermark": None,
         "params": {"completion_event_ids": ["p1"]}}
    )  # fmt: skip
    seen.schedules.events["p1"] = {"created_at": at(5), "extra_fields": {"team": "plain"}}
    for n, fire in enumerate((100, 102)):
        seen.schedules.runs.append(
            {"schedule_id": "sch-p", "fire_time": at(fire), "status": "SUBMITTED", "job_ids": [f"jp{n}"],
             "window_start": None, "window_end": None}
        )  # fmt: skip
        _add_schedule_job(seen, f"jp{n}", f"schedule:plain:{at(fire)}", {"completion_event_ids": ["p1"]}, ["event:p1"])
        _target_record(seen, "event:p1")
    assert check(seen).ok
    _target_record(seen, "event:p1")  # a third import for two fires
    assert check(seen).kinds() == Counter({"schedule-item-doubled": 1})
