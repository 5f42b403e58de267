"""Turning benchmark results into Markdown tables, the target check and the files under bench/results/."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .machine import is_busy, one_line

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# The results files the README's table is made of, in this order; those absent are left out.
README_SOURCES = (
    "full.json",
    "datasets-finalize-batches.json",
    "big.json",
    "submit.json",
    "scaleout.json",
    "cli-startup.json",
)


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
        "| peak memory RSS (PSS) | load 1 min: start → end |",
        "|---|---|---|---|---|---|---|---|---|",
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
        calls = _num(r.get("calls_per_import"), 2)
        if r.get("api_calls_per_s") is not None and not extrapolated:
            calls += f" ({_num(r['api_calls_per_s'])}/s)"
        ledger = f", {r['ledger']}" if r.get("ledger") else ""
        lines.append(
            f"| {_num(r['n'])} | {r['contender']}{ledger}{recorded} | {_num(in_flight)} | {time_text} | {lag} "
            f"| {calls} | {_num(cpu)} "
            f"| {_num(r['peak_rss_mib'], 0)} ({_num(r['peak_pss_mib'], 0)}) MiB | {_load_text(r)} |"
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
    ours = submit["ours"]
    if ours.get("to_running_p50_s") is not None:
        lines += [
            "",
            f"Time from a request's XADD to its job RUNNING, {ours['requests']:,} requests sent at once: "
            f"p50 {ours['to_running_p50_s']:.2f} s, p99 {ours['to_running_p99_s']:.2f} s.",
        ]
    return lines


@dataclass(frozen=True)
class Check:
    """One target of the issues against what a row measured, and the load the row's step started under.

    ``goal`` is the goal's number in issue 13 ("" for the earlier targets of issue 6). ``load`` is the load average
    when the step began (None: not recorded); ``cores`` the machine's core count.
    """

    goal: str
    target: str
    met: bool | None
    measured: str
    load: list[float] | None = None
    cores: int | None = None
    load_source: str = "step"

    @property
    def busy(self) -> bool:
        return self.load is not None and self.cores is not None and is_busy(self.load, self.cores)

    def verdict(self) -> str:
        """met / missed / not reachable, unless the machine was busy when the step began: then not judged."""
        if self.busy:
            assert self.load is not None
            where = "" if self.load_source == "step" else f" at the {self.load_source}'s start"
            return f"not judged: machine busy{where} (load {self.load[0]:g} on {self.cores} cores)"
        verdict = {True: "met", False: "missed", None: "not reachable at this N"}[self.met]
        return verdict if self.load is not None else f"{verdict} (load at start not recorded)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "target": self.target,
            "met": self.met,
            "measured": self.measured,
            "load_average_before": self.load,
            "cores": self.cores,
            "verdict": self.verdict(),
        }

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, cores: int | None = None, goal: str = "", load: list[float] | None = None
    ) -> Check:
        """A check written by another benchmark (a results file's ``targets`` list; see bench/README.md).

        ``goal`` and ``load`` (the run's load at start) stand in for what the entry does not say; a ``verdict``
        of "met" or "missed" stands for ``met``.
        """
        met = raw.get("met", {"met": True, "missed": False}.get(str(raw.get("verdict", ""))))
        return cls(
            goal=str(raw.get("goal", goal)),
            target=str(raw["target"]),
            met=met,
            measured=str(raw.get("measured", "")),
            load=raw.get("load_average_before", load),
            cores=raw.get("cores", cores),
        )


def _load_of(row: dict[str, Any], results: dict[str, Any]) -> tuple[list[float] | None, str]:
    """The load average when the row's step began; for results older than per-step loads, the run's start."""
    if row.get("load_average_before") is not None:
        return row["load_average_before"], "step"
    run_load = results.get("machine", {}).get("load_average_at_start")
    return (run_load, "run") if run_load is not None else (None, "step")


def targets(results: dict[str, Any]) -> list[Check]:
    """A check for each target of the issues that this run measured."""
    checks: list[Check] = []
    cores = results.get("machine", {}).get("cores")

    def check(row: dict[str, Any], goal: str, target: str, met: bool | None, measured: str) -> None:
        load, source = _load_of(row, results)
        if row.get("settings"):
            # Not the shipped configuration: say so beside the number.
            measured += " (with " + ", ".join(f"{k}={v}" for k, v in sorted(row["settings"].items())) + ")"
        checks.append(Check(goal, target, met, measured, load, cores, source))

    rows = results.get("inflight", [])
    ours_rows = [r for r in rows if r["contender"].startswith("ours") and "poll queue" not in r["contender"]]
    cap_s = results.get("policy", {}).get("max_interval_s", 10.0)
    for r in ours_rows:
        n = r["n"]
        check(r, "", f"{n:,} in flight on one worker process, all recorded", r["recorded"] == n, f"{r['recorded']:,}")
        check(
            r, "", f"N={n:,}: p99 lag ≤ cap + 1 s = {cap_s + 1:g} s", r["lag_p99_s"] <= cap_s + 1,
            f"{r['lag_p99_s']:.2f} s",
        )  # fmt: skip
        check(
            r, "", f"N={n:,}: worker peak memory < 300 MB", r["peak_rss_mib"] * 1.048576 < 300,
            f"{r['peak_rss_mib']:.0f} MiB RSS",
        )  # fmt: skip
        naive = next((b for b in rows if b["contender"].startswith("Celery prefork") and b["n"] == n), None)
        if naive is not None:
            ratio = n / max(1, naive["in_flight"])
            # Ours follows all N at once, so the ratio can reach 1,000 only from N = 1,000 x the naive capacity.
            met = ratio >= 1000 if n >= 1000 * naive["in_flight"] else None
            capacity = f"{n:,} / {naive['in_flight']} = {ratio:,.0f}x"
            check(r, "", f"N={n:,}: ≥ 1,000x the naive prefork loop's in-flight capacity", met, capacity)
        threads = next((b for b in rows if b["contender"].startswith("Celery threads") and b["n"] == n), None)
        if threads is not None:
            theirs = threads.get("lag_p99_s")
            if theirs is None or theirs != theirs:  # None or NaN: the loop recorded no ending at all
                lower, versus = True, f"none of {threads.get('in_flight', n):,} in flight recorded"
            else:
                lower, versus = r["lag_p99_s"] < theirs, f"{theirs:.2f} s"
            check(
                r, "", f"N={n:,}: lower p99 lag than the threads loop", lower,
                f"{r['lag_p99_s']:.2f} s vs {versus}",
            )  # fmt: skip
            check(
                r, "", f"N={n:,}: less CPU than the threads loop", r["cpu_s"] < threads["cpu_s"],
                f"{r['cpu_s']:.1f} s vs {threads['cpu_s']:.1f} s",
            )  # fmt: skip
    spread = results.get("spread")
    if spread:
        shape = f"{spread['datasets']:,} datasets x {spread['n'] // max(1, spread['datasets']):,} imports"
        check(
            spread, "3", f"{shape} in flight: p99 lag ≤ 2 s while the poller averages ≤ 100 API calls/s",
            spread["recorded"] == spread["n"] and spread["lag_p99_s"] <= 2 and spread["api_calls_per_s"] <= 100,
            f"p99 {spread['lag_p99_s']:.2f} s, {spread['api_calls_per_s']:.1f} calls/s, "
            f"{spread['recorded']:,} of {spread['n']:,} recorded",
        )  # fmt: skip
    for r in results.get("big", []):
        n, ledger = r["n"], r.get("ledger", "sqlite")
        check(
            r, "4", f"{n:,} in flight on one worker process ({ledger}): all recorded, peak RSS < 400 MiB",
            r["recorded"] == n and r["peak_rss_mib"] < 400, f"{r['recorded']:,} recorded, {r['peak_rss_mib']:.0f} MiB",
        )  # fmt: skip
        check(
            r, "4", f"{n:,} in flight ({ledger}): p99 lag ≤ cap + 1 s = {cap_s + 1:g} s",
            r["lag_p99_s"] <= cap_s + 1, f"{r['lag_p99_s']:.2f} s",
        )  # fmt: skip
    economy = results.get("economy")
    if economy:
        for name, g in economy["groups"].items():
            check(
                economy, "", f"economy ({name}): calls per import ≤ 1.1x the schedule's minimum",
                g["ratio_to_minimum"] <= 1.1, f"{g['ratio_to_minimum']:.2f}x",
            )  # fmt: skip
        spread_group = economy["groups"].get("spread")
        if spread_group:
            check(
                economy, "2", "economy: ≤ 4 calls per import and p99 lag ≤ 2 s, 100 imports on 100 datasets",
                spread_group["calls_per_import"] <= 4 and spread_group["lag_p99_s"] <= 2,
                f"{spread_group['calls_per_import']:.2f} calls, p99 {spread_group['lag_p99_s']:.2f} s",
            )  # fmt: skip
        shared = economy["groups"].get("shared")
        if shared:
            check(
                economy, "2", "economy: ≤ 1.3 calls per import, 100 imports on one dataset",
                shared["calls_per_import"] <= 1.3, f"{shared['calls_per_import']:.2f}",
            )  # fmt: skip
            check(
                economy, "", "economy: ≥ 5x fewer calls than per-task polling, 100 imports on one dataset",
                shared["fewer_than_per_task_polling"] >= 5, f"{shared['fewer_than_per_task_polling']:.1f}x",
            )  # fmt: skip
    submit = results.get("submit")
    if submit and submit.get("ratio") is not None:
        check(
            submit, "1", "submit throughput ≥ a Celery no-op task's on the same broker",
            submit["ratio"] >= 1.0, f"{submit['ratio']:.2f}x",
        )  # fmt: skip
    run_load = results.get("machine", {}).get("load_average_at_start")
    goal = {"cli-startup": "6"}.get(str(results.get("benchmark", "")), "")
    checks += [Check.from_dict(raw, cores=cores, goal=goal, load=run_load) for raw in results.get("targets", [])]
    for metric, verdict in (results.get("verdict") or {}).items():
        # The scale-out benchmark: each per-job metric must not grow from 1 to 4 workers (goal 5).
        first = (results.get("rows") or [{}])[0]
        checks.append(
            Check(
                "5",
                f"1 → 4 workers on one PostgreSQL ledger: {metric.replace('_', ' ')} does not grow",
                None if verdict.startswith("not judged") else verdict.startswith("does not grow"),
                verdict.split(": ", 1)[-1],
                first.get("load_average_at_start", run_load),
                cores,
            )
        )
    return checks


def _load_text(row: dict[str, Any]) -> str:
    before, after = row.get("load_average_before"), row.get("load_average_after")
    if before is None:
        return "-"
    return f"{before[0]:g} → {after[0]:g}" if after else f"{before[0]:g}"


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
    if results.get("spread"):
        spread = results["spread"]
        out += [
            "## Many datasets, many imports each (goal 3)",
            "",
            f"{spread['datasets']:,} datasets x {spread['n'] // max(1, spread['datasets']):,} imports, ours only; "
            f"API calls per second = the emulator's fetch_task + list_tasks counts / time until all recorded.",
            "",
            *inflight_table([spread]),
            "",
        ]
    if results.get("big"):
        n = results["big"][0]["n"]
        out += [f"## {n:,} in flight on one worker process (goal 4)", "", *inflight_table(results["big"]), ""]
    if results.get("economy"):
        out += ["## API economy", "", f"Poll policy: {results['economy']['policy']}.", ""]
        out += [*economy_table(results["economy"]), "", f"Load 1 min, start → end: {_load_text(results['economy'])}."]
        out += [""]
    if results.get("submit"):
        out += ["## Submit throughput", "", *submit_table(results["submit"]), ""]
        out += [f"Load 1 min, start → end: {_load_text(results['submit'])}.", ""]
    checks = targets(results)
    if checks:
        out += ["## Targets", "", *targets_table(checks), ""]
    steps = [s for s in results.get("steps", []) if isinstance(s, dict)]
    if steps:
        out += [
            "## Steps",
            "",
            "| step | seconds | waited for the load to settle | load 1 / 5 / 15 min: start → end "
            "| pytest processes at start |",
            "|---|---|---|---|---|",
        ]
        for s in steps:
            loads = f"{_loads(s.get('load_average_before'))} → {_loads(s.get('load_average_after'))}"
            tests = s.get("pytest_processes_at_start", "-")
            out.append(f"| {s['name']} | {s['seconds']} | {s.get('settled_s', 0):g} s | {loads} | {tests} |")
        out.append("")
    return "\n".join(out)


def _loads(load: list[float] | None) -> str:
    return "-" if not load else " / ".join(f"{value:g}" for value in load)


def targets_table(checks: list[Check]) -> list[str]:
    lines = ["| goal | target | measured | load 1 min at start | verdict |", "|---|---|---|---|---|"]
    for c in checks:
        load = "-" if c.load is None else f"{c.load[0]:g} ({c.cores} cores)"
        lines.append(f"| {c.goal or '-'} | {c.target} | {c.measured} | {load} | {c.verdict()} |")
    return lines


def write(results: dict[str, Any], name: str) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(markdown(results) + "\n")
    return json_path, md_path


# ------------------------------------------------------------------------------------------ the README's table


def _source_line(name: str, results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    parts = [f"`bench/results/{name}`"]
    if machine.get("date"):
        parts.append(str(machine["date"]))
    if machine.get("cores"):
        parts.append(f"{machine['cores']} cores")
    if machine.get("load_average_at_start") is not None:
        parts.append(f"load at start {machine['load_average_at_start'][0]:g}")
    return "- " + ", ".join(parts)


def readme_block(sources: list[tuple[str, dict[str, Any]]]) -> str:
    """The README's benchmark table, markers included: every target of every results file, by goal."""
    checks = [(c, name) for name, results in sources for c in targets(results)]
    # Issue 13's goals first, in order; the earlier targets after them, each group in its file's order.
    checks.sort(key=lambda pair: (pair[0].goal == "", pair[0].goal))
    lines = [
        BEGIN,
        "<!-- Generated by `python -m bench.report --readme` from bench/results; edit the results, not this. -->",
        "",
        "| goal | target | measured | load 1 min at start | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += targets_table([c for c, _ in checks])[2:]
    if not checks:
        lines.append("| - | no results yet | - | - | - |")
    lines += ["", "Measured in:", "", *(_source_line(name, results) for name, results in sources), END]
    return "\n".join(lines)


def load_sources(names: tuple[str, ...] = README_SOURCES, folder: Path = RESULTS) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in names:
        path = folder / name
        if path.exists():
            found.append((name, json.loads(path.read_text())))
    return found


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the markers (markers included) replaced by ``block``."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no {BEGIN} ... {END} block")
    return text[:begin] + block + text[end + len(END) :]


def update_readme(readme: Path = README, sources: list[tuple[str, dict[str, Any]]] | None = None) -> bool:
    """Regenerate the README's table from the results files; returns whether the README changed."""
    text = readme.read_text()
    updated = replace_block(text, readme_block(load_sources() if sources is None else sources))
    if updated != text:
        readme.write_text(updated)
    return updated != text


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite reports from bench/results/*.json.")
    parser.add_argument("--readme", action="store_true", help="regenerate the README's benchmark table")
    parser.add_argument("--check", action="store_true", help="with --readme: fail if the table is out of date")
    parser.add_argument("--markdown", nargs="*", default=[], metavar="NAME", help="rewrite NAME.md from NAME.json")
    args = parser.parse_args()
    for name in args.markdown:
        results = json.loads((RESULTS / f"{name}.json").read_text())
        (RESULTS / f"{name}.md").write_text(markdown(results) + "\n")
        print(f"written: bench/results/{name}.md")
    if args.readme:
        if args.check:
            text = README.read_text()
            if replace_block(text, readme_block(load_sources())) != text:
                sys.exit("README.md's benchmark table is out of date: run python -m bench.report --readme")
            print("README.md's benchmark table is up to date")
        else:
            print("README.md " + ("updated" if update_readme() else "already up to date"))


if __name__ == "__main__":
    main()
