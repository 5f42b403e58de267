"""Baseline 3: a plain script with the official SDK (``mistralai``) polling each task from a thread pool.

One ``Mistral`` client shared by the threads, one thread per task (``--workers`` defaults to one per task, so every
task is in flight at once), each thread looping ``sleep`` + ``fetch_task`` on the same poll schedule as our poller.
Reads the tasks from a JSON file (``[[dataset_id, task_id], ...]``), waits until ``--start-at`` (Unix seconds),
writes ``{"results": {task_id: {"detected_at": ts, "status": s}}, "self": {cpu, maxrss}}`` to ``--out``.
The API key comes from ``MISTRAL_API_KEY``.

    python -m bench.sdk_poller --base-url http://127.0.0.1:8765 --tasks tasks.json --start-at 1700000000 --out o.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from mistralai.client import Mistral

from jobs.poll_backoff import PollPolicy
from jobs.poll_forecast import ProgressTrack, next_poll_after

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"})
HTTP_CONNECTIONS = 200


def track(sdk: Mistral, policy: PollPolicy, dataset_id: str, task_id: str, start_at: float) -> dict[str, Any]:
    datasets = sdk.beta.observability.datasets
    rng = random.Random()
    started = max(start_at, time.time())
    due_at = started + policy.initial_interval_s
    interval_s = policy.initial_interval_s
    track = ProgressTrack(0, datetime.fromtimestamp(started, UTC))
    errors = 0
    while True:
        time.sleep(max(0.0, due_at - time.time()))
        seen: int | None = None
        running = False
        try:
            task = datasets.fetch_task(dataset_id=dataset_id, task_id=task_id)
        except Exception:  # the SDK's errors and httpx's: count them and keep polling
            errors += 1
        else:
            status = str(task.status)
            if status in TERMINAL:
                return {"detected_at": time.time(), "status": status, "errors": errors}
            # The SDK answers ``UNSET`` for a field the API left out: no reading, like None.
            seen = task.progress if isinstance(task.progress, int) else None
            running = status == "RUNNING"
        now = datetime.now(UTC)
        next_at, interval_s = next_poll_after(
            policy,
            track,
            seen=seen,
            running=running,
            previous_interval_s=interval_s,
            seen_at=now,
            now=now,
            rng=rng,
        )
        track = track.after(seen, now)
        due_at = next_at.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tasks", type=Path, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=0, help="threads; 0: one per task")
    parser.add_argument("--initial-interval-s", type=float, default=1.0)
    parser.add_argument("--multiplier", type=float, default=1.5)
    parser.add_argument("--max-interval-s", type=float, default=10.0)
    parser.add_argument("--jitter-ratio", type=float, default=0.1)
    parser.add_argument("--forecast-fraction", type=float, default=1.0)
    args = parser.parse_args()

    tasks: list[list[str]] = json.loads(args.tasks.read_text())
    policy = PollPolicy(
        args.initial_interval_s, args.multiplier, args.max_interval_s, args.jitter_ratio, args.forecast_fraction
    )
    http = httpx.Client(
        limits=httpx.Limits(max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS),
        timeout=60,
        follow_redirects=True,
    )
    results: dict[str, Any] = {}
    lock = threading.Lock()
    with Mistral(api_key=os.environ["MISTRAL_API_KEY"], server_url=args.base_url, client=http) as sdk:

        def one(dataset_id: str, task_id: str) -> None:
            outcome = track(sdk, policy, dataset_id, task_id, args.start_at)
            with lock:
                results[task_id] = outcome

        with ThreadPoolExecutor(max_workers=args.workers or len(tasks)) as pool:
            for future in [pool.submit(one, dataset_id, task_id) for dataset_id, task_id in tasks]:
                future.result()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The process's own CPU time and peak resident set, exact where a sampler from outside would miss the end.
    summary = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}
    args.out.write_text(json.dumps({"results": results, "self": summary}))


if __name__ == "__main__":
    main()
