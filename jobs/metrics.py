"""Numbers the worker publishes for Prometheus: poll round latency, API calls and errors, when beat last ticked.

They live in one Redis hash on the broker's Redis, so every worker process adds to the same totals and the jobs
page's ``/metrics`` reads them without talking to a worker. Recording is best effort: a metric never fails a task,
and a process with no Redis installed (a unit test) records nothing.

Fields of the hash (counters only grow; a Redis flush resets them, which Prometheus reads as a counter reset):

- ``poll_rounds_total``, ``poll_round_seconds_sum``, ``poll_round_seconds_bucket:<le>`` (cumulative, ``+Inf``
  included): a histogram of how long the poll task took for rounds that had due jobs;
- ``poll_jobs_total``: jobs observed; ``api_calls_total:<op>``, ``api_errors_total:<op>`` for ``poll``, ``submit``;
- ``lease_conflicts_total:<where>``: conditional writes that lost to another claim (see :func:`record_lease_conflicts`);
- ``sql_statements_total``: statements sent to the ledger, only when a benchmark asks (:func:`count_sql_statements`);
- ``last_poll_at``, ``beat_last_tick_at``: Unix times, for health checks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine, event

__all__ = [
    "METRICS_KEY",
    "POLL_BUCKETS_S",
    "WorkerMetrics",
    "count_sql_statements",
    "install",
    "read_metrics",
    "record_api_call",
    "record_beat_tick",
    "record_lease_conflicts",
    "record_poll",
    "redis_py_url",
]

log = logging.getLogger(__name__)

METRICS_KEY = "dsimport:metrics"
POLL_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
API_OPERATIONS = ("poll", "submit")
_TIMEOUT_S = 0.5
_CONFLICTS_PREFIX = "lease_conflicts_total:"

_lock = threading.Lock()
_url: str | None = None
_client: redis.Redis | None = None


def install(redis_url: str | None) -> None:
    """Publish to the Redis at ``redis_url`` from now on (None: stop publishing)."""
    global _url, _client
    with _lock:
        _url = redis_py_url(redis_url) if redis_url else None
        if _client is not None:
            _client.close()
        _client = None


def redis_py_url(url: str) -> str:
    """The URL as redis-py wants it: kombu spells a Unix socket redis+socket://, redis-py unix://."""
    return "unix://" + url.removeprefix("redis+socket://") if url.startswith("redis+socket://") else url


def _get_client() -> redis.Redis | None:
    global _client
    with _lock:
        if _url is None:
            return None
        if _client is None:
            _client = redis.Redis.from_url(_url, socket_connect_timeout=_TIMEOUT_S, socket_timeout=_TIMEOUT_S)
        return _client


def _publish(fill: Any) -> None:
    client = _get_client()
    if client is None:
        return
    try:
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("metrics not published: %s", exc)


def _bucket_field(le: float | str) -> str:
    return f"poll_round_seconds_bucket:{le}"


def record_poll(*, duration_s: float, claimed: int, api_calls: int, errors: int, now: float | None = None) -> None:
    """One run of the poll task: its duration (counted only when it had due jobs), the API calls it made."""
    at = time.time() if now is None else now

    def fill(pipe: Any) -> None:
        pipe.hset(METRICS_KEY, "last_poll_at", repr(at))
        if claimed <= 0:
            return
        pipe.hincrby(METRICS_KEY, "poll_rounds_total", 1)
        pipe.hincrbyfloat(METRICS_KEY, "poll_round_seconds_sum", duration_s)
        for le in POLL_BUCKETS_S:
            if duration_s <= le:
                pipe.hincrby(METRICS_KEY, _bucket_field(le), 1)
        pipe.hincrby(METRICS_KEY, _bucket_field("+Inf"), 1)
        pipe.hincrby(METRICS_KEY, "poll_jobs_total", claimed)
        pipe.hincrby(METRICS_KEY, "api_calls_total:poll", api_calls)
        if errors:
            pipe.hincrby(METRICS_KEY, "api_errors_total:poll", errors)

    _publish(fill)


