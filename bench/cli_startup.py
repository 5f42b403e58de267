"""How fast the command line answers (issue 13, goal 6), and what its start-up paths load.

    python -m bench.cli_startup                      # writes bench/results/cli-startup.json and .md
    python -m bench.cli_startup --baseline DIR       # the same commands on another checkout too (e.g. the previous
                                                     # commit, `git archive`d into DIR), in the same run
    python -m bench.cli_startup --runs 9 --note "what else was running"

Wall time, median of ``--runs`` (5) after one unmeasured run, of: ``dsimport --help``, ``celery --help``,
``dsimport jobs list`` (a fresh SQLite ledger in a temporary folder) and ``dsimport import dataset`` of one record
(no API call: it records the job and sends its submit message to Redis database 8 of ``DSIMPORT_BENCH_REDIS``,
flushed; no worker needed). The commands are the venv's own scripts (``dsimport`` and ``celery`` beside this
interpreter) run on this checkout's code (``PYTHONPATH``), taken in turn within each round so that a change of load
falls on all of them alike.

Targets: ``dsimport --help`` at most 0.5 x ``celery --help`` of the same run; ``jobs list`` and ``import`` at most
1 s. A target is judged only when the 1-minute load average at the start is at most the number of cores; otherwise
it reads "not judged (machine busy)". The load average before and after is recorded.

Before timing anything, each start-up path is probed in a fresh interpreter (tests/cli/startup_probe.py): the help
of the command line and of every group must load none of sqlalchemy, alembic, celery, kombu, httpx, pydantic,
uvicorn, starlette, redis; ``jobs list`` none of celery, kombu, alembic; ``import`` no migrations, HTTP, server or
Celery task layer. A heavy module found there is reported loudly, by name, and the benchmark exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cli.startup_probe import (
    HEAVY_FOR_AN_IMPORT,
    HEAVY_FOR_HELP,
    HEAVY_FOR_LISTING,
    heavy_among,
    help_commands,
    modules_loaded,
)

from .harness import ROOT, fresh_redis
from .machine import describe, load_average, one_line
from .report import RESULTS

REDIS_DB = 8
DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
RECORD = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"
HELP_RATIO_TARGET = 0.5
SECONDS_TARGET = 1.0
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]


COMMANDS = (
    Command("dsimport --help", [str(BIN / "dsimport"), "--help"]),
    Command("celery --help", [str(BIN / "celery"), "--help"]),
    Command("dsimport jobs list", [str(BIN / "dsimport"), "jobs", "list"]),
    Command("dsimport import dataset", [str(BIN / "dsimport"), "import", "dataset", "--dataset", DATASET,
                                        "--record", RECORD]),
)  # fmt: skip


def checkout_env(root: Path, home: Path, broker_url: str) -> dict[str, str]:
    """The environment of the commands on the code at ``root``: a ledger of their own, migrated by that code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_", "PYTHON"))}
    env |= {
        "PYTHONPATH": str(root),
        "DSIMPORT_HOME": str(home),
        "DSIMPORT_DATABASE_URL": f"sqlite:///{home / 'ledger.db'}",
        "DSIMPORT_BROKER_URL": broker_url,
    }
    upgrade = [sys.executable, "-m", "cli", "db", "upgrade"]
    subprocess.run(upgrade, env=env, cwd=root, check=True, capture_output=True, timeout=120)
    return env


def heavy_on_start_up_paths(env: dict[str, str]) -> dict[str, list[str]]:
    """Each start-up path and the heavy modules it loaded (none, when all is well)."""
    found: dict[str, list[str]] = {}
    for loaded in modules_loaded(help_commands(), env=env):
        found["dsimport " + " ".join(loaded.argv)] = heavy_among(loaded.modules, HEAVY_FOR_HELP)
    probes = (([COMMANDS[2].argv[1:]], HEAVY_FOR_LISTING), ([COMMANDS[3].argv[1:]], HEAVY_FOR_AN_IMPORT))
    for commands, heavy in probes:
        [loaded] = modules_loaded(commands, env=env)
        if loaded.code != 0:
            raise RuntimeError(f"dsimport {' '.join(loaded.argv)} failed ({loaded.code}): {loaded.stderr.strip()}")
        found["dsimport " + " ".join(loaded.argv)] = heavy_among(loaded.modules, heavy)
    return found


