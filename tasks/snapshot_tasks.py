"""``dsimport.take_snapshots``: the periodic task beat sends every ``DSIMPORT_SNAPSHOT_TICK_S`` to take the snapshots
that schedules' completed imports are owed (see :mod:`snapshots.take`).

Thin: its arguments are the retry policy's plain numbers. Two runs at once (two beats, a slow tick) split the due
snapshots between them through the outbox's leases; a run that finds nothing due costs one query.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from jobs.runtime import get_runtime
from snapshots.take import SnapshotPolicy, take_due
from tasks.job_tasks import utcnow, worker_identity
from tasks.names import TAKE_SNAPSHOTS

__all__ = ["TAKE_SNAPSHOTS", "take_snapshots"]


@shared_task(name=TAKE_SNAPSHOTS, ignore_result=True)
def take_snapshots(backoff_s: float = 5.0, max_attempts: int = 50) -> dict[str, Any]:
    runtime = get_runtime()
    policy = SnapshotPolicy(backoff_base_s=backoff_s, max_attempts=max_attempts)
    report = take_due(
        runtime.session_factory, runtime.client_factory, owner=worker_identity(), now=utcnow, policy=policy
    )
    return {
        "claimed": report.claimed,
        "snapshots": report.snapshots,
        "covered": report.covered,
        "retrying": report.retrying,
        "failed": report.failed,
    }
