"""Scale-out shape: 1, 2 and 4 worker processes on one PostgreSQL ledger (issue 13, goal 5).

For each worker count W, on a PostgreSQL database of its own (created on the server at ``DSIMPORT_BENCH_POSTGRES``,
migrated as ``dsimport db upgrade`` does, dropped after): W processes ``dsimport worker --pool prefork
--concurrency 1`` (hostnames ``w1@%h`` ...) and one ``dsimport beat``, against one emulator and one Redis database
(8, flushed). M requests over D datasets go in as queue messages (XADD on the stream every worker consumes, as
``bench/submit.py`` sends them), imports lasting 2-6 s, until every job is final in the ledger and the task queue
has drained. Per job:

- transactions, from PostgreSQL itself: ``xact_commit + xact_rollback`` of the database in ``pg_stat_database``,
  read from the ``postgres`` database before the load and after the services have stopped (a backend flushes its
  counters when it exits; an idle one may hold them back up to 10 s, hence the wait before the first reading). The
  benchmark's own progress queries (one transaction each, on one autocommit connection) are subtracted; autovacuum
  and beat's schedule refreshes are not (small, and they do not grow with W);
- statements, counted by the service's processes themselves (``DSIMPORT_COUNT_SQL_STATEMENTS``: every cursor
  execution, an executemany being one; published to the metrics hash once per transaction). ``pg_stat_statements``
  would say the same from the server, but it needs ``shared_preload_libraries`` and a restart of a shared server.
  Round trips are estimated as statements + 2 x transactions: psycopg 3 sends BEGIN and COMMIT as commands of
  their own;
- lease conflicts: conditional writes that lost to another claim (``dsimport_lease_conflicts_total`` of
  :mod:`jobs.metrics`: submit claims lost, poll results dropped, claims gone at release, recovery groups taken);
- API calls (emulator counters), jobs per second and time until all are final.

The verdict per metric: "does not grow" when the W = 4 value is at most 1.2 x the W = 1 value. It is not judged
when the 1-minute load average at the start of a row exceeded the core count; before each row the benchmark waits
up to ``--cool-down`` seconds (120) for the load its previous row left to fall below it.

    python -m bench.scaleout --jobs 1000 --datasets 20        # about 2-4 minutes on a quiet 2-core machine
    python -m bench.scaleout --jobs 200 --workers 1 2          # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import psycopg
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from jobs.metrics import read_metrics
from store.db import upgrade
from store.models import TERMINAL_JOB_STATUSES

from .harness import (
    REDIS_BASE_URL,
    Emulator,
    Service,
    fresh_redis,
    our_beat,
    our_worker,
    service_env,
    wait_until,
    workspace,
)
from .machine import describe, load_average
from .report import RESULTS
from .submit import intake_by_stream

POSTGRES_URL = os.environ.get("DSIMPORT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_DB = 8
WORKER_COUNTS = (1, 2, 4)
# "Does not grow": the W = 4 value is at most this multiple of the W = 1 value.
GROWTH_LIMIT = 1.2
# PostgreSQL 15 holds back an idle backend's counters up to PGSTAT_IDLE_INTERVAL (10 s) before flushing them.
STATS_SETTLE_S = 11.0
JUDGED = ("transactions_per_job", "statements_per_job", "round_trips_per_job", "lease_conflicts_per_job")


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """The SQLAlchemy URL of a new, migrated database ``name`` on the bench server; dropped on exit."""
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def admin_engine() -> Engine:
    # Autocommit (CREATE DATABASE cannot run in a transaction) and no pool: nothing stays open on the server.
    return create_engine(POSTGRES_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def transactions(name: str) -> int:
    """Transactions committed and rolled back in database ``name``, read from the ``postgres`` database."""
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            query = text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name")
            return int(conn.execute(query, {"name": name}).scalar_one())
    finally:
        admin.dispose()


class Progress:
    """How many jobs are final, on one autocommit connection: each query is one transaction, counted."""

    def __init__(self, url: str) -> None:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.queries = 0
        self.final = [str(status) for status in TERMINAL_JOB_STATUSES]

    def count(self) -> int:
        self.queries += 1
        row = self.conn.execute("SELECT count(*) FROM import_jobs WHERE status = ANY(%s)", [self.final]).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()


def cool_down(cores: int, *, max_wait_s: float) -> float:
    """Wait (at most ``max_wait_s``) for the 1-minute load to fall to the core count; returns the seconds waited.

    The previous row's processes leave the load average high for a minute after they stop; without this wait
    every row after the first would start "busy" on a small machine.
    """
    started = time.monotonic()
    while load_average()[0] > cores and time.monotonic() - started < max_wait_s:
        time.sleep(5.0)
    return round(time.monotonic() - started, 1)


def run_row(workers: int, *, jobs: int, datasets: int, duration: str, timeout_s: float) -> dict[str, Any]:
    """One row: ``workers`` worker processes and one beat on a fresh ledger; ``jobs`` requests to final."""
    name = f"bench_scaleout_{os.getpid()}_w{workers}"
    load_at_start = load_average()
    with workspace(f"scaleout-w{workers}") as ws, fresh_database(name) as url:
        broker = fresh_redis(REDIS_DB)
        emulator = Emulator(task_duration=duration, log_dir=ws.logs)
        services: list[Service] = []
        progress = Progress(url)
        try:
            env = service_env(ws, broker_url=broker, api_url=emulator.url, count_sql_statements="true")
            env["DSIMPORT_DATABASE_URL"] = url
            for n in range(1, workers + 1):
                services.append(our_worker(env, ws.logs, pool="prefork", concurrency=1, name=f"w{n}"))
            services.append(our_beat(env, ws.logs))
            targets = emulator.create_datasets(datasets)
            emulator.reset_stats()
            time.sleep(STATS_SETTLE_S)
            xacts_before = transactions(name)
            metrics_before = _metrics(broker)

            started = time.perf_counter()
            intake_by_stream(SimpleNamespace(broker_url=broker), [targets[n % datasets] for n in range(jobs)])
            wait_until(lambda: progress.count() >= jobs, timeout_s=timeout_s, interval_s=0.5, what=f"{jobs} final")
            elapsed_s = time.perf_counter() - started
            # Finalize tasks still queued are part of what a job costs.
            wait_until(lambda: _queued(broker) == 0, timeout_s=60, interval_s=0.2, what="the task queue to drain")
            time.sleep(1.0)
            api = emulator.stats(tasks=False)["requests"]
        finally:
            for service in reversed(services):
                service.stop()
            progress.close()
            emulator.stop()
        time.sleep(1.0)
        xacts = transactions(name) - xacts_before - progress.queries
        after = _metrics(broker)
    statements = after.sql_statements - metrics_before.sql_statements
    conflicts = {
        where: count - metrics_before.lease_conflicts.get(where, 0) for where, count in after.lease_conflicts.items()
    }
    api_calls = sum(api.values())
    return {
        "workers": workers,
        "jobs": jobs,
        "datasets": datasets,
        "seconds_to_all_final": round(elapsed_s, 2),
        "jobs_per_s": round(jobs / elapsed_s, 1),
        "transactions": xacts,
        "transactions_per_job": round(xacts / jobs, 2),
        "statements": statements,
        "statements_per_job": round(statements / jobs, 2),
        "round_trips_per_job": round((statements + 2 * xacts) / jobs, 2),
        "lease_conflicts": conflicts,
        "lease_conflicts_per_job": round(sum(conflicts.values()) / jobs, 4),
        "api_calls_per_job": round(api_calls / jobs, 2),
        "api_calls": api,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def _metrics(broker_url: str) -> Any:
    client = redis.Redis.from_url(broker_url)
    try:
        return read_metrics(client)
    finally:
        client.close()


def _queued(broker_url: str) -> int:
    client = redis.Redis.from_url(broker_url)
    try:
        return int(client.llen("dsimport"))
    finally:
        client.close()


def verdicts(rows: list[dict[str, Any]], cores: int) -> dict[str, str]:
    """Per metric: whether the value per job at the most workers stays within GROWTH_LIMIT x the fewest's."""
    busy = [row["workers"] for row in rows if row["load_average_at_start"][0] > cores]
    if len(rows) < 2:
        return dict.fromkeys(JUDGED, "not judged: one row")
    if busy:
        return dict.fromkeys(JUDGED, f"not judged: machine busy (load above {cores} cores at W = {busy})")
    first, last = rows[0], rows[-1]
    out = {}
    for metric in JUDGED:
        low, high = first[metric], last[metric]
        grows = high > GROWTH_LIMIT * low
        out[metric] = (
            f"{'grows' if grows else 'does not grow'}: W={last['workers']} {high:g} vs W={first['workers']} {low:g}"
            f" (limit {GROWTH_LIMIT:g}x)"
        )
    return out


