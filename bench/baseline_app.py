"""The Celery app of the baselines: what a Celery user writes without a batch poller, plus a no-op task.

``bench.naive_track`` is the loop of design note §3, option 1: one task per import that sleeps and calls
``fetch_task`` until the remote task ends, holding its worker slot the whole time. It follows the very poll
schedule our poller uses (:func:`jobs.poll_forecast.next_poll_after` with the same policy: first poll ``initial``
seconds after the start, then at the end the progress rate forecasts, backoff with jitter when progress says
nothing), so the comparison is about holding waits, not about polling more or less often. Each task writes when it
started and when it saw the end into Redis hashes, which the benchmark reads back.

The app takes the service's own Celery configuration (:func:`worker.celery_app.configure`) from the same
``DSIMPORT_*`` environment as our worker, so the no-op throughput is measured with the same reliability settings
(late acks, prefetch 1, events) on the same broker.

    celery -A bench.baseline_app worker --pool threads --concurrency 1000
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from celery import Celery

from api_client import ApiError, DatasetsClient
from bench.harness import DETECTED, ERRORS, OUTCOME, STARTED
from jobs.poll_forecast import ProgressTrack, next_poll_after
from store.state_machine import remote_to_job_status
from worker.celery_app import configure
from worker.runtime_builder import poll_policy
from worker.settings import load_settings

# A pool big enough that no thread waits for a connection; httpx's default keeps only 20 alive.
HTTP_CONNECTIONS = 200

settings = load_settings()
app = Celery("bench-baselines", set_as_current=True)
configure(app, settings)
app.conf.beat_schedule = {}
app.conf.task_default_queue = "bench"

_local = threading.Lock()
_state: dict[str, Any] = {}


def _shared() -> tuple[DatasetsClient, redis.Redis]:
    """One API client and one Redis client per process (made after the fork), shared by its threads."""
    with _local:
        if "client" not in _state:
            transport = httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS)
            )
            _state["client"] = DatasetsClient(
                settings.require_api_key(), base_url=settings.api_base_url, transport=transport
            )
            _state["redis"] = redis.Redis.from_url(settings.broker_url)
        return _state["client"], _state["redis"]


@app.task(name="bench.naive_track")
def naive_track(dataset_id: str, task_id: str, start_at: float) -> str:
    client, store = _shared()
    store.hset(STARTED, task_id, time.time())
    policy = poll_policy(settings)
    rng = random.Random()
    # As our submit does: first poll one initial interval after the start, progress 0 at the start.
    started = max(start_at, time.time())
    due_at = started + policy.initial_interval_s
    interval_s: float | None = policy.initial_interval_s
    track = ProgressTrack(0, datetime.fromtimestamp(started, UTC))
    while True:
        time.sleep(max(0.0, due_at - time.time()))
        seen: int | None = None
        running = False
        try:
            task = client.fetch_task(dataset_id, task_id)
        except ApiError:
            store.hincrby(ERRORS, task_id, 1)
        else:
            status = remote_to_job_status(str(task.status))
            if status is not None:
                store.hset(DETECTED, task_id, time.time())
                store.hset(OUTCOME, task_id, str(status))
                return str(status)
            seen, running = task.progress, str(task.status) == "RUNNING"
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


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.mark")
def mark(key: str) -> None:
    _, store = _shared()
    store.set(key, time.time())
