"""Turning benchmark results into Markdown tables, the target check and the files under bench/results/."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .machine import one_line

RESULTS = Path(__file__).resolve().parent / "results"


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _ratio(baseline: Any, ours: Any) -> str:
    if not baseline or not ours:
        return "-"
    return f"{baseline / ours:,.1f}x"


def inflight_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N | contender | in flight | all recorded after | lag p50 / p95 / p99 | API calls per import | CPU s "
        "| peak memory RSS (PSS) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        extrapolated = r.get("time_to_all_is_extrapolated")
        time_text = (
            f"≥ {_num(r['time_to_all_s'], 0)} s (extrapolated)" if extrapolated else f"{_num(r['time_to_all_s'])} s"
        )
        lag = (
            "-"
            if extrapolated
            else f"{_num(r['lag_p50_s'], 2)} / {_num(r['lag_p95_s'], 2)} / {_num(r['lag_p99_s'], 2)} s"
        )
        in_flight = r.get("in_flight", r["n"])
        recorded = "" if extrapolated or r.get("recorded") == r["n"] else f" ({r.get('recorded')} recorded)"
        cpu = r.get("cpu_s", r.get("cpu_s_window"))
        lines.append(
            f"| {_num(r['n'])} | {r['contender']}{recorded} | {_num(in_flight)} | {time_text} | {lag} "
            f"| {_num(r.get('calls_per_import'), 2)} | {_num(cpu)} "
            f"| {_num(r['peak_rss_mib'], 0)} ({_num(r['peak_pss_mib'], 0)}) MiB |"
        )
    return lines


def ratio_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each baseline as a ratio to ours at the same N."""
    lines = []
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_n.setdefault(r["n"], []).append(r)
    for n, group in sorted(by_n.items()):
        ours = next((r for r in group if r["contender"].startswith("ours")), None)
        if ours is None:
            continue
        for r in group:
            if r is ours or r["contender"].startswith("ours"):
                continue
            parts = [f"in flight {_ratio(ours['n'], r.get('in_flight', r['n']))} more for ours"]
            parts.append(f"time to all recorded {_ratio(r['time_to_all_s'], ours['time_to_all_s'])}")
            if not r.get("time_to_all_is_extrapolated"):
                parts.append(f"p99 lag {_ratio(r['lag_p99_s'], ours['lag_p99_s'])}")
                parts.append(f"CPU {_ratio(r['cpu_s'], ours['cpu_s'])}")
                parts.append(f"API calls {_ratio(r['calls_per_import'], ours['calls_per_import'])}")
            lines.append(
                f"- N = {n:,}, {r['contender']} vs {ours['contender']}: " + ", ".join(parts) + " (baseline / ours)"
            )
    return lines


