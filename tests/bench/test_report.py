"""The benchmark report judges honestly and regenerates the README's table in place.

A target measured while the machine was busy (1-minute load above the core count when the step began) is never
reported as met; the README block between the markers is rebuilt from the results alone, so running the
generator twice changes nothing the second time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.report import BEGIN, END, load_sources, markdown, replace_block, targets, update_readme

MACHINE = {
    "date": "2026-12-01T03:00:00+00:00",
    "cores": 2,
    "cpu": "test cpu",
    "memory_gib": 1.0,
    "platform": "test",
    "python": "3.11",
    "versions": {k: "1" for k in ("celery", "kombu", "redis", "redis-server", "httpx", "sqlalchemy", "sqlite")},
    "load_average_at_start": [0.5, 0.5, 0.5],
}


def inflight_row(n: int, *, load: float, lag_p99_s: float = 3.0, **extra: Any) -> dict[str, Any]:
    return {
        "contender": "ours (prefork -c 1)",
        "n": n,
        "duration_s": "5-30",
        "datasets": 100,
        "recorded": n,
        "time_to_all_s": 31.0,
        "lag_p50_s": 1.0,
        "lag_p95_s": 2.0,
        "lag_p99_s": lag_p99_s,
        "api_calls_per_s": 80.0,
        "calls_per_import": 0.5,
        "cpu_s": 10.0,
        "peak_rss_mib": 250.0,
        "peak_pss_mib": 200.0,
        "load_average_before": [load, load, load],
        "load_average_after": [load + 1, load, load],
        **extra,
    }


def results(*, quiet_load: float = 0.3, busy_load: float = 7.5) -> dict[str, Any]:
    return {
        "profile": "full",
        "machine": MACHINE,
        "policy": {"max_interval_s": 10.0},
        "inflight": [inflight_row(1000, load=quiet_load)],
        "spread": inflight_row(10_000, load=busy_load, lag_p99_s=1.5),
        "big": [inflight_row(50_000, load=quiet_load, ledger="postgresql")],
        "load_average_at_end": [1.0, 1.0, 1.0],
        "seconds": 100.0,
    }


def verdicts(checks: list[Any], needle: str) -> list[str]:
    return [c.verdict() for c in checks if needle in c.target]


def test_a_target_measured_on_a_busy_machine_is_not_judged_met() -> None:
    checks = targets(results(busy_load=7.5))

    # The goal-3 row meets its numbers, but its step began with load 7.5 on 2 cores.
    (spread,) = verdicts(checks, "datasets x")
    assert spread == "not judged: machine busy (load 7.5 on 2 cores)"
    assert "not judged: machine busy (load 7.5 on 2 cores)" in markdown(results(busy_load=7.5))


def test_the_same_rows_on_a_quiet_machine_are_judged() -> None:
    checks = targets(results(busy_load=1.9))

    assert verdicts(checks, "datasets x") == ["met"]
    assert verdicts(checks, "50,000 in flight (postgresql): p99 lag") == ["met"]
    assert verdicts(checks, "N=1,000: worker peak memory") == ["met"]


def test_a_load_at_the_core_count_is_not_busy_but_just_above_is() -> None:
    assert verdicts(targets(results(busy_load=2.0)), "datasets x") == ["met"]
    assert verdicts(targets(results(busy_load=2.01)), "datasets x")[0].startswith("not judged")


def test_a_row_without_its_own_load_is_judged_by_the_runs_start_and_says_so() -> None:
    old = results()
    del old["spread"]["load_average_before"]
    old["machine"] = dict(MACHINE, load_average_at_start=[3.0, 1.0, 1.0])

    assert verdicts(targets(old), "datasets x") == ["not judged: machine busy at the run's start (load 3 on 2 cores)"]


def test_targets_written_by_another_benchmark_are_judged_the_same_way() -> None:
    other = {
        "machine": MACHINE,
        "targets": [
            {"goal": "6", "target": "--help ≤ 0.5x celery --help", "met": True, "measured": "0.4x",
             "load_average_before": [4.0, 1, 1], "cores": 2},
        ],
    }  # fmt: skip

    assert [c.verdict() for c in targets(other)] == ["not judged: machine busy (load 4 on 2 cores)"]


@pytest.fixture
def results_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "full.json").write_text(json.dumps(results()))
    return folder


def test_the_readme_block_is_regenerated_in_place_and_idempotently(tmp_path: Path, results_folder: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## Benchmarks\n\nProse.\n\n{BEGIN}\nold table\n{END}\n\n## Configuration\n")
    sources = load_sources(folder=results_folder)

    assert update_readme(readme, sources) is True
    once = readme.read_text()
    assert update_readme(readme, sources) is False
    assert readme.read_text() == once

    assert once.startswith("# Title\n\n## Benchmarks\n\nProse.\n\n" + BEGIN)
    assert once.endswith(END + "\n\n## Configuration\n")
    assert "old table" not in once
    block = once[once.index(BEGIN) : once.index(END)]
    assert "| 3 | 10,000 datasets" not in block  # the shape is datasets x imports per dataset
    assert "| 3 | 100 datasets x 100 imports in flight" in block
    assert "not judged: machine busy (load 7.5 on 2 cores)" in block
    assert "`bench/results/full.json`" in block


def test_a_readme_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="bench:begin"):
        replace_block("# no markers here\n", f"{BEGIN}\n{END}")


def test_the_repository_readme_shows_what_the_results_files_hold() -> None:
    from bench.report import README, readme_block

    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert replace_block(text, readme_block(load_sources())) == text, "run: python -m bench.report --readme"


def test_a_row_measured_with_changed_settings_says_so() -> None:
    changed = results(busy_load=0.5)
    changed["spread"]["settings"] = {"poll_batch_size": "10000"}

    (spread,) = [c for c in targets(changed) if "datasets x" in c.target]
    assert spread.measured.endswith("(with poll_batch_size=10000)")