def run_once(command: Command, env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command.argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=120, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command.label} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def time_commands(checkouts: dict[str, tuple[Path, dict[str, str]]], runs: int) -> list[dict[str, Any]]:
    """Median wall time of each command on each checkout; every round runs all of them once, in turn."""
    times: dict[tuple[str, str], list[float]] = {}
    for name, (root, env) in checkouts.items():
        for command in COMMANDS:  # unmeasured: fills the page cache and writes the bytecode
            run_once(command, env, root)
            times[name, command.label] = []
    for _ in range(runs):
        for name, (root, env) in checkouts.items():
            for command in COMMANDS:
                times[name, command.label].append(run_once(command, env, root))
    return [
        {"checkout": name, "command": label, "median_s": round(statistics.median(values), 3),
         "runs_s": [round(value, 3) for value in values]}
        for (name, label), values in times.items()
    ]  # fmt: skip


def targets(rows: list[dict[str, Any]], *, busy: bool) -> list[dict[str, Any]]:
    median = {row["command"]: row["median_s"] for row in rows if row["checkout"] == "this checkout"}
    ratio = median["dsimport --help"] / median["celery --help"]
    checks = [
        ("dsimport --help ≤ 0.5 x celery --help", ratio, HELP_RATIO_TARGET, f"{ratio:.2f}x"),
        ("dsimport jobs list ≤ 1 s", median["dsimport jobs list"], SECONDS_TARGET,
         f"{median['dsimport jobs list']:.2f} s"),
        ("dsimport import ≤ 1 s", median["dsimport import dataset"], SECONDS_TARGET,
         f"{median['dsimport import dataset']:.2f} s"),
    ]  # fmt: skip
    return [
        {"target": target, "measured": shown, "value": round(value, 3),
         "verdict": "not judged (machine busy)" if busy else "met" if value <= limit else "missed"}
        for target, value, limit, shown in checks
    ]  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    out = [
        "# Command-line start-up",
        "",
        f"Machine: {one_line(machine)}; load average at end {results['load_average_at_end']}.",
        f"Median of {results['runs']} runs (after one unmeasured run) of each command, wall time.",
        "",
    ]
    if results.get("notes"):
        out += [f"Notes: {results['notes']}", ""]
    checkouts = list(dict.fromkeys(row["checkout"] for row in results["rows"]))
    celery = {row["checkout"]: row["median_s"] for row in results["rows"] if row["command"] == "celery --help"}
    out += ["| command | " + " | ".join(checkouts) + " |", "|---|" + "---|" * len(checkouts)]
    for command in COMMANDS:
        cells = []
        for checkout in checkouts:
            row = next(r for r in results["rows"] if r["checkout"] == checkout and r["command"] == command.label)
            ratio = "" if command.label == "celery --help" else f" ({row['median_s'] / celery[checkout]:.2f}x celery)"
            cells.append(f"{row['median_s']:.2f} s{ratio}")
        out.append(f"| `{command.label}` | " + " | ".join(cells) + " |")
    out += ["", "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in results["targets"]]
    heavy = {path: modules for path, modules in results["heavy_modules"].items() if modules}
    out += ["", "Heavy modules on a start-up path: " + (
        "; ".join(f"`{path}` loads {', '.join(modules)}" for path, modules in heavy.items()) if heavy else "none."
    )]  # fmt: skip
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, timed in the same run")
    parser.add_argument("--note", default="", help="a line written with the results")
    args = parser.parse_args()
    broker_url = fresh_redis(REDIS_DB)
    machine = describe(broker_url)
    busy = machine["load_average_at_start"][0] > (machine["cores"] or 1)
    with tempfile.TemporaryDirectory(prefix="dsimport-cli-startup-") as folder:
        checkouts = {"this checkout": (ROOT, checkout_env(ROOT, Path(folder) / "this", broker_url))}
        if args.baseline is not None:
            root = args.baseline.resolve()
            checkouts["baseline"] = (root, checkout_env(root, Path(folder) / "baseline", broker_url))
        heavy = heavy_on_start_up_paths(checkouts["this checkout"][1])
        rows = time_commands(checkouts, args.runs)
    fresh_redis(REDIS_DB)  # the submit messages of the imports, which no worker will take
    results: dict[str, Any] = {
        "benchmark": "cli-startup",
        "machine": machine,
        "runs": args.runs,
        "baseline": str(args.baseline.resolve()) if args.baseline is not None else None,
        "rows": rows,
        "targets": targets(rows, busy=busy),
        "heavy_modules": heavy,
        "load_average_at_end": load_average(),
    }
    if args.note:
        results["notes"] = args.note
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli-startup.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    (RESULTS / "cli-startup.md").write_text(text + "\n")
    print(text)
    crept_in = {path: modules for path, modules in heavy.items() if modules}
    if crept_in:
        banner = "!" * 100
        print(f"\n{banner}\nHEAVY MODULES ON THE START-UP PATH:", file=sys.stderr)
        for path, modules in crept_in.items():
            print(f"  {path} loads {', '.join(modules)}", file=sys.stderr)
        print("Import them inside the command that needs them (see cli/common.py).\n" + banner, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
