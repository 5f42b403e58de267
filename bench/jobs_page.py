"""The jobs page on a big ledger: how long a page, a search and the charts take at a million jobs.

    python -m bench.jobs_page                          # 1,000,000 jobs on SQLite
    python -m bench.jobs_page --ledger postgresql      # on PostgreSQL (a database of its own, dropped afterwards)
    python -m bench.jobs_page --jobs 100000 --runs 9

The ledger is filled by bulk insert (no events, no API): jobs created every half second, on 100 datasets, 90 %
COMPLETED, 4 % FAILED, 2 % REJECTED, 2 % RUNNING, 2 % PENDING; the ended ones with a finish time and a remote end
time. Then, median of ``--runs`` (after one unmeasured run) of each query the page makes, read-only as the page
reads: the first, a middle and the deepest page of 100 (keyset, see dashboard/paging.py), the same under a status
and a dataset filter, a search by idempotency-key prefix and by job id, the counts by status, the two charts' queries
over six hours; then the whole page (``GET /``, ``GET /?cursor=...`` deep, ``GET /datasets/...``) over HTTP, with the
charts drawn on every request (cold) and as served, drawn once per ``chart_ttl_s`` (warm).
Prints a table; the numbers are what the README and the report quote.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dashboard import DashboardConfig, build_app, chart_data, queries
from dashboard.paging import Cursor, JobFilters
from store.db import make_engine, make_session_factory, upgrade
from store.models import ImportJob, ImportKind, JobStatus

from .harness import postgres_database
from .machine import load_average

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPACING_S = 0.5
BATCH = 20_000
DATASETS = [str(uuid.UUID(int=i + 1)) for i in range(100)]
STATUSES = (
    [JobStatus.COMPLETED] * 90 + [JobStatus.FAILED] * 4 + [JobStatus.REJECTED] * 2 + [JobStatus.RUNNING] * 2
    + [JobStatus.PENDING] * 2
)


def _rows(start: int, count: int, total: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + count):
        created = END - timedelta(seconds=(total - i) * SPACING_S)
        status = rng.choice(STATUSES)
        ended = status not in (JobStatus.RUNNING, JobStatus.PENDING)
        finished = created + timedelta(seconds=rng.uniform(5, 60)) if ended else None
        remote_end = None
        if finished is not None and status is not JobStatus.REJECTED:
            remote_end = finished - timedelta(seconds=rng.uniform(0.05, 4))
        rows.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "kind": ImportKind.CAMPAIGN,
                "dataset_id": DATASETS[i % len(DATASETS)],
                "params": {"campaign_id": "c"},
                "idempotency_key": f"bench-{i:08d}",
                "origin": "bench",
                "status": status,
                "attempts": 1,
                "poll_count": 3,
                "created_at": created,
                "updated_at": finished or created,
                "finished_at": finished,
                "remote_ended_at": remote_end,
                "version": 1,
            }
        )
    return rows


def fill(url: str, total: int) -> float:
    """Write ``total`` jobs; returns the seconds it took."""
    engine = make_engine(url)
    rng = random.Random(7)
    started = time.perf_counter()
    try:
        for start in range(0, total, BATCH):
            with engine.begin() as conn:
                conn.execute(insert(ImportJob), _rows(start, min(BATCH, total - start), total, rng))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE import_jobs")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _median_ms(run: Callable[[], object], runs: int) -> float:
    run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _cursor_at(session: Session, filters: JobFilters, offset: int) -> Cursor:
    """The cursor that continues after the ``offset``-th row (read once with OFFSET, outside the timing)."""
    query = select(ImportJob.created_at, ImportJob.id).where(*filters.conditions(session.get_bind().dialect.name))
    row = session.execute(
        query.order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).offset(offset).limit(1)
    ).one()
    return Cursor("older", row[0], row[1])


def measure(url: str, total: int, runs: int) -> list[tuple[str, float, int]]:
    engine = make_engine(url)
    sessions = make_session_factory(engine, read_only=True)
    results: list[tuple[str, float, int]] = []
    try:
        with sessions() as session:
            cases: list[tuple[str, JobFilters, int | None]] = [
                ("page: newest", JobFilters(), None),
                ("page: middle", JobFilters(), total // 2),
                ("page: deepest", JobFilters(), total - 150),
                ("page: status FAILED, deepest", JobFilters(status=JobStatus.FAILED), int(total * 0.04) - 150),
                ("page: one dataset, middle", JobFilters(dataset_id=DATASETS[3]), total // 200),
                ("search: key prefix", JobFilters(search=f"bench-{total // 2:08d}"[:-2]), None),
            ]
            for name, filters, offset in cases:
                cursor = None if offset is None else _cursor_at(session, filters, offset)
                rows = len(queries.job_page(session, filters, cursor, limit=100).jobs)
                ms = _median_ms(lambda f=filters, c=cursor: queries.job_page(session, f, c, limit=100), runs)
                results.append((name, ms, rows))
            some_id = session.scalars(select(ImportJob.id).limit(1)).one()
            search = JobFilters(search=some_id)
            window = chart_data.chart_window(END, 6)
            finished = sum(b.total for b in chart_data.finished_per_bucket(session, window))
            lagged = sum(b.count for b in chart_data.detection_lag(session, window))
            for name, run, count in (
                ("search: job id", lambda: queries.job_page(session, search, None, limit=100), 1),
                ("counts by status", lambda: queries.counts_by_status(session), len(JobStatus)),
                ("chart: finished, 6 h", lambda: chart_data.finished_per_bucket(session, window), finished),
                ("chart: lag, 6 h", lambda: chart_data.detection_lag(session, window), lagged),
            ):
                results.append((name, _median_ms(run, runs), count))
            deep = _cursor_at(session, JobFilters(), total - 150).encode()
        results.extend(_pages(url, runs, deep))
    finally:
        engine.dispose()
    return results


def _pages(url: str, runs: int, deep_cursor: str) -> list[tuple[str, float, int]]:
    from tests.dashboard.server import serve

    out = []
    # Cold: the charts drawn on every request (chart_ttl_s=0); warm: as served, the charts drawn once a TTL.
    for label, ttl_s in (("cold", 0.0), ("warm", 15.0)):
        config = DashboardConfig(database_url=url, username="b", password="b", refresh_s=60, chart_ttl_s=ttl_s)
        with serve(build_app(config, now=lambda: END)) as client:
            for name, path in (
                ("GET /", "/"),
                ("GET /?cursor= (deepest)", f"/?cursor={deep_cursor}"),
                ("GET /datasets/{id}", f"/datasets/{DATASETS[3]}"),
            ):

                def get(p: str = path) -> None:
                    response = client.get(p, auth=("b", "b"))
                    assert response.status_code == 200, response.text[:300]

                out.append((f"{name}, {label}", _median_ms(get, runs), 200))
    return out


@contextlib.contextmanager
def _ledger(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_database("jobs_page") as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-jobs-page-") as folder:
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        upgrade(url)
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ledger", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    print(f"load average at start: {load_average()}  cores: {os.cpu_count()}")
    with _ledger(args.ledger) as url:
        filled_s = fill(url, args.jobs)
        print(f"{args.ledger}: {args.jobs:,} jobs written in {filled_s:.1f} s")
        rows = measure(url, args.jobs, args.runs)
    print(f"{'query':36} {'median ms':>10} {'rows':>8}")
    for name, ms, count in rows:
        print(f"{name:36} {ms:10.2f} {count:8,}")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