def record_api_call(operation: str, *, error: bool) -> None:
    """One API call outside the poller (``submit``), and whether it failed."""

    def fill(pipe: Any) -> None:
        pipe.hincrby(METRICS_KEY, f"api_calls_total:{operation}", 1)
        if error:
            pipe.hincrby(METRICS_KEY, f"api_errors_total:{operation}", 1)

    _publish(fill)


def record_lease_conflicts(where: str, count: int = 1) -> None:
    """``count`` conditional writes at ``where`` found the job claimed by someone else (or moved on) and did nothing.

    What the ledger's leases cost when workers compete: a submit whose claim another delivery won (``submit``), poll
    results dropped because the round's claim was lost (``poll_writeback``), claims that had already gone when the
    round gave them back (``poll_release``), a recovery sweep that found a group leased to another (``recover``).
    """
    if count <= 0:
        return
    _publish(lambda pipe: pipe.hincrby(METRICS_KEY, f"{_CONFLICTS_PREFIX}{where}", count))


def count_sql_statements(engine: Engine) -> None:
    """For benchmarks: add every statement ``engine`` executes to ``sql_statements_total``.

    Counted in the process and published when its transaction ends (one Redis write per transaction, not per
    statement); an ``executemany`` is one statement. Off unless ``DSIMPORT_COUNT_SQL_STATEMENTS`` is set.
    """
    unsent = [0]
    lock = threading.Lock()

    def count(*_: Any) -> None:
        with lock:
            unsent[0] += 1

    def publish(*_: Any) -> None:
        with lock:
            statements, unsent[0] = unsent[0], 0
        if statements:
            _publish(lambda pipe: pipe.hincrby(METRICS_KEY, "sql_statements_total", statements))

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", publish)
    event.listen(engine, "rollback", publish)


def record_beat_tick(now: float | None = None) -> None:
    """Beat sent its periodic poll message (what ``dsimport check beat`` looks at)."""
    at = time.time() if now is None else now
    _publish(lambda pipe: pipe.hset(METRICS_KEY, "beat_last_tick_at", repr(at)))


@dataclass(frozen=True)
class WorkerMetrics:
    """The hash, parsed. Times are Unix seconds, None when never recorded."""

    poll_rounds: int = 0
    poll_seconds_sum: float = 0.0
    poll_buckets: dict[str, int] = field(default_factory=dict)
    poll_jobs: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    api_errors: dict[str, int] = field(default_factory=dict)
    lease_conflicts: dict[str, int] = field(default_factory=dict)
    sql_statements: int = 0
    last_poll_at: float | None = None
    beat_last_tick_at: float | None = None


def read_metrics(client: redis.Redis) -> WorkerMetrics:
    """Read the published numbers (raises ``redis.RedisError`` when Redis cannot be read)."""
    raw: dict[bytes | str, bytes | str] = client.hgetall(METRICS_KEY)
    values = {_text(k): _text(v) for k, v in raw.items()}

    def number(name: str) -> float:
        try:
            return float(values.get(name, 0))
        except ValueError:
            return 0.0

    def moment(name: str) -> float | None:
        return number(name) if name in values else None

    buckets = {str(le): int(number(_bucket_field(le))) for le in POLL_BUCKETS_S}
    buckets["+Inf"] = int(number(_bucket_field("+Inf")))
    operations = sorted({*API_OPERATIONS, *(k.split(":", 1)[1] for k in values if k.startswith("api_calls_total:"))})
    return WorkerMetrics(
        poll_rounds=int(number("poll_rounds_total")),
        poll_seconds_sum=number("poll_round_seconds_sum"),
        poll_buckets=buckets,
        poll_jobs=int(number("poll_jobs_total")),
        api_calls={op: int(number(f"api_calls_total:{op}")) for op in operations},
        api_errors={op: int(number(f"api_errors_total:{op}")) for op in operations},
        lease_conflicts={
            key.split(":", 1)[1]: int(number(key)) for key in sorted(values) if key.startswith(_CONFLICTS_PREFIX)
        },
        sql_statements=int(number("sql_statements_total")),
        last_poll_at=moment("last_poll_at"),
        beat_last_tick_at=moment("beat_last_tick_at"),
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
