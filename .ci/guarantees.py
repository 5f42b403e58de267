"""Mutation step: each exactly-once mechanism switched off in turn, its tests must then fail.

For every guarantee of ``store/guarantees.py`` the manifest ``tests/guarantees.toml`` lists the tests that prove it.
This runs those tests once per guarantee with ``DSIMPORT_TEST_DISABLE_GUARANTEES=<name>`` and requires **every**
one of them (every parameter: SQLite and PostgreSQL) to fail: a listed test that still passes with the mechanism
gone claims a proof it does not give, and requiring only one failure per guarantee would let that claim stand
unchecked. It prints one row per test and exits 1 when any guarantee is not proved:

- its switch is not placed (no ``guarantees.enabled("<name>")`` in the service's code): the tests could only pass;
- it has no tests listed, or a listed node id names nothing;
- a listed test passed, or was skipped (a skip proves nothing), with the mechanism off.

It relies on ``make test`` having passed the same tests with every mechanism on (``.ci/run`` runs it first), so a
failure here is the mechanism's absence, not a test that was broken already.

Usage: ``python .ci/guarantees.py [NAME ...]`` (all guarantees by default); ``make test-guarantees``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "tests" / "guarantees.toml"
# Where a switch may be placed: the service's own packages (never the tests), as pyproject.toml ships them, so a
# package added or renamed is searched without anyone remembering this list.
PACKAGES = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
)

sys.path.insert(0, str(REPO))
from store import guarantees  # noqa: E402 - the repository root is on the path only from here


@dataclass
class Verdict:
    """The outcome of one guarantee's run."""

    name: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # (node id, outcome with the mechanism off)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def proved(self) -> bool:
        return not self.problems and bool(self.rows) and all(outcome == "failed" for _, outcome in self.rows)


def load_manifest(path: Path) -> dict[str, list[str]]:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    manifest: dict[str, list[str]] = {}
    for name, table in raw.items():
        tests = table.get("tests", []) if isinstance(table, dict) else None
        if not isinstance(tests, list) or not all(isinstance(test, str) for test in tests):
            raise SystemExit(f"{path}: [{name}] needs tests = [\"node id\", ...]")
        manifest[name] = tests
    return manifest


def switch_places(name: str) -> list[str]:
    """Files of the service that consult the switch ``name``."""
    pattern = re.compile(r"""\benabled\(\s*["']""" + re.escape(name) + r"""["']\s*\)""")
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name != "guarantees.py" and pattern.search(path.read_text(encoding="utf-8")):
                found.append(str(path.relative_to(REPO)))
    return found


def collect(entries: list[str]) -> tuple[list[str], str]:
    """The node ids pytest collects from the files the entries name (with the pytest output, for errors)."""
    files = sorted({entry.split("::")[0] for entry in entries})
    if not files:
        return [], ""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    node_ids = [line for line in result.stdout.splitlines() if "::" in line and not line.startswith(" ")]
    return node_ids, result.stdout + result.stderr


def selected(entry: str, node_ids: list[str]) -> list[str]:
    """The collected node ids an entry stands for: itself, its parameters, or (a file or class) its tests."""
    return [node for node in node_ids if node == entry or node.startswith((entry + "[", entry + "::"))]


def run_with_switch_off(name: str, node_ids: list[str], log_dir: Path) -> dict[str, str]:
    """Run ``node_ids`` with the mechanism ``name`` off; the outcome of each (failed, passed, skipped, not run)."""
    report = log_dir / f"{name}.xml"
    log = log_dir / f"{name}.log"
    env = {**os.environ, guarantees.ENV_VAR: name}
    # xunit1 reports carry each test's file, which together with its name gives back the node id.
    options = ["-p", "no:cacheprovider", "-q", f"--junitxml={report}", "-o", "junit_family=xunit1"]
    with log.open("w") as output:
        subprocess.run(
            [sys.executable, "-m", "pytest", *options, *node_ids],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    outcomes = dict.fromkeys(node_ids, "not run")
    if not report.exists():
        return outcomes
    by_file_and_name = {(node.split("::")[0], node.rsplit("::", 1)[1]): node for node in node_ids}
    root = ET.parse(report).getroot()  # noqa: S314 - pytest's own report
    for case in root.iter("testcase"):
        node = by_file_and_name.get((case.get("file", ""), case.get("name", "")))
        if node is None:
            continue
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcomes[node] = "failed"
        elif "skipped" in tags:
            # A skip in teardown after a failure cannot happen; a skip alone proves nothing.
            outcomes[node] = "failed" if outcomes[node] == "failed" else "skipped"
        elif outcomes[node] == "not run":
            outcomes[node] = "passed"
    return outcomes


def check(name: str, entries: list[str], log_dir: Path) -> Verdict:
    verdict = Verdict(name)
    started = time.monotonic()
    if name not in guarantees.KNOWN:
        known = ", ".join(sorted(guarantees.KNOWN))
        verdict.problems.append(f"not a guarantee of store/guarantees.py (known: {known})")
        return verdict
    if not switch_places(name):
        verdict.problems.append(
            f'switch not placed: no enabled("{name}") in {", ".join(PACKAGES)}; its tests cannot fail'
        )
    if not entries:
        verdict.problems.append("no tests listed in tests/guarantees.toml")
    collected, output = collect(entries)
    node_ids: list[str] = []
    for entry in entries:
        found = selected(entry, collected)
        if not found:
            verdict.problems.append(f"names no test: {entry}")
            verdict.rows.append((entry, "not collected"))
        node_ids.extend(node for node in found if node not in node_ids)
    if entries and not collected:
        verdict.problems.append("pytest collected nothing:\n" + output.strip()[-2000:])
    if node_ids and not verdict.problems:
        outcomes = run_with_switch_off(name, node_ids, log_dir)
        verdict.rows.extend(outcomes.items())
        for node, outcome in outcomes.items():
            if outcome != "failed":
                verdict.problems.append(f"{outcome} with {name} off: {node}")
    else:
        verdict.rows.extend((node, "not run") for node in node_ids)
    verdict.seconds = time.monotonic() - started
    return verdict


def print_table(verdicts: list[Verdict], log_dir: Path) -> None:
    width = max([len(node) for v in verdicts for node, _ in v.rows] + [20])
    print(f"\n{'guarantee':<18} {'test':<{width}}  with the mechanism off")
    print(f"{'-' * 18} {'-' * width}  {'-' * 22}")
    for verdict in verdicts:
        for node, outcome in verdict.rows or [("(none)", "-")]:
            mark = "ok (failed)" if outcome == "failed" else f"NOT PROVED ({outcome})"
            print(f"{verdict.name:<18} {node:<{width}}  {mark}")
    print()
    for verdict in verdicts:
        state = "proved" if verdict.proved else "NOT PROVED"
        print(f"{verdict.name:<18} {state:<11} {verdict.seconds:6.1f} s")
        for problem in verdict.problems:
            print(f"{'':<18} - {problem}")
    print(f"\npytest output of each run: {log_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="guarantees to check (default: every one)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    # A known guarantee missing from the manifest is checked too: it has no tests, and that fails.
    names = args.names or sorted(set(manifest) | guarantees.KNOWN)
    log_dir = Path(tempfile.mkdtemp(prefix="dsimport-guarantees-"))
    verdicts = []
    for name in names:
        print(f"{name}: running its tests with the mechanism off ...", flush=True)
        verdicts.append(check(name, manifest.get(name, []), log_dir))
    print_table(verdicts, log_dir)
    return 0 if all(verdict.proved for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
