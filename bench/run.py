"""Run the benchmarks of issue 6 and write bench/results/<profile>.json and .md.

    python -m bench.run            # quick profile (make bench): N = 1,000, under 5 minutes
    python -m bench.run --full     # adds N = 5,000 and 10,000 (ours, the poll-queue variant, the thread loops), ~25 min
    python -m bench.run --only inflight economy submit datasets
    python -m bench.run --big      # goal 4: N = 50,000 ours on SQLite and on PostgreSQL -> bench/results/big.json

Each step records the load average before and after it; the report does not judge a target whose step began on a
busy machine (1-minute load above the core count).

Every benchmark starts its own emulator, Redis database (5 to 8, flushed) and SQLite ledger in a temporary folder.
Our worker runs as ONE process, ``dsimport worker --pool prefork --concurrency 1`` (the pool's parent receives
messages while its single child runs the poll rounds, and prefork is the pool that enforces the hard time limit),
plus ``dsimport beat`` for the poll tick.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from . import economy, scaleout, submit
from .harness import POSTGRES_BASE_URL, REDIS_BASE_URL
from .inflight import POLICY, Case, run_naive_prefork, run_ours, run_sdk_script, run_threads_loop
from .machine import busy_warning, cores, describe, load_average, postgres_version, settle, test_runs
from .report import markdown, write

QUICK_N = (1000,)
FULL_N = (1000, 5000, 10000)
# Goal 3 of issue 13: datasets x imports per dataset, all in flight at once.
SPREAD_SHAPE = (100, 100)
# Goal 4: imports in flight on one worker process, on each ledger.
BIG_N = 50_000
BENCHMARKS = ("inflight", "economy", "submit", "datasets", "inflight50k", "scaleout")
# Before each step, wait at most this long for the load left by the previous one to fall to the core count.
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "180"))


def poll_tick_routed() -> bool:
    """True when the service already puts the poll tick on a queue of its own (then the variant is moot)."""
    from worker.celery_app import app

    routes = app.conf.task_routes or {}
    return isinstance(routes, dict) and "queue" in dict(routes.get("dsimport.poll_due", {}))


def naive_for(measured: dict[str, Any], case: Case) -> dict[str, Any]:
    """The naive loop's row for N imports, from its measured capacity."""
    capacity = max(1, measured["in_flight"])
    row = dict(measured, n=case.n, time_to_all_s=round(case.n * case.mean_duration_s / capacity, 0))
    row["notes"] = measured["notes"].replace("N x mean", f"N = {case.n:,} x mean")
    return row


def _stamp(result: Any, before: list[float], after: list[float]) -> None:
    """Write the step's load averages on each row it returned (the report judges a row by its step's start)."""
    for row in result if isinstance(result, list) else [result]:
        if isinstance(row, dict):
            row.setdefault("load_average_before", before)
            row.setdefault("load_average_after", after)


def step(name: str, run: Callable[[], Any], log: list[dict[str, Any]]) -> Any:
    print(f"-- {name}", flush=True)
    settled_s = settle(max_wait_s=SETTLE_S)
    started = time.monotonic()
    before = load_average()
    print(f"   load average {before}", flush=True)
    warning = busy_warning(before, cores())
    if warning:
        print(f"   {warning}", flush=True)
    tests = test_runs()
    if tests:
        print(f"   WARNING: {len(tests)} pytest processes running beside the benchmark (pids {tests[:5]})", flush=True)
    result = run()
    after = load_average()
    _stamp(result, before, after)
    seconds = round(time.monotonic() - started)
    log.append(
        {
            "name": name,
            "seconds": seconds,
            "settled_s": settled_s,
            "pytest_processes_at_start": len(tests),
            "load_average_before": before,
            "load_average_after": after,
        }
    )
    print(f"   done in {seconds} s (load average {after})", flush=True)
    return result


