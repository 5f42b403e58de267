"""Requesting again the items of a schedule's failed chunk, a bounded number of times, then giving up visibly.

A window (explorer, spans) or dataset-copy fire records its items as imported when it *creates* their job; if that
job then fails (FAILED, REJECTED, TIMED_OUT, LOST, or EXPIRED before it sent anything), nothing else would ever
request those items again. So every fire first looks for such chunks (:func:`retry_failed_chunks`), in the
transaction that holds the schedule's lock, and for each one either

- creates the retry job under the key ``<chunk key>:retry:K`` (K = 1, 2, …) and points the items at it: the key is
  derived from the failed chunk alone, so a second beat, a redelivered fire or a crash after the commit finds the
  same job and never requests the chunk twice; or
- after :data:`CHUNK_RETRIES` retries (or when the job may have imported after all: EXPIRED once it had started
  sending), marks the items given up: they stay in the imported list, so they are not requested again, and are
  counted as given up in ``schedules show``.

Both leave a line in the failed job's history (``dsimport jobs show``) and in the run's message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from import_kinds import ImportKindSpec, spec_of
from jobs.request_import import validate_params
from store.jobs import create_job
from store.models import ImportJob, ImportKind, JobStatus
from store.schedule_items import FailedChunk, failed_chunks, give_up_items, move_items
from store.state_machine import new_event

__all__ = ["CHUNK_RETRIES", "RetryPass", "retry_failed_chunks", "retry_key"]

log = logging.getLogger(__name__)

# A chunk that failed this many retries fails for a reason another retry will not fix (an item the API refuses, a
# source that is gone); every retry is a remote import, so the bound also caps what such a chunk costs.
CHUNK_RETRIES = 3
_RETRY_SUFFIX = re.compile(r":retry:\d+$")


def retry_key(key: str, retry: int) -> str:
    """The idempotency key of retry number ``retry`` of the chunk whose (first or retry) job has ``key``."""
    return f"{_RETRY_SUFFIX.sub('', key)}:retry:{retry}"


class RetryConflictError(Exception):
    """Raised when a retry's key already belongs to a job holding other items (a removed and re-added schedule)."""


@dataclass
class RetryPass:
    """What one pass over the failed chunks did."""

    job_ids: list[str] = field(default_factory=list)
    to_send: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str | None:
        return "; ".join(self.notes) if self.notes else None


def retry_failed_chunks(
    session: Session,
    *,
    schedule_id: str,
    schedule_name: str,
    import_kind: ImportKind,
    dataset_id: str,
    now: datetime,
    deadline_s: float,
) -> RetryPass:
    """Retry or give up every failed chunk of the schedule; the caller holds the schedule's lock and commits."""
    done = RetryPass()
    origin = f"schedule:{schedule_name}"
    for chunk in failed_chunks(session, schedule_id):
        failed = session.get(ImportJob, chunk.job_id)
        assert failed is not None  # found by the query above, in this transaction
        if chunk.may_have_imported or chunk.retries >= CHUNK_RETRIES:
            give_up_items(session, schedule_id, chunk.item_ids, now=now)
            why = "it may have imported them" if chunk.may_have_imported else f"{chunk.retries} retries"
            note = f"gave up on {len(chunk.item_ids)} item(s) of job {chunk.job_id} ({chunk.status}, {why})"
            _note(failed, f"schedule {schedule_name} {note}", now=now)
            log.warning("schedule %s: %s", schedule_name, note)
            done.notes.append(note)
            continue
        retry = chunk.retries + 1
        job = _retry_job(session, chunk, failed, retry, origin=origin, import_kind=import_kind,
                         dataset_id=dataset_id, now=now, deadline_s=deadline_s)  # fmt: skip
        move_items(session, schedule_id, chunk.item_ids, job_id=job.id, retries=retry)
        note = f"job {chunk.job_id} ended {chunk.status}: retry {retry} of {CHUNK_RETRIES} is job {job.id}"
        _note(failed, f"schedule {schedule_name}: retry {retry} of {CHUNK_RETRIES} is job {job.id}", now=now)
        log.warning("schedule %s: %s (%d item(s))", schedule_name, note, len(chunk.item_ids))
        done.notes.append(note)
        done.job_ids.append(job.id)
        if job.status == JobStatus.PENDING:
            done.to_send.append(job.id)
    return done


def _retry_job(
    session: Session,
    chunk: FailedChunk,
    failed: ImportJob,
    retry: int,
    *,
    origin: str,
    import_kind: ImportKind,
    dataset_id: str,
    now: datetime,
    deadline_s: float,
) -> ImportJob:
    # The failed job's own request, holding the chunk's items: its other fields (a mapping contract) come along.
    spec = spec_of(import_kind)
    wanted = set(chunk.item_ids)
    items = [item for item in spec.items_of(failed.params) if _item_key(spec, item) in wanted]
    # A job cut by --skip-existing lists only the items its dataset did not hold: the others need no retry.
    if len(items) != len(wanted) and (failed.deduped_at is None or not items):
        raise RetryConflictError(f"job {failed.id} does not list the {len(wanted)} item(s) recorded for it")
    job, created = create_job(
        session,
        kind=import_kind,
        dataset_id=dataset_id,
        params=validate_params(import_kind, spec.with_items(failed.params, items)),
        idempotency_key=retry_key(chunk.idempotency_key, retry),
        origin=origin,
        deadline_at=now + timedelta(seconds=deadline_s),
        now=now,
        skip_existing=failed.skip_existing,
    )
    asked = sorted(_item_key(spec, item) for item in items)
    held = sorted(_item_key(spec, item) for item in spec.items_of(job.params))
    if not created and job.deduped_at is None and held != asked:
        raise RetryConflictError(f"idempotency key {job.idempotency_key} is taken by job {job.id} with other items")
    return job


def _item_key(spec: ImportKindSpec, item: object) -> str:
    assert spec.item_field is not None  # only kinds with items are chunked
    return spec.item_field.shape.item_key(item)


def _note(job: ImportJob, message: str, *, now: datetime) -> None:
    # A line in the job's history without a status change: what the schedule did about its failure.
    new_event(job, job.status, job.status, now=now, progress=job.progress, message=message)
