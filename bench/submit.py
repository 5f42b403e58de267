"""Submit throughput: M import requests -> M jobs RUNNING, per second, beside Celery's own no-op task throughput.

Both on the same broker (one Redis database, flushed), with the same worker pool and concurrency and the same
Celery configuration (:func:`worker.celery_app.configure`):

- ours: M requests go in through :func:`intake` (a queue message per request on the Redis Stream that every
  worker reads, when the stream consumer is present; else ``request_import`` from this process, as the command
  line does), and each becomes a ledger row, a submit task, an import POST to the emulator and a RUNNING row.
  Timed from the first request to the moment the ledger holds M RUNNING jobs.
- Celery: M ``bench.noop`` tasks sent to a worker of ``bench/baseline_app.py``, then one ``bench.mark`` that
  writes the time it ran. Timed from the first send to the mark (one queue, FIFO: it runs after the others).

The emulator's imports never end during the run (an hour), and no beat runs, so nothing but submits happens.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from jobs.request_import import request_import
from store.models import ImportJob, ImportKind, JobEvent, JobStatus

from .harness import (
    EVENT_ID,
    Service,
    celery_sender,
    fresh_redis,
    our_stack,
    py_spy,
    service_env,
    wait_until,
    workspace,
)
from .sampling import TreeSampler, percentile

STREAM = "dsimport:requests"  # the default of DSIMPORT_STREAM_NAME


def stream_consumer_available() -> bool:
    """True when the worker reads import requests from a Redis Stream (triggers.messages.stream_consumer)."""
    try:
        import triggers.messages.stream_consumer  # noqa: F401
        import worker.stream_bootstep  # noqa: F401
    except ImportError:
        return False
    return True


def intake_by_stream(stack: Any, dataset_ids: list[str]) -> dict[str, float]:
    """XADD one request message per import, as a producer without Celery would; returns each message's idempotency
    key with the time Redis stamped on its entry (its id), in seconds since the epoch."""
    client = redis.Redis.from_url(stack.broker_url)
    sent: dict[str, float] = {}
    try:
        pipe = client.pipeline(transaction=False)
        keys: list[str] = []

        def flush() -> None:
            for key, entry_id in zip(keys, pipe.execute(), strict=True):
                sent[key] = int(entry_id.split(b"-")[0]) / 1000.0
            keys.clear()

        for n, dataset_id in enumerate(dataset_ids):
            body: dict[str, Any] = {"id": f"bench-{n}", "kind": "explorer", "dataset_id": dataset_id}
            body["completion_event_ids"] = [EVENT_ID]
            pipe.xadd(STREAM, {"body": json.dumps(body)})
            keys.append(f"message:bench-{n}")
            if n % 500 == 499:
                flush()
        flush()
    finally:
        client.close()
    return sent


def to_running_s(read: Any, sent: dict[str, float]) -> list[float]:
    """Each request's time from its XADD to its job's RUNNING event (the ledger's clock is this host's: SQLite)."""
    query = (
        select(ImportJob.idempotency_key, JobEvent.at)
        .join(JobEvent, JobEvent.job_id == ImportJob.id)
        .where(JobEvent.new_status == JobStatus.RUNNING)
    )
    with read() as session:
        rows = session.execute(query).all()
    return sorted(at.replace(tzinfo=at.tzinfo or UTC).timestamp() - sent[key] for key, at in rows if key in sent)


def intake_by_request_import(stack: Any, dataset_ids: list[str]) -> dict[str, float]:
    """``request_import`` from this process: a ledger row, then a submit message (what ``dsimport import`` does)."""
    sessions = stack.session_factory()
    sender = celery_sender(stack.broker_url)
    try:
        with sender.producer_or_acquire() as producer:
            for dataset_id in dataset_ids:
                request_import(
                    sessions,
                    kind=ImportKind.EXPLORER,
                    dataset_id=dataset_id,
                    params={"completion_event_ids": [EVENT_ID]},
                    origin="bench",
                    now=datetime.now(UTC),
                    deadline_s=6 * 3600.0,
                    send=lambda job_id: sender.send_task(
                        "dsimport.submit", args=[job_id], queue="dsimport", producer=producer
                    ),
                )
    finally:
        sender.close()
    return {}


def run_ours(
    m: int,
    *,
    datasets: int = 10,
    concurrency: int = 2,
    redis_db: int = 7,
    via: str | None = None,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    via = via or ("stream" if stream_consumer_available() else "request_import")
    intake: Callable[[Any, list[str]], dict[str, float]] = (
        intake_by_stream if via == "stream" else intake_by_request_import
    )
    with our_stack(
        "submit", redis_db=redis_db, task_duration="3600", pool="prefork", concurrency=concurrency, beat=False
    ) as stack:
        targets = stack.emulator.create_datasets(datasets)
        stack.emulator.reset_stats()
        read = stack.session_factory(read_only=True)
        sampler = TreeSampler(stack.worker.process.pid).start()
        cpu0 = sampler.cpu_s()
        profiler = py_spy(stack.worker, profile_to, stack.ws.logs) if profile_to is not None else None

        def running() -> int:
            with read() as session:
                return int(session.scalar(select(func.count()).where(ImportJob.status == JobStatus.RUNNING)) or 0)

        started = time.perf_counter()
        sent = intake(stack, [targets[n % datasets] for n in range(m)])
        sent_s = time.perf_counter() - started
        wait_until(lambda: running() >= m, timeout_s=60 + m / 5, interval_s=0.1, what=f"{m} jobs RUNNING")
        elapsed = time.perf_counter() - started
        end = sampler.stop()
        if profiler is not None:
            profiler.interrupt()
        posts = sum(stack.emulator.stats(tasks=False)["tasks_created"].values())
        latencies = to_running_s(read, sent)
        return {
            "to_running_p50_s": round(percentile(latencies, 0.50), 3) if latencies else None,
            "to_running_p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
            "path": f"{'XADD message' if via == 'stream' else 'request_import'} -> RUNNING",
            "requests": m,
            "seconds": round(elapsed, 2),
            "per_s": round(m / elapsed, 1),
            "intake_s": round(sent_s, 2),
            "import_posts": posts,
            "worker_cpu_s": round(end.cpu_s - cpu0, 1),
            "pool": f"prefork -c {concurrency}",
        }


def run_celery_noop(m: int, *, concurrency: int = 2, redis_db: int = 7) -> dict[str, Any]:
    with workspace("noop") as ws:
        broker = fresh_redis(redis_db)
        env = service_env(ws, broker_url=broker, api_url="http://127.0.0.1:9")
        command = [
            sys.executable, "-m", "celery", "-A", "bench.baseline_app", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--queues", "bench", "--hostname", "noop@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]  # fmt: skip
        worker = Service.start("noop-worker", command, env=env, log_dir=ws.logs)
        try:
            worker.wait_for_log(" ready.")
            sampler = TreeSampler(worker.process.pid).start()
            cpu0 = sampler.cpu_s()
            store = redis.Redis.from_url(broker)
            sender = celery_sender(broker)
            started_wall, started = time.time(), time.perf_counter()
            with sender.producer_or_acquire() as producer:
                for _ in range(m):
                    sender.send_task("bench.noop", queue="bench", producer=producer)
                sender.send_task("bench.mark", args=["bench:noop-done"], queue="bench", producer=producer)
            sent_s = time.perf_counter() - started
            wait_until(lambda: store.get("bench:noop-done") is not None, timeout_s=60 + m / 20, what="no-ops")
            elapsed = float(store.get("bench:noop-done") or 0) - started_wall
            end = sampler.stop()
            sender.close()
            store.close()
            return {
                "path": "Celery no-op task",
                "requests": m,
                "seconds": round(elapsed, 2),
                "per_s": round(m / elapsed, 1),
                "intake_s": round(sent_s, 2),
                "worker_cpu_s": round(end.cpu_s - cpu0, 1),
                "pool": f"prefork -c {concurrency}",
            }
        finally:
            worker.stop()


def run(m: int = 1000, *, concurrency: int = 2) -> dict[str, Any]:
    ours = run_ours(m, concurrency=concurrency)
    noop = run_celery_noop(m, concurrency=concurrency)
    return {"ours": ours, "celery_noop": noop, "ratio": round(ours["per_s"] / noop["per_s"], 2)}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), indent=1))
