"""What a task needs at run time: a session factory, API clients and the poll policy.

Tasks take only ids and plain values as arguments (Flower shows arguments, and the API key must never be one), so
the things they work with are looked up here. The worker installs a builder once per process; tests install their
own. Building is lazy so that importing the tasks never opens a database or reads a secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from api_client import AsyncDatasetsClient, DatasetsClient
from jobs.poll_backoff import PollPolicy


@dataclass(frozen=True)
class JobTuning:
    """Numbers that shape how jobs are submitted and polled (all durations in seconds)."""

    lease_s: float = 60.0
    poll_batch_size: int = 500
    poll_concurrency: int = 32
    poll_round_budget_s: float = 5.0
    poll_group_threshold: int = 3
    submit_max_retries: int = 5
    submit_retry_backoff_s: float = 2.0
    job_deadline_s: float = 6 * 3600.0
    stuck_remote_status_s: float = 1800.0
    stale_pending_s: float = 60.0
    # --skip-existing: a dataset's index older than this is read again from the API's record list first.
    skip_existing_refresh_s: float = 600.0
    # The overall bound on one submit POST; below the lease, so its answer is recorded before recovery may act.
    post_deadline_s: float = 10.0
    schedule_settle_lag_s: float = 120.0
    # For tests only: shifts this process's clock (see tasks.job_tasks.utcnow).
    clock_offset_s: float = 0.0


@dataclass(frozen=True)
class Runtime:
    """Everything a task body reaches for, built once per worker process."""

    session_factory: sessionmaker[Session]
    client_factory: Callable[[], DatasetsClient]
    async_client_factory: Callable[[], AsyncDatasetsClient]
    poll_policy: PollPolicy
    tuning: JobTuning


_lock = threading.Lock()
_builder: Callable[[], Runtime] | None = None
_runtime: Runtime | None = None


def install(builder: Callable[[], Runtime]) -> None:
    """Set how the runtime is built; the previous runtime, if any, is dropped."""
    global _builder, _runtime
    with _lock:
        _builder = builder
        _runtime = None


def get_runtime() -> Runtime:
    """The process's runtime, built on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            if _builder is None:
                raise RuntimeError("no runtime installed: the worker's Celery app installs one at start-up")
            _runtime = _builder()
        return _runtime


def reset() -> None:
    """Forget the built runtime (after a fork, the child must open its own connections)."""
    global _runtime
    with _lock:
        _runtime = None
