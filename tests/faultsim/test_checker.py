"""The campaign's own parts, without processes: plans are reproducible, the checker sees what it must see."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .checker import Observation, check
from .plan import FAULT_WEIGHTS, draw_plan, parse_seeds

DATASET = "00000000-0000-0000-0000-00000000000a"


def test_a_seed_always_draws_the_same_plan() -> None:
    assert draw_plan(42).describe() == draw_plan(42).describe()
    assert draw_plan(42).describe() != draw_plan(43).describe()


def test_every_fault_kind_is_drawn_within_a_hundred_seeds() -> None:
    drawn = {fault.kind for seed in range(1, 101) for fault in draw_plan(seed).faults}
    assert drawn == set(FAULT_WEIGHTS)


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