def run(
    profile: str,
    only: set[str],
    variants: bool,
    *,
    spread_shape: tuple[int, int] = SPREAD_SHAPE,
    big_n: int = BIG_N,
    ours_settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the benchmarks in ``only``; ``ours_settings`` (DSIMPORT_* settings, lower case, without the prefix)
    change our worker's configuration in every "ours" row, and are written in its contender name."""
    started = time.monotonic()
    ours = partial(run_ours, settings=ours_settings)
    changed = ", ".join(f"{key}={value}" for key, value in sorted((ours_settings or {}).items()))
    results: dict[str, Any] = {
        "profile": profile,
        "machine": describe(f"{REDIS_BASE_URL}/5"),
        "worker_pool": "`dsimport worker --pool prefork --concurrency 1` + `dsimport beat`, "
        + (f"settings changed: {changed}" if changed else "default settings"),
        "policy": {
            "initial_interval_s": POLICY.initial_interval_s,
            "multiplier": POLICY.multiplier,
            "max_interval_s": POLICY.max_interval_s,
            "jitter_ratio": POLICY.jitter_ratio,
            "forecast_fraction": POLICY.forecast_fraction,
        },
        "steps": [],
    }
    log: list[dict[str, Any]] = results["steps"]
    sizes = FULL_N if profile == "full" else QUICK_N
    rows: list[dict[str, Any]] = []
    if "inflight" in only:
        results["inflight"] = rows
        for n in sizes:
            case = Case(n=n)
            rows.append(step(f"in-flight ours N={n}", partial(ours, case), log))
            if variants and not poll_tick_routed():
                rows.append(step(f"in-flight ours+poll queue N={n}", partial(ours, case, routed=True), log))
    if "datasets" in only:
        datasets, per_dataset = spread_shape
        spread = Case(n=datasets * per_dataset, datasets=datasets)
        results["spread"] = step(f"in-flight ours {datasets} datasets x {per_dataset}", partial(ours, spread), log)
    if "inflight50k" in only:
        results["machine"]["versions"]["postgresql"] = postgres_version(POSTGRES_BASE_URL)
        big: list[dict[str, Any]] = []
        results["big"] = big
        for ledger in ("sqlite", "postgresql"):
            case = Case(n=big_n, ledger=ledger)
            big.append(step(f"in-flight ours N={big_n} on {ledger}", partial(ours, case), log))
    if "economy" in only:
        results["economy"] = step("economy", lambda: economy.run(), log)
    if "submit" in only:
        # The full profile's burst: 5,000 requests written at once, each timed to RUNNING.
        m = 5000 if profile == "full" else 500
        results["submit"] = step(f"submit M={m}", lambda: submit.run(m), log)
    if "scaleout" in only:
        results["scaleout"] = step("scaleout", lambda: scaleout.run(), log)
    if "inflight" in only:
        # The baselines come last: a thread pool of N threads leaves a load average of N behind it for minutes
        # (runnable threads count), which would keep every row after it from being judged.
        # The naive loop's capacity does not depend on N: measured once, its time extrapolated for each N.
        naive: dict[str, Any] = step("in-flight naive prefork", lambda: run_naive_prefork(Case(n=sizes[0])), log)
        for n in sizes:
            case = Case(n=n)
            rows.append(step(f"in-flight threads N={n}", partial(run_threads_loop, case), log))
            rows.append(step(f"in-flight SDK N={n}", partial(run_sdk_script, case), log))
            rows.append(naive_for(naive, case))
        # The table reads by N, ours first.
        rows.sort(key=lambda row: (row["n"], not row["contender"].startswith("ours")))
    results["load_average_at_end"] = load_average()
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="N = 1,000, 5,000 and 10,000")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        default=None,
        help="datasets: goal 3, 100 datasets x 100 imports (in the full profile); inflight50k: goal 4 (see --big)",
    )
    parser.add_argument(
        "--big",
        action="store_true",
        help=f"only N = {BIG_N:,} ours on SQLite and on PostgreSQL (about 10 minutes each); results named 'big'",
    )
    parser.add_argument("--big-n", type=int, default=BIG_N, help="N for inflight50k (a smaller N for a smoke run)")
    parser.add_argument(
        "--datasets-shape",
        default="x".join(map(str, SPREAD_SHAPE)),
        help="DATASETSxIMPORTS for the datasets benchmark (default %(default)s)",
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        default=None,
        help="also run ours with the poll tick on its own queue (bench/routed_app.py); on by default with --full",
    )
    parser.add_argument(
        "--ours-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of our worker for every 'ours' row, e.g. poll_batch_size=10000 (DSIMPORT_POLL_BATCH_SIZE)",
    )
    parser.add_argument("--name", default=None, help="results file name (default: the profile)")
    parser.add_argument("--note", default="", help="a line written with the results (e.g. what else was running)")
    args = parser.parse_args()
    profile = "full" if args.full else "quick"
    variants = args.full if args.variants is None else args.variants
    default = ["inflight", "economy", "submit", *(["datasets"] if profile == "full" else [])]
    only = {"inflight50k"} if args.big else set(args.only or default)
    datasets, _, per_dataset = args.datasets_shape.partition("x")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    warning = busy_warning(load_average(), cores())
    if warning:
        print(f"\n{'!' * 100}\n{warning}\n{'!' * 100}\n", flush=True)
    results = run(profile, only, variants, spread_shape=(int(datasets), int(per_dataset or 1)), big_n=args.big_n)
    if args.note:
        results["notes"] = args.note
    json_path, md_path = write(results, args.name or ("big" if args.big else profile))
    print()
    print(markdown(results))
    print(f"\nwritten: {json_path.relative_to(json_path.parents[2])}, {md_path.relative_to(md_path.parents[2])}")


if __name__ == "__main__":
    main()
