"""Taking the due snapshots: claim the pending rows of the outbox, export each dataset once, write the file, record it.

One export per group (a schedule's jobs on one dataset that are due together), taken after the jobs are COMPLETED, so
the file holds what those imports added. The order is: the bytes from the API, the file renamed into place, then the
ledger row; a taker that dies between the last two leaves a file no row names, and the rows, still pending, are
taken again when its lease runs out (one row per job, always: :mod:`store.snapshot_outbox`).

Nothing here waits: an export that fails (the API down, the folder full) is written on the rows with the time of the
next attempt, with exponential backoff, and the next run of the periodic task takes it. A refusal that sending again
cannot change (a 4xx: the dataset is gone) and a schedule that no longer takes snapshots give the rows up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api_client import ApiError, ClientError, DatasetsClient
from snapshots.files import snapshot_path, write_atomically
from store.snapshot_outbox import ClaimedGroup, claim_due, record_failure, record_taken

__all__ = ["SnapshotPolicy", "TakeReport", "backoff_s", "take_due"]

log = logging.getLogger(__name__)

_ERROR_EXCERPT = 500


@dataclass(frozen=True)
class SnapshotPolicy:
    """How snapshots are claimed and retried (durations in seconds)."""

    backoff_base_s: float = 5.0
    backoff_max_s: float = 600.0
    max_attempts: int = 50
    # Longer than one export and write can take (the task's own time limit is shorter), so a live taker keeps it.
    lease_s: float = 600.0
    batch_size: int = 500
    # One run stops claiming after this long; the next tick carries on.
    budget_s: float = 20.0


@dataclass
class TakeReport:
    """What one run did, in jobs (a snapshot covers one or more)."""

    claimed: int = 0
    snapshots: int = 0
    covered: int = 0
    retrying: int = 0
    failed: int = 0


def take_due(
    session_factory: sessionmaker[Session],
    client_factory: Callable[[], DatasetsClient],
    *,
    owner: str,
    now: Callable[[], datetime],
    policy: SnapshotPolicy,
) -> TakeReport:
    """Take the snapshots that are due, until none is left or the run's budget is spent."""
    report = TakeReport()
    started = time.monotonic()
    while time.monotonic() - started < policy.budget_s:
        with session_factory() as session:
            groups = claim_due(session, owner=owner, now=now(), lease_s=policy.lease_s, limit=policy.batch_size)
            session.commit()
        if not groups:
            break
        claimed = sum(len(group.job_ids) for group in groups)
        report.claimed += claimed
        with client_factory() as client:
            for group in groups:
                _take(session_factory, client, group, owner=owner, now=now, policy=policy, report=report)
        if claimed < policy.batch_size:
            break
    return report


def _take(
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    group: ClaimedGroup,
    *,
    owner: str,
    now: Callable[[], datetime],
    policy: SnapshotPolicy,
    report: TakeReport,
) -> None:
    if group.snapshot_dir is None:
        _fail(session_factory, group, owner=owner, now=now, policy=policy, report=report, give_up=True,
              error=f"schedule {group.schedule_name or group.schedule_id} no longer takes snapshots")  # fmt: skip
        return
    try:
        content = client.download_export(group.dataset_id)
    except ClientError as exc:
        _fail(session_factory, group, owner=owner, now=now, policy=policy, report=report, give_up=True,
              error=f"the export was refused: {_excerpt(exc)}")  # fmt: skip
        return
    except ApiError as exc:
        _fail(session_factory, group, owner=owner, now=now, policy=policy, report=report, give_up=False,
              error=f"the export failed: {_excerpt(exc)}")  # fmt: skip
        return
    taken_at = now()
    path = snapshot_path(Path(group.snapshot_dir), group.dataset_id, at=taken_at, job_id=group.job_ids[-1])
    try:
        written = write_atomically(path, content)
    except OSError as exc:
        _fail(session_factory, group, owner=owner, now=now, policy=policy, report=report, give_up=False,
              error=f"cannot write {path}: {exc.strerror or exc}")  # fmt: skip
        return
    try:
        with session_factory() as session:
            snapshot = record_taken(
                session,
                group,
                owner=owner,
                path=str(written.path),
                record_count=written.record_count,
                sha256=written.sha256,
                size_bytes=written.size_bytes,
                now=taken_at,
            )
            session.commit()
    except BaseException:
        _remove(written.path)  # not recorded: the rows stay pending and are taken again
        raise
    if snapshot is None:
        # Another taker claimed these rows after this one's lease ran out: its snapshot is the one recorded.
        _remove(written.path)
        return
    report.snapshots += 1
    report.covered += len(snapshot.job_ids)
    log.info(
        "snapshot of dataset %s after %d job(s) of schedule %s: %s (%d records, sha256 %s)",
        group.dataset_id,
        len(snapshot.job_ids),
        group.schedule_name,
        written.path,
        written.record_count,
        written.sha256,
    )


def _fail(
    session_factory: sessionmaker[Session],
    group: ClaimedGroup,
    *,
    owner: str,
    now: Callable[[], datetime],
    policy: SnapshotPolicy,
    report: TakeReport,
    give_up: bool,
    error: str,
) -> None:
    give_up = give_up or group.attempts >= policy.max_attempts
    next_attempt_at = None if give_up else now() + timedelta(seconds=backoff_s(group.attempts, policy))
    with session_factory() as session:
        rows = record_failure(session, group, owner=owner, error=error, next_attempt_at=next_attempt_at)
        session.commit()
    if give_up:
        report.failed += rows
    else:
        report.retrying += rows
    log.warning(
        "snapshot of dataset %s for schedule %s %s: %s",
        group.dataset_id,
        group.schedule_name,
        "given up" if give_up else f"tried again at {next_attempt_at:%H:%M:%S}",
        error,
    )


def backoff_s(attempts: int, policy: SnapshotPolicy) -> float:
    """The pause after the ``attempts``-th failed attempt: doubling from the base, up to the cap."""
    return float(min(policy.backoff_max_s, policy.backoff_base_s * 2 ** max(0, attempts - 1)))


def _excerpt(exc: ApiError) -> str:
    return str(exc)[:_ERROR_EXCERPT]


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
