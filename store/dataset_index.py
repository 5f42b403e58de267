"""The per-dataset index of item keys that ``--skip-existing`` checks (see :mod:`import_kinds.item_keys`).

A key is written when the API lists a record with it (``job_id`` None: the dataset holds it) or when one of our jobs
claims it before its POST. What a claim means follows the claiming job (:func:`key_states`):

- *held*: listed; or claimed by a job that ended COMPLETED, or ended after it may have imported (CANCELED,
  TERMINATED, and EXPIRED or locally cancelled after its POST had started);
- *in flight*: claimed by a job still PENDING, SUBMITTING or RUNNING. A second job wanting the key waits for the
  first to end rather than skip it: skipping now would lose the item if the first then failed;
- *free*: claimed by a job that certainly imported nothing (FAILED, REJECTED, TIMED_OUT, LOST, or EXPIRED or
  cancelled before its POST). The key is taken over by the next claim.

Reading the whole record list again (:func:`replace_listed`) corrects the index for everything else: a record a user
deleted, a job that failed halfway, an import made by another tool.

Every change of one dataset's keys by a job happens under :func:`lock_dataset`, so two jobs never both claim a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import ACTIVE_JOB_STATUSES, DatasetIndexState, DatasetItemKey, ImportJob, JobStatus

__all__ = [
    "NOT_IMPORTED",
    "KeyStates",
    "claim_keys",
    "held_keys",
    "index_state",
    "key_states",
    "lock_dataset",
    "replace_listed",
]

# A job ended so: its items were certainly not imported by it (as for a schedule's failed chunks).
NOT_IMPORTED = frozenset({JobStatus.FAILED, JobStatus.REJECTED, JobStatus.TIMED_OUT, JobStatus.LOST})
# Ended so, a job imported nothing if its POST never started.
_NOT_IMPORTED_UNLESS_SENT = frozenset({JobStatus.EXPIRED, JobStatus.CANCELLED_LOCALLY})
_BATCH = 500


def _batches(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


def index_state(session: Session, dataset_id: str) -> DatasetIndexState | None:
    return session.get(DatasetIndexState, dataset_id)


def lock_dataset(session: Session, dataset_id: str) -> DatasetIndexState:
    """The dataset's state row, created if missing and locked until the caller's transaction ends."""
    state = session.get(DatasetIndexState, dataset_id, with_for_update=True, populate_existing=True)
    if state is not None:
        return state
    try:
        with session.begin_nested():
            session.add(DatasetIndexState(dataset_id=dataset_id))
    except IntegrityError:
        pass  # another transaction created it first: lock that one
    state = session.get(DatasetIndexState, dataset_id, with_for_update=True, populate_existing=True)
    assert state is not None
    return state


@dataclass
class KeyStates:
    """Which of some keys a dataset holds, and which are on their way with a job still active (by job id)."""

    held: set[str] = field(default_factory=set)
    in_flight: dict[str, str] = field(default_factory=dict)


def key_states(
    session: Session, dataset_id: str, keys: Sequence[str], *, ignore_job: str | None = None
) -> KeyStates:
    """What the index says of ``keys`` (see the module): held, in flight, or (absent from both) free. The claims of
    ``ignore_job`` count as free: a job checking again is not waiting for itself."""
    states = KeyStates()
    for batch in _batches(list(dict.fromkeys(keys))):
        rows = session.execute(
            select(DatasetItemKey.item_key, DatasetItemKey.job_id, ImportJob.status, ImportJob.submit_started_at)
            .outerjoin(ImportJob, ImportJob.id == DatasetItemKey.job_id)
            .where(DatasetItemKey.dataset_id == dataset_id, DatasetItemKey.item_key.in_(batch))
        )
        for key, job_id, status, sent_at in rows:
            if job_id is not None and job_id == ignore_job:
                continue
            if job_id is None or status is None:  # listed, or claimed by a job pruned since (it ended long ago)
                states.held.add(key)
            elif status in ACTIVE_JOB_STATUSES:
                states.in_flight[key] = job_id
            elif status in NOT_IMPORTED or (status in _NOT_IMPORTED_UNLESS_SENT and sent_at is None):
                continue
            else:
                states.held.add(key)
    return states


def held_keys(session: Session, dataset_id: str, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` the dataset holds or a job still active brings (for previews: either is left out)."""
    states = key_states(session, dataset_id, keys)
    return states.held | set(states.in_flight)


def claim_keys(session: Session, dataset_id: str, keys: Sequence[str], *, job_id: str, now: datetime) -> None:
    """Record that ``job_id`` brings ``keys`` to the dataset (a key left by a failed job is taken over)."""
    unique = list(dict.fromkeys(keys))
    for batch in _batches(unique):
        existing = set(
            session.execute(
                select(DatasetItemKey.item_key).where(
                    DatasetItemKey.dataset_id == dataset_id, DatasetItemKey.item_key.in_(batch)
                )
            ).scalars()
        )
        if existing:
            session.execute(
                update(DatasetItemKey)
                .where(DatasetItemKey.dataset_id == dataset_id, DatasetItemKey.item_key.in_(existing))
                .values(job_id=job_id, seen_at=now)
            )
        session.add_all(
            DatasetItemKey(dataset_id=dataset_id, item_key=key, job_id=job_id, seen_at=now)
            for key in batch
            if key not in existing
        )
    session.flush()


def replace_listed(
    session: Session, dataset_id: str, listed: set[str], *, listing_started: datetime, record_count: int
) -> None:
    """Make the index say what a complete listing of the dataset, begun at ``listing_started``, found.

    Listed keys are marked held by the dataset itself. Keys not listed are dropped when nothing still brings
    them: a listed key gone since (a deleted record), or a key of a job that ended before the listing began. Keys
    of jobs still running, or ended after the listing began, are kept: the listing may have passed before their
    records were written. The caller holds :func:`lock_dataset`.
    """
    current: dict[str, str | None] = {
        key: job_id
        for key, job_id in session.execute(
            select(DatasetItemKey.item_key, DatasetItemKey.job_id).where(DatasetItemKey.dataset_id == dataset_id)
        )
    }
    job_ids = sorted({job_id for job_id in current.values() if job_id is not None})
    ended_before: set[str] = set()
    for batch in _batches(job_ids):
        ended_before.update(
            session.execute(
                select(ImportJob.id).where(
                    ImportJob.id.in_(batch), ImportJob.finished_at.is_not(None), ImportJob.finished_at < listing_started
                )
            ).scalars()
        )
    gone = [key for key, job_id in current.items() if key not in listed and (job_id is None or job_id in ended_before)]
    for batch in _batches(gone):
        session.execute(
            delete(DatasetItemKey).where(DatasetItemKey.dataset_id == dataset_id, DatasetItemKey.item_key.in_(batch))
        )
    confirm = [key for key in listed if key in current and current[key] is not None]
    for batch in _batches(confirm):
        session.execute(
            update(DatasetItemKey)
            .where(DatasetItemKey.dataset_id == dataset_id, DatasetItemKey.item_key.in_(batch))
            .values(job_id=None, seen_at=listing_started)
        )
    session.add_all(
        DatasetItemKey(dataset_id=dataset_id, item_key=key, job_id=None, seen_at=listing_started)
        for key in listed
        if key not in current
    )
    state = lock_dataset(session, dataset_id)
    state.refreshed_at = listing_started
    state.record_count = record_count
    session.flush()
