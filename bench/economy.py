"""API economy: calls per import when many imports share a dataset and when each has a dataset of its own.

One run of our worker and beat on the whole path (request -> submit -> polls -> end), with two groups of imports
requested together:

- ``shared``: ``--shared`` imports (100) on ONE dataset, where due jobs are observed with ``list_tasks`` pages;
- ``spread``: ``--spread`` imports (100), each on a dataset of its own, observed with ``fetch_task``.

Calls are read from the emulator: the import POSTs per dataset, ``fetch_task`` per task, and ``list_tasks`` (only the
shared dataset ever has the three due jobs grouping needs, so every page belongs to it). Each group is set against
the schedule's minimum (:mod:`bench.schedule`) for the tasks' real durations, and against per-task polling on the
same schedule (what every baseline does: one ``fetch_task`` per poll, plus the submit).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from jobs.request_import import request_import
from store.models import TERMINAL_JOB_STATUSES, ImportJob, ImportKind

from .harness import EVENT_ID, celery_sender, our_stack, wait_until
from .inflight import POLICY
from .sampling import iso_to_ts, percentile
from .schedule import minimum_calls


def _request_all(stack: Any, targets: list[tuple[str, str]]) -> dict[str, str]:
    """Request one explorer import per (group, dataset); returns job id -> group."""
    sessions = stack.session_factory()
    sender = celery_sender(stack.broker_url)
    groups: dict[str, str] = {}
    try:
        with sender.producer_or_acquire() as producer:
            for group, dataset_id in targets:
                requested = request_import(
                    sessions,
                    kind=ImportKind.EXPLORER,
                    dataset_id=dataset_id,
                    params={"completion_event_ids": [EVENT_ID]},
                    origin="bench",
                    now=datetime.now(UTC),
                    deadline_s=6 * 3600.0,
                    send=lambda job_id: sender.send_task(
                        "dsimport.submit", args=[job_id], queue="dsimport", producer=producer
                    ),
                )
                groups[requested.job_id] = group
    finally:
        sender.close()
    return groups


def run(
    *,
    shared: int = 100,
    spread: int = 100,
    duration: str = "5-30",
    redis_db: int = 6,
    routed: bool = False,
    timeout_s: float = 240.0,
) -> dict[str, Any]:
    with our_stack("economy", redis_db=redis_db, task_duration=duration, routed=routed) as stack:
        emu = stack.emulator
        shared_dataset = emu.create_datasets(1)[0]
        spread_datasets = emu.create_datasets(spread)
        emu.reset_stats()
        targets = [("shared", shared_dataset)] * shared + [("spread", d) for d in spread_datasets]
        groups = _request_all(stack, targets)
        read = stack.session_factory(read_only=True)
        terminal = list(TERMINAL_JOB_STATUSES)

        def all_recorded() -> bool:
            with read() as session:
                done = session.scalar(select(func.count()).where(ImportJob.status.in_(terminal)))
            return bool(done == len(groups))

        wait_until(all_recorded, timeout_s=timeout_s, interval_s=0.5, what="all economy jobs recorded")
        time.sleep(0.5)
        stats = emu.stats()
        offset_s = emu.clock_offset()
        with read() as session:
            rows = session.execute(
                select(ImportJob.id, ImportJob.remote_task_id, ImportJob.finished_at, ImportJob.poll_count)
            ).all()
        tasks = stats["tasks"]
        list_calls = stats["requests"].get("list_tasks", 0)
        created = stats["tasks_created"]
        result: dict[str, Any] = {"duration_s": duration, "policy": _policy_text(), "groups": {}}
        for group, datasets in (("shared", [shared_dataset]), ("spread", spread_datasets)):
            members = [r for r in rows if groups.get(r.id) == group]
            task_ids = [r.remote_task_id for r in members]
            durations = [iso_to_ts(tasks[t]["terminal_at"]) - iso_to_ts(tasks[t]["created_at"]) for t in task_ids]
            fetches = sum(tasks[t]["fetch_count"] for t in task_ids)
            submits = sum(created.get(d, 0) for d in datasets)
            lists = list_calls if group == "shared" else 0
            calls = submits + fetches + lists
            per_task_polling = sum(minimum_calls(POLICY, d, reading="forecast") for d in durations)
            restart = sum(minimum_calls(POLICY, d, reading="restart") for d in durations)
            pure_backoff = sum(minimum_calls(POLICY, d, reading="backoff") for d in durations)
            lags = [
                r.finished_at.timestamp() - (iso_to_ts(tasks[r.remote_task_id]["terminal_at"]) + offset_s)
                for r in members
            ]
            n = len(members)
            result["groups"][group] = {
                "imports": n,
                "datasets": len(datasets),
                "mean_duration_s": round(statistics.fmean(durations), 1),
                "calls": {"submit": submits, "fetch_task": fetches, "list_tasks": lists},
                "calls_per_import": round(calls / n, 2),
                "polls_per_import": round(sum(r.poll_count for r in members) / n, 2),
                "minimum_per_import": round(per_task_polling / n, 2),
                "ratio_to_minimum": round(calls / per_task_polling, 2),
                "pure_backoff_minimum_per_import": round(pure_backoff / n, 2),
                # The schedule before the forecast (restart at the initial interval whenever progress moved).
                "restart_minimum_per_import": round(restart / n, 2),
                "per_task_polling_per_import": round(per_task_polling / n, 2),
                "fewer_than_per_task_polling": round(per_task_polling / calls, 1),
                "lag_p50_s": round(percentile(lags, 0.5), 2),
                "lag_p99_s": round(percentile(lags, 0.99), 2),
            }
        return result


def _policy_text() -> str:
    p = POLICY
    moving = (
        f"while progress moves, {p.forecast_fraction:g} x the earliest end its rate allows (within "
        f"{p.initial_interval_s:g}-{p.max_interval_s:g} s; an end due sooner at the estimate)"
        if p.forecasts
        else f"restart at {p.initial_interval_s:g} s when progress moves"
    )
    return (
        f"first poll {p.initial_interval_s:g} s after submit, x{p.multiplier:g} per poll without progress, "
        f"cap {p.max_interval_s:g} s, jitter {p.jitter_ratio:.0%}; {moving}"
    )


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