def run(
    jobs: int = 1000,
    *,
    datasets: int = 20,
    workers: Sequence[int] = WORKER_COUNTS,
    duration: str = "2-6",
    timeout_s: float | None = None,
    cool_down_s: float = 120.0,
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    rows = []
    for count in workers:
        waited_s = cool_down(cores, max_wait_s=cool_down_s)
        print(f"-- scale-out W={count}, {jobs} jobs (load average {load_average()})", flush=True)
        row = run_row(count, jobs=jobs, datasets=datasets, duration=duration, timeout_s=timeout_s or 120 + jobs / 2)
        row["cool_down_s"] = waited_s
        print(f"   {_line(row)}", flush=True)
        rows.append(row)
    return {
        "path": "XADD request message -> stream consumer -> submit -> polls -> final, on PostgreSQL",
        "duration_s": duration,
        "pool": "W x `dsimport worker --pool prefork --concurrency 1` + one `dsimport beat`, default settings",
        "growth_limit": GROWTH_LIMIT,
        "rows": rows,
        "verdict": verdicts(rows, cores),
    }


HEADER = (
    "| W | jobs/s | s to all final | transactions/job | statements/job | ≈ round trips/job | lease conflicts/job "
    "| API calls/job | load at start -> end |"
)


def _line(row: dict[str, Any]) -> str:
    return (
        f"| {row['workers']} | {row['jobs_per_s']} | {row['seconds_to_all_final']} | {row['transactions_per_job']} "
        f"| {row['statements_per_job']} | {row['round_trips_per_job']} | {row['lease_conflicts_per_job']} "
        f"| {row['api_calls_per_job']} | {row['load_average_at_start'][0]} -> {row['load_average_at_end'][0]} |"
    )


def markdown(results: dict[str, Any]) -> str:
    rows = results["rows"]
    first = rows[0] if rows else {"jobs": 0, "datasets": 0}
    lines = [
        f"# Scale-out: {', '.join(str(r['workers']) for r in rows)} workers on one PostgreSQL ledger",
        "",
        f"{first['jobs']:,} requests over {first['datasets']} datasets, imports of {results['duration_s']} s; "
        f"{results['pool']}.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|---|",
        *(_line(row) for row in rows),
        "",
        *(f"- {metric}: {verdict}" for metric, verdict in results["verdict"].items()),
    ]
    if results.get("notes"):
        lines += ["", f"Note: {results['notes']}"]
    if "machine" in results:
        lines += ["", f"Machine: {results['machine']['cores']} cores, {results['machine']['cpu']}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKER_COUNTS))
    parser.add_argument("--duration", default="2-6", help="emulator import durations, seconds (e.g. 2-6)")
    parser.add_argument("--cool-down", type=float, default=120.0, help="most seconds to wait for a quiet start")
    parser.add_argument("--name", default="scaleout", help="results file name")
    parser.add_argument("--note", default="", help="a line written with the results (e.g. what else was running)")
    args = parser.parse_args()
    machine = describe(f"{REDIS_BASE_URL}/{REDIS_DB}")
    results = run(
        args.jobs, datasets=args.datasets, workers=args.workers, duration=args.duration, cool_down_s=args.cool_down
    )
    results["machine"] = machine
    if args.note:
        results["notes"] = args.note
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(results) + "\n")
    print()
    print(markdown(results))
    print(f"\nwritten: bench/results/{args.name}.json, bench/results/{args.name}.md")


if __name__ == "__main__":
    main()