def economy_table(economy: dict[str, Any]) -> list[str]:
    lines = [
        "| imports | datasets | mean duration | calls per import (submit + polls) | schedule minimum | ratio "
        "| pure-backoff minimum | fewer calls than per-task polling | lag p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in economy["groups"].items():
        calls = g["calls"]
        detail = f"{calls['submit']} + {calls['fetch_task']} fetch + {calls['list_tasks']} list"
        lines.append(
            f"| {g['imports']} ({name}) | {g['datasets']} | {g['mean_duration_s']} s "
            f"| {_num(g['calls_per_import'], 2)} ({detail}) | {_num(g['minimum_per_import'], 2)} "
            f"| {_num(g['ratio_to_minimum'], 2)} "
            f"| {_num(g['pure_backoff_minimum_per_import'], 2)} | {_num(g['fewer_than_per_task_polling'], 1)}x "
            f"| {_num(g['lag_p50_s'], 2)} / {_num(g['lag_p99_s'], 2)} s |"
        )
    return lines


def submit_table(submit: dict[str, Any]) -> list[str]:
    lines = [
        "| path | requests | seconds | per second | worker CPU s | pool |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("ours", "celery_noop"):
        r = submit[key]
        lines.append(
            f"| {r['path']} | {_num(r['requests'])} | {_num(r['seconds'], 2)} | {_num(r['per_s'])} "
            f"| {_num(r['worker_cpu_s'])} | {r['pool']} |"
        )
    lines.append(f"| **ratio ours / Celery no-op** | | | **{submit['ratio']:.2f}** | | |")
    return lines


def targets(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(target, met, measured) for each target of the issue that this run measured."""
    checks: list[tuple[str, bool | None, str]] = []
    rows = results.get("inflight", [])
    ours_rows = [r for r in rows if r["contender"].startswith("ours") and "poll queue" not in r["contender"]]
    cap_s = results.get("policy", {}).get("max_interval_s", 10.0)
    for r in ours_rows:
        n = r["n"]
        checks.append(
            (f"{n:,} in flight on one worker process, all recorded", r["recorded"] == n, f"{r['recorded']:,}")
        )
        checks.append(
            (f"N={n:,}: p99 lag ≤ cap + 1 s = {cap_s + 1:g} s", r["lag_p99_s"] <= cap_s + 1, f"{r['lag_p99_s']:.2f} s")
        )
        checks.append(
            (
                f"N={n:,}: worker peak memory < 300 MB",
                r["peak_rss_mib"] * 1.048576 < 300,
                f"{r['peak_rss_mib']:.0f} MiB RSS",
            )
        )
        naive = next((b for b in rows if b["contender"].startswith("Celery prefork") and b["n"] == n), None)
        if naive is not None:
            ratio = n / max(1, naive["in_flight"])
            # Ours follows all N at once, so the ratio can reach 1,000 only from N = 1,000 x the naive capacity.
            met = ratio >= 1000 if n >= 1000 * naive["in_flight"] else None
            capacity = f"{n:,} / {naive['in_flight']} = {ratio:,.0f}x"
            checks.append((f"N={n:,}: ≥ 1,000x the naive prefork loop's in-flight capacity", met, capacity))
        threads = next((b for b in rows if b["contender"].startswith("Celery threads") and b["n"] == n), None)
        if threads is not None:
            checks.append(
                (
                    f"N={n:,}: lower p99 lag than the threads loop",
                    r["lag_p99_s"] < threads["lag_p99_s"],
                    f"{r['lag_p99_s']:.2f} s vs {threads['lag_p99_s']:.2f} s",
                )
            )
            checks.append(
                (
                    f"N={n:,}: less CPU than the threads loop",
                    r["cpu_s"] < threads["cpu_s"],
                    f"{r['cpu_s']:.1f} s vs {threads['cpu_s']:.1f} s",
                )
            )
    economy = results.get("economy")
    if economy:
        for name, g in economy["groups"].items():
            checks.append(
                (
                    f"economy ({name}): calls per import ≤ 1.1x the schedule's minimum",
                    g["ratio_to_minimum"] <= 1.1,
                    f"{g['ratio_to_minimum']:.2f}x",
                )
            )
        spread = economy["groups"].get("spread")
        if spread:
            checks.append(
                (
                    "economy: ≤ 4 calls per import and p99 lag ≤ 2 s, 100 imports on 100 datasets",
                    spread["calls_per_import"] <= 4 and spread["lag_p99_s"] <= 2,
                    f"{spread['calls_per_import']:.2f} calls, p99 {spread['lag_p99_s']:.2f} s",
                )
            )
        shared = economy["groups"].get("shared")
        if shared:
            checks.append(
                (
                    "economy: ≤ 1.3 calls per import, 100 imports on one dataset",
                    shared["calls_per_import"] <= 1.3,
                    f"{shared['calls_per_import']:.2f}",
                )
            )
            checks.append(
                (
                    "economy: ≥ 5x fewer calls than per-task polling, 100 imports on one dataset",
                    shared["fewer_than_per_task_polling"] >= 5,
                    f"{shared['fewer_than_per_task_polling']:.1f}x",
                )
            )
    submit = results.get("submit")
    if submit:
        checks.append(("submit throughput ≥ half of Celery's no-op", submit["ratio"] >= 0.5, f"{submit['ratio']:.2f}x"))
    return checks


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    out = [
        f"# Benchmarks: {results['profile']} profile",
        "",
        f"Machine: {one_line(machine)}; load average at end "
        f"{results.get('load_average_at_end')}. Total time {results.get('seconds', 0):.0f} s.",
        "",
    ]
    if results.get("notes"):
        out += [f"Notes: {results['notes']}", ""]
    if results.get("inflight"):
        out += [
            "## In-flight capacity and detection lag",
            "",
            f"Remote durations drawn from "
            f"{results['inflight'][0]['duration_s']} s; our worker: {results.get('worker_pool', '')}.",
            "",
        ]
        out += [*inflight_table(results["inflight"]), ""]
        out += ["Each baseline as a ratio to ours:", "", *ratio_lines(results["inflight"]), ""]
    if results.get("economy"):
        out += ["## API economy", "", f"Poll policy: {results['economy']['policy']}.", ""]
        out += [*economy_table(results["economy"]), ""]
    if results.get("submit"):
        out += ["## Submit throughput", "", *submit_table(results["submit"]), ""]
    checks = targets(results)
    if checks:
        out += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
        verdict = {True: "yes", False: "no", None: "not reachable at this N"}
        out += [f"| {t} | {verdict[ok]} | {v} |" for t, ok, v in checks] + [""]
    return "\n".join(out)


def write(results: dict[str, Any], name: str) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(markdown(results) + "\n")
    return json_path, md_path
