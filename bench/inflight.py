"""In-flight capacity and detection lag: N remote imports followed at once, by our worker and by the baselines.

Every contender gets the same start. The emulator's clock is frozen while the N remote tasks are created (durations
drawn from the range), the contender is handed the N task ids, and the clock is released at ``t0``: every task then
runs from ``t0`` and ends at its own ``terminal_at``. Measured from ``t0``:

- time until all are recorded (the last recorded end minus ``t0``);
- detection lag of each task: when the contender recorded the end (the ledger's ``finished_at`` for ours) minus the
  emulator's ``terminal_at`` (moved onto the wall clock by the offset the release measured);
- API calls (the emulator's counters, reset at ``t0``) per import;
- CPU seconds of the contender's process tree from ``t0`` to the last end, and its peak memory over its whole life.

Ours: the N jobs are written to the ledger as RUNNING, exactly as a submit leaves them (next poll one initial
interval after ``t0``; the submit path has its own benchmark); one worker process and beat with default settings.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import func, insert, select, update

from jobs.poll_backoff import PollPolicy
from store.db import make_engine, make_session_factory
from store.models import TERMINAL_JOB_STATUSES, ImportJob, ImportKind, JobStatus

from .harness import (
    API_KEY,
    DETECTED,
    ERRORS,
    EVENT_ID,
    STARTED,
    Emulator,
    Service,
    fresh_redis,
    our_beat,
    our_worker,
    py_spy,
    service_env,
    wait_until,
    workspace,
)
from .sampling import TreeSampler, iso_to_ts, mib, percentile

POLICY = PollPolicy()  # the service's defaults (worker.settings): 1 s initial, x1.5, 10 s cap, 10 % jitter
TIMEOUT_SLACK_S = 120.0


@dataclass(frozen=True)
class Case:
    n: int
    duration: str = "5-30"
    datasets: int = 100
    redis_db: int = 5
    # Our worker's ledger: "sqlite" or "postgresql" (a database of its own, see harness.workspace).
    ledger: str = "sqlite"

    @property
    def duration_range(self) -> tuple[float, float]:
        low, _, high = self.duration.partition("-")
        return float(low), float(high or low)

    @property
    def mean_duration_s(self) -> float:
        low, high = self.duration_range
        return (low + high) / 2

    def timeout_s(self) -> float:
        return self.duration_range[1] + TIMEOUT_SLACK_S + self.n / 50


def _remote_tasks(emu: Emulator, case: Case) -> list[tuple[str, str]]:
    """Freeze the emulator's clock and start the N imports, spread round-robin over the datasets."""
    emu.freeze()
    datasets = emu.create_datasets(min(case.datasets, case.n))
    targets = [datasets[i % len(datasets)] for i in range(case.n)]
    task_ids = emu.create_tasks(targets)
    emu.reset_stats()
    return list(zip(targets, task_ids, strict=True))


