"""``/metrics``: valid Prometheus text with the ledger's counts and the numbers the workers publish to Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import create_engine, text

from dashboard import DashboardConfig, build_app
from jobs import metrics
from store.models import ImportKind, JobStatus

from .conftest import NOW, PASSWORD, USER, Ledger
from .server import serve


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition (parsed by Prometheus' own parser, so the format is checked too)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def published(metrics_redis: str) -> Iterator[str]:
    metrics.install(metrics_redis)
    yield metrics_redis
    metrics.install(None)


def test_job_counts_by_status_and_kind(client: httpx.Client, ledger: Ledger) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    jobs = {labels: v for (name, labels), v in values.items() if name == "dsimport_jobs"}
    assert jobs[(("kind", "campaign"), ("status", "PENDING"))] == 1
    assert jobs[(("kind", "campaign"), ("status", "RUNNING"))] == 1
    assert jobs[(("kind", "campaign"), ("status", "COMPLETED"))] == 1
    assert jobs[(("kind", "campaign"), ("status", "REJECTED"))] == 1
    assert jobs[(("kind", "explorer"), ("status", "PENDING"))] == 1
    assert len(jobs) == len(JobStatus) * len(ImportKind)  # zeros included: series do not come and go
    assert sum(jobs.values()) == 5
    assert values[("dsimport_ledger_up", ())] == 1
    # The RUNNING job became due when it entered RUNNING (ten seconds after creation, five minutes before NOW).
    assert values[("dsimport_poll_lag_seconds", ())] == pytest.approx(280.0)
    assert values[("dsimport_worker_metrics_up", ())] == 0  # no Redis configured for this app


def test_no_job_data_in_metrics(client: httpx.Client, ledger: Ledger) -> None:
    text = client.get("/metrics").text
    for job_id in (ledger.pending, ledger.running, ledger.failed):
        assert job_id not in text
    assert "ds-1" not in text and "campaign c-1" not in text


def test_poll_latency_and_api_errors_from_the_workers(database_url: str, ledger: Ledger, published: str) -> None:
    metrics.record_poll(duration_s=0.07, claimed=3, api_calls=2, errors=1, now=1_700_000_000.0)
    metrics.record_poll(duration_s=3.0, claimed=1, api_calls=1, errors=0, now=1_700_000_001.0)
    metrics.record_poll(duration_s=0.01, claimed=0, api_calls=0, errors=0, now=1_700_000_002.0)  # idle: not timed
    metrics.record_api_call("submit", error=False)
    metrics.record_api_call("submit", error=True)
    metrics.record_beat_tick(now=1_700_000_003.0)
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, metrics_redis_url=published)
    with serve(build_app(config, now=lambda: NOW)) as client:
        values = samples(client.get("/metrics").text)
    assert values[("dsimport_worker_metrics_up", ())] == 1
    assert values[("dsimport_poll_round_seconds_count", ())] == 2
    assert values[("dsimport_poll_round_seconds_sum", ())] == pytest.approx(3.07)
    assert values[("dsimport_poll_round_seconds_bucket", (("le", "0.1"),))] == 1
    assert values[("dsimport_poll_round_seconds_bucket", (("le", "2.5"),))] == 1
    assert values[("dsimport_poll_round_seconds_bucket", (("le", "5.0"),))] == 2
    assert values[("dsimport_poll_round_seconds_bucket", (("le", "+Inf"),))] == 2
    assert values[("dsimport_poll_jobs_total", ())] == 4
    assert values[("dsimport_api_calls_total", (("operation", "poll"),))] == 3
    assert values[("dsimport_api_errors_total", (("operation", "poll"),))] == 1
    assert values[("dsimport_api_calls_total", (("operation", "submit"),))] == 2
    assert values[("dsimport_api_errors_total", (("operation", "submit"),))] == 1
    assert values[("dsimport_last_poll_timestamp_seconds", ())] == 1_700_000_002.0
    assert values[("dsimport_beat_last_tick_timestamp_seconds", ())] == 1_700_000_003.0


def test_lease_conflicts_from_the_workers_by_where(database_url: str, ledger: Ledger, published: str) -> None:
    metrics.record_lease_conflicts("submit")
    metrics.record_lease_conflicts("poll_writeback", 3)
    metrics.record_lease_conflicts("poll_writeback", 2)
    metrics.record_lease_conflicts("poll_release", 0)  # nothing lost: nothing recorded
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, metrics_redis_url=published)
    with serve(build_app(config, now=lambda: NOW)) as client:
        values = samples(client.get("/metrics").text)
    conflicts = {labels: v for (name, labels), v in values.items() if name == "dsimport_lease_conflicts_total"}
    assert conflicts == {(("where", "poll_writeback"),): 5, (("where", "submit"),): 1}


def test_sql_statements_are_counted_only_on_request_and_published_per_transaction(
    tmp_path: Path, published: str
) -> None:
    counted, plain = (create_engine(f"sqlite:///{tmp_path / name}.db") for name in ("counted", "plain"))
    metrics.count_sql_statements(counted)
    client = redis.Redis.from_url(published)
    try:
        for engine in (counted, plain):
            with engine.connect() as conn:
                conn.execute(text("CREATE TABLE t (n INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (:n)"), [{"n": 1}, {"n": 2}])  # executemany: one statement
                conn.execute(text("SELECT n FROM t")).all()
                if engine is counted:
                    assert client.hget(metrics.METRICS_KEY, "sql_statements_total") is None  # not before the commit
                conn.commit()
        assert metrics.read_metrics(client).sql_statements == 3  # the plain engine added nothing
    finally:
        client.close()
        counted.dispose()
        plain.dispose()


def test_unreachable_sources_are_reported_not_fatal(empty_database_url: str) -> None:
    config = DashboardConfig(
        database_url=empty_database_url,  # no tables
        username=USER,
        password=PASSWORD,
        metrics_redis_url="redis://127.0.0.1:1/0",  # nothing listens there
    )
    with serve(build_app(config)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    values = samples(response.text)
    assert values[("dsimport_ledger_up", ())] == 0
    assert values[("dsimport_worker_metrics_up", ())] == 0
    assert not any(name == "dsimport_jobs" for name, _ in values)


def test_recording_without_redis_is_a_no_op() -> None:
    metrics.install(None)
    metrics.record_poll(duration_s=1.0, claimed=1, api_calls=1, errors=1)  # must not raise


def test_recording_to_a_dead_redis_never_raises() -> None:
    metrics.install("redis://127.0.0.1:1/0")
    try:
        metrics.record_poll(duration_s=1.0, claimed=1, api_calls=1, errors=1)
        metrics.record_beat_tick()
    finally:
        metrics.install(None)


def test_poll_lag_is_zero_without_due_jobs(config: DashboardConfig) -> None:
    with serve(build_app(config, now=lambda: NOW + timedelta(days=1))) as client:
        values = samples(client.get("/metrics").text)
    assert values[("dsimport_poll_lag_seconds", ())] == 0


def test_metrics_key_is_shared(published: str) -> None:
    metrics.record_api_call("submit", error=False)
    client = redis.Redis.from_url(published)
    try:
        assert client.hget(metrics.METRICS_KEY, "api_calls_total:submit") == b"1"
    finally:
        client.close()
