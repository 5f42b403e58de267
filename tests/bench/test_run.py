"""bench.run's wiring, with every benchmark replaced by a stub: which steps each profile runs, and that every row
carries the load average of its step."""

from __future__ import annotations

from typing import Any

import pytest

from bench import run as bench_run
from bench.inflight import Case
from bench.report import markdown


def fake_row(contender: str, case: Case, **extra: Any) -> dict[str, Any]:
    return {
        "contender": contender,
        "n": case.n,
        "duration_s": case.duration,
        "datasets": min(case.datasets, case.n),
        "ledger": case.ledger,
        "recorded": case.n,
        "in_flight": case.n,
        "time_to_all_s": 30.0,
        "lag_p50_s": 1.0,
        "lag_p95_s": 1.5,
        "lag_p99_s": 1.8,
        "api_calls_per_s": 50.0,
        "calls_per_import": 0.5,
        "cpu_s": 10.0,
        "peak_rss_mib": 240.0,
        "peak_pss_mib": 190.0,
        "notes": "N x mean",
        **extra,
    }


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> list[Case]:
    seen: list[Case] = []

    def ours(case: Case, **_: Any) -> dict[str, Any]:
        seen.append(case)
        return fake_row("ours (prefork -c 1)", case)

    monkeypatch.setattr(bench_run, "run_ours", ours)
    monkeypatch.setattr(bench_run, "run_threads_loop", lambda case: fake_row("Celery threads pool", case, cpu_s=20.0))
    monkeypatch.setattr(bench_run, "run_sdk_script", lambda case: fake_row("SDK script", case))
    monkeypatch.setattr(
        bench_run, "run_naive_prefork", lambda case: fake_row("Celery prefork pool, -c 2", case, in_flight=2)
    )
    monkeypatch.setattr(
        bench_run, "describe", lambda url: {"cores": 2, "load_average_at_start": [0.1, 0.1, 0.1], "versions": {}}
    )
    monkeypatch.setattr(bench_run, "postgres_version", lambda url: "15.0")
    monkeypatch.setattr(bench_run, "settle", lambda **_: 0.0)
    monkeypatch.setattr(bench_run, "test_runs", lambda: [])
    monkeypatch.setattr(bench_run, "poll_tick_routed", lambda: True)
    return seen


def test_every_row_carries_its_steps_load(stubs: list[Case]) -> None:
    results = bench_run.run("quick", {"inflight", "datasets"}, variants=False, spread_shape=(10, 20))

    rows = [*results["inflight"], results["spread"]]
    assert all(len(r["load_average_before"]) == 3 and len(r["load_average_after"]) == 3 for r in rows)
    # Ours first, the baselines last: a thread pool's load average would keep the rows after it from being judged.
    assert [s["name"] for s in results["steps"]] == [
        "in-flight ours N=1000",
        "in-flight ours 10 datasets x 20",
        "in-flight naive prefork",
        "in-flight threads N=1000",
        "in-flight SDK N=1000",
    ]
    assert (results["spread"]["n"], results["spread"]["datasets"]) == (200, 10)


def test_the_big_rows_run_ours_on_both_ledgers(stubs: list[Case]) -> None:
    results = bench_run.run("quick", {"inflight50k"}, variants=False, big_n=300)

    assert [(c.n, c.ledger) for c in stubs] == [(300, "sqlite"), (300, "postgresql")]
    assert [r["ledger"] for r in results["big"]] == ["sqlite", "postgresql"]
    assert results["machine"]["versions"] == {"postgresql": "15.0"}
    results["machine"] = dict(results["machine"], date="d", cpu="c", memory_gib=1, python="3", versions={
        k: "1" for k in ("celery", "kombu", "redis", "redis-server", "httpx", "sqlalchemy", "sqlite")
    })  # fmt: skip
    assert "## 300 in flight on one worker process (goal 4)" in markdown(results)