def _outcome(
    *,
    name: str,
    case: Case,
    emu: Emulator,
    t0: float,
    offset_s: float,
    detected: dict[str, float],
    sampler: TreeSampler,
    cpu_at_t0: float,
    notes: str = "",
    cpu_end_s: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    stats = emu.stats()
    end = sampler.stop()
    if cpu_end_s is None:
        cpu_end_s = end.cpu_s
    lags = []
    for task_id, task in stats["tasks"].items():
        if task_id in detected and task["terminal_at"] is not None:
            lags.append(detected[task_id] - (iso_to_ts(task["terminal_at"]) + offset_s))
    calls = stats["requests"].get("fetch_task", 0) + stats["requests"].get("list_tasks", 0)
    time_to_all_s = round(max(detected.values()) - t0, 2) if detected else None
    return {
        "contender": name,
        "n": case.n,
        "duration_s": case.duration,
        "datasets": min(case.datasets, case.n),
        "recorded": len(detected),
        "time_to_all_s": time_to_all_s,
        "lag_p50_s": round(percentile(lags, 0.50), 3),
        "lag_p95_s": round(percentile(lags, 0.95), 3),
        "lag_p99_s": round(percentile(lags, 0.99), 3),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_mean_s": round(statistics.fmean(lags), 3) if lags else None,
        "api_calls": calls,
        "api_calls_by_route": {k: v for k, v in stats["requests"].items() if k in ("fetch_task", "list_tasks")},
        "calls_per_import": round(calls / case.n, 2),
        # The rate the API saw: every poll call from t0 until the last end was recorded (none are made after).
        "api_calls_per_s": round(calls / time_to_all_s, 1) if time_to_all_s else None,
        "cpu_s": round(cpu_end_s - cpu_at_t0, 1),
        "peak_rss_mib": round(mib(sampler.peak_rss), 1),
        "peak_pss_mib": round(mib(sampler.peak_pss), 1),
        "peak_processes": sampler.peak_processes,
        "notes": notes,
        **extra,
    }


# ------------------------------------------------------------------------------------------------------- ours


def _insert_running(database_url: str, pairs: list[tuple[str, str]]) -> None:
    """Write the jobs as the submit task leaves an accepted one: RUNNING, remote task id known, progress 0."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    far = now + timedelta(days=1)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "kind": ImportKind.EXPLORER,
            "dataset_id": dataset_id,
            "params": {"completion_event_ids": [EVENT_ID]},
            "idempotency_key": f"bench:{task_id}",
            "origin": "bench",
            "remote_task_id": task_id,
            "status": JobStatus.RUNNING,
            "remote_status": "RUNNING",
            "remote_status_since": now,
            "progress": 0,
            "attempts": 1,
            "poll_count": 0,
            "next_poll_at": far,
            "poll_interval_s": POLICY.initial_interval_s,
            "deadline_at": now + timedelta(hours=6),
            "created_at": now,
            "submit_started_at": now,
            "submitted_at": now,
            "updated_at": now,
            "version": 1,
        }
        for dataset_id, task_id in pairs
    ]
    try:
        with make_session_factory(engine)() as session:
            for start in range(0, len(rows), 2000):
                session.execute(insert(ImportJob), rows[start : start + 2000])
            session.commit()
    finally:
        engine.dispose()


def _release(database_url: str, t0: float) -> None:
    engine = make_engine(database_url)
    at = datetime.fromtimestamp(t0, UTC)
    try:
        with make_session_factory(engine)() as session:
            session.execute(
                update(ImportJob).values(
                    submitted_at=at,
                    remote_status_since=at,
                    next_poll_at=at + timedelta(seconds=POLICY.initial_interval_s),
                ),
                execution_options={"synchronize_session": False},
            )
            session.commit()
    finally:
        engine.dispose()


def _drained(broker: str) -> bool:
    """Our queues hold nothing but (at most) the next poll tick, twice in a row half a second apart."""
    client = redis.Redis.from_url(broker)
    try:
        for attempt in range(2):
            if sum(int(client.llen(q)) for q in ("dsimport", "dsimport.poll")) > 1:
                return False
            if attempt == 0:
                time.sleep(0.5)
        return True
    finally:
        client.close()


def run_ours(
    case: Case,
    *,
    pool: str = "prefork",
    routed: bool = False,
    settings: dict[str, str] | None = None,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """Our worker (one process: ``--pool prefork --concurrency 1``, or ``--pool solo``) and beat.

    ``profile_to``: record the worker's process tree with py-spy (collapsed stacks) from ``t0`` to the end.
    """
    with workspace("inflight", ledger=case.ledger) as ws:
        broker = fresh_redis(case.redis_db)
        emu = Emulator(task_duration=case.duration, log_dir=ws.logs)
        services: list[Service] = []
        try:
            env = service_env(ws, broker_url=broker, api_url=emu.url, **(settings or {}))
            worker = our_worker(env, ws.logs, pool=pool, concurrency=1, routed=routed)
            services.append(worker)
            beat = our_beat(env, ws.logs, routed=routed)
            services.append(beat)
            sampler = TreeSampler(worker.process.pid).start()
            beat_sampler = TreeSampler(beat.process.pid).start()
            pairs = _remote_tasks(emu, case)
            _insert_running(ws.database_url, pairs)
            cpu_at_t0, beat_cpu_at_t0 = sampler.cpu_s(), beat_sampler.cpu_s()
            t0 = time.time()
            profiler = py_spy(worker, profile_to, ws.logs) if profile_to is not None else None
            _release(ws.database_url, t0)
            offset_s = emu.unfreeze()
            engine = make_engine(ws.database_url)
            read = make_session_factory(engine, read_only=True)
            terminal = [s for s in JobStatus if s in TERMINAL_JOB_STATUSES]

            def all_recorded() -> bool:
                with read() as session:
                    done = session.scalar(select(func.count()).where(ImportJob.status.in_(terminal)))
                return done == case.n

            try:
                wait_until(all_recorded, timeout_s=case.timeout_s(), interval_s=0.5, what="all jobs recorded")
                notes = ""
            except TimeoutError as exc:
                notes = str(exc)
            cpu_recorded = sampler.cpu_s()
            # The finalize tasks of the last imports may still be queued: count their CPU too.
            try:
                wait_until(
                    lambda: _drained(broker), timeout_s=120, interval_s=0.5, what="the finalize backlog to drain"
                )
            except TimeoutError as exc:
                notes = f"{notes}; {exc}".strip("; ")
            with read() as session:
                rows = session.execute(
                    select(ImportJob.remote_task_id, ImportJob.finished_at, ImportJob.status, ImportJob.poll_count)
                ).all()
            engine.dispose()
            if profiler is not None:
                profiler.interrupt()
            detected = {tid: fin.timestamp() for tid, fin, _, _ in rows if fin is not None and tid is not None}
            statuses: dict[str, int] = {}
            for _, _, status, _ in rows:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            beat_cpu = beat_sampler.stop().cpu_s - beat_cpu_at_t0
            return _outcome(
                name=f"ours ({pool}{' -c 1' if pool == 'prefork' else ''}{', poll queue' if routed else ''}"
                + "".join(f", {key}={value}" for key, value in sorted((settings or {}).items()))
                + ")",
                case=case,
                emu=emu,
                t0=t0,
                offset_s=offset_s,
                detected=detected,
                sampler=sampler,
                cpu_at_t0=cpu_at_t0,
                notes=notes,
                statuses=statuses,
                ledger=case.ledger,
                settings=dict(settings or {}),
                polls_per_import=round(sum(r[3] for r in rows) / max(1, len(rows)), 2),
                cpu_s_to_all_recorded=round(cpu_recorded - cpu_at_t0, 1),
                beat_cpu_s=round(beat_cpu, 1),
            )
        finally:
            for service in reversed(services):
                service.stop()
            emu.stop()


# ------------------------------------------------------------------------------------------- Celery loops


def _baseline_worker(env: dict[str, str], log_dir: Any, *, pool: str, concurrency: int) -> Service:
    command = [
        sys.executable, "-m", "celery", "-A", "bench.baseline_app", "worker",
        "--pool", pool, "--concurrency", str(concurrency), "--queues", "bench",
        "--hostname", f"baseline-{pool}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    service = Service.start(f"baseline-{pool}", command, env=env, log_dir=log_dir)
    service.wait_for_log(" ready.")
    return service


def _send_loops(broker: str, pairs: list[tuple[str, str]], start_at: float) -> None:
    sender = Celery("bench-sender", broker=broker, set_as_current=False)
    try:
        with sender.connection_for_write() as connection, sender.producer_or_acquire() as producer:
            del connection
            for dataset_id, task_id in pairs:
                sender.send_task(
                    "bench.naive_track", args=[dataset_id, task_id, start_at], queue="bench", producer=producer
                )
    finally:
        sender.close()


def run_threads_loop(case: Case, *, concurrency: int | None = None) -> dict[str, Any]:
    """Baseline 2: the sleeping loop on Celery's threads pool, one thread per import (gevent is not installed)."""
    threads = concurrency or case.n
    with workspace("threads") as ws:
        broker = fresh_redis(case.redis_db)
        emu = Emulator(task_duration=case.duration, log_dir=ws.logs)
        worker: Service | None = None
        try:
            env = service_env(ws, broker_url=broker, api_url=emu.url)
            worker = _baseline_worker(env, ws.logs, pool="threads", concurrency=threads)
            sampler = TreeSampler(worker.process.pid).start()
            pairs = _remote_tasks(emu, case)
            # Every loop must have started (and be asleep) before t0, so all N are in flight from the start.
            start_at = time.time() + 4.0 + case.n * 0.002
            _send_loops(broker, pairs, start_at)
            time.sleep(max(0.0, start_at - time.time()))
            store = redis.Redis.from_url(broker)
            started_by_t0 = int(store.hlen(STARTED))
            cpu_at_t0 = sampler.cpu_s()
            offset_s = emu.unfreeze()
            t0 = start_at
            notes = "" if started_by_t0 == case.n else f"only {started_by_t0} loops had started at t0"
            try:
                wait_until(
                    lambda: store.hlen(DETECTED) >= case.n,
                    timeout_s=case.timeout_s(),
                    interval_s=0.5,
                    what="every loop to see its task end",
                )
            except TimeoutError as exc:
                notes = f"{notes}; {exc}".strip("; ")
            raw_detected: dict[bytes, bytes] = store.hgetall(DETECTED)  # type: ignore[assignment]
            detected = {k.decode(): float(v) for k, v in raw_detected.items()}
            errors = sum(int(v) for v in store.hvals(ERRORS))
            store.close()
            return _outcome(
                name=f"Celery threads pool, -c {threads}",
                case=case,
                emu=emu,
                t0=t0,
                offset_s=offset_s,
                detected=detected,
                sampler=sampler,
                cpu_at_t0=cpu_at_t0,
                notes=notes,
                in_flight=started_by_t0,
                poll_errors=errors,
            )
        finally:
            if worker is not None:
                worker.stop()
            emu.stop()


def run_naive_prefork(
    case: Case, *, concurrency: int = 2, sample_tasks: int = 10, window_s: float = 12.0
) -> dict[str, Any]:
    """Baseline 1: the sleeping loop on the default prefork pool. Measures how many imports it follows at once;
    the time for N is extrapolated (at least N x mean duration / capacity), running it would take hours."""
    with workspace("naive") as ws:
        broker = fresh_redis(case.redis_db)
        emu = Emulator(task_duration=case.duration, log_dir=ws.logs)
        worker: Service | None = None
        try:
            env = service_env(ws, broker_url=broker, api_url=emu.url)
            worker = _baseline_worker(env, ws.logs, pool="prefork", concurrency=concurrency)
            sampler = TreeSampler(worker.process.pid).start()
            small = Case(n=sample_tasks, duration=case.duration, datasets=sample_tasks, redis_db=case.redis_db)
            pairs = _remote_tasks(emu, small)
            start_at = time.time() + 2.0
            _send_loops(broker, pairs, start_at)
            time.sleep(max(0.0, start_at - time.time()))
            emu.unfreeze()
            store = redis.Redis.from_url(broker)
            peak_in_flight = 0
            deadline = time.monotonic() + window_s
            while time.monotonic() < deadline:
                in_flight = int(store.hlen(STARTED)) - int(store.hlen(DETECTED))
                peak_in_flight = max(peak_in_flight, in_flight)
                time.sleep(0.25)
            started = int(store.hlen(STARTED))
            store.close()
            end = sampler.stop()
            capacity = max(1, peak_in_flight)
            extrapolated_s = case.n * case.mean_duration_s / capacity
            return {
                "contender": f"Celery prefork pool, -c {concurrency} (naive loop)",
                "n": case.n,
                "duration_s": case.duration,
                "in_flight": peak_in_flight,
                "sample_tasks": sample_tasks,
                "started_in_window": started,
                "window_s": window_s,
                "time_to_all_s": round(extrapolated_s, 0),
                "time_to_all_is_extrapolated": True,
                "peak_rss_mib": round(mib(sampler.peak_rss), 1),
                "peak_pss_mib": round(mib(sampler.peak_pss), 1),
                "cpu_s_window": round(end.cpu_s, 1),
                "notes": (
                    f"{sample_tasks} loops sent, {started} started within {window_s:g} s; time for N is "
                    f"N x mean duration ({case.mean_duration_s:g} s) / {capacity} (a lower bound: it ignores "
                    f"each loop's own detection lag); lag grows with the queue: the last import waits that long"
                ),
            }
        finally:
            if worker is not None:
                worker.stop()
            emu.stop()


# ------------------------------------------------------------------------------------------------------ SDK


def run_sdk_script(case: Case, *, workers: int | None = None) -> dict[str, Any]:
    """Baseline 3: ``bench/sdk_poller.py``, the official SDK in a thread pool of one thread per import."""
    threads = workers or case.n
    with workspace("sdk") as ws:
        emu = Emulator(task_duration=case.duration, log_dir=ws.logs)
        script: Service | None = None
        try:
            pairs = _remote_tasks(emu, case)
            tasks_file, out_file = ws.path / "tasks.json", ws.path / "detected.json"
            tasks_file.write_text(json.dumps(pairs))
            start_at = time.time() + 4.0 + case.n * 0.001
            env = service_env(ws, broker_url="redis://unused", api_url=emu.url)
            env["MISTRAL_API_KEY"] = API_KEY
            command = [
                sys.executable, "-m", "bench.sdk_poller", "--base-url", emu.url, "--tasks", str(tasks_file),
                "--start-at", repr(start_at), "--out", str(out_file), "--workers", str(threads),
            ]  # fmt: skip
            script = Service.start("sdk-poller", command, env=env, log_dir=ws.logs)
            sampler = TreeSampler(script.process.pid).start()
            time.sleep(max(0.0, start_at - time.time()))
            cpu_at_t0 = sampler.cpu_s()
            offset_s = emu.unfreeze()
            notes = ""
            try:
                script.process.wait(timeout=case.timeout_s())
            except Exception as exc:  # a timeout: report what was recorded
                notes = f"did not finish: {exc}"
            if script.process.returncode not in (0, None):
                notes = f"exited with {script.process.returncode}: {script.tail(500)}"
            written = json.loads(out_file.read_text()) if out_file.exists() else {"results": {}, "self": {}}
            results = written["results"]
            detected = {task_id: float(r["detected_at"]) for task_id, r in results.items()}
            return _outcome(
                name=f"SDK script, {threads} threads",
                case=case,
                emu=emu,
                t0=start_at,
                offset_s=offset_s,
                detected=detected,
                sampler=sampler,
                cpu_at_t0=cpu_at_t0,
                notes=notes,
                in_flight=threads if threads <= case.n else case.n,
                poll_errors=sum(int(r.get("errors", 0)) for r in results.values()),
                cpu_end_s=written["self"].get("cpu_s"),
            )
        finally:
            if script is not None:
                script.stop()
            emu.stop()
