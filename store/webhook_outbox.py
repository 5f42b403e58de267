"""The webhook outbox: deliveries written with each job ending, claimed by deliverers, and what came of each POST.

Guarantees:

- **Written with the ending.** :func:`enqueue_ending` runs inside :func:`store.state_machine.apply_transition`, so
  the delivery rows join the transaction that moves the job to a terminal status: a commit writes both, a rollback
  neither. A crash after the commit loses nothing: the rows wait, pending, for the next deliverer.
- **Claimed by one deliverer at a time.** :func:`claim_due` leases due rows with a conditional update (candidates
  picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under SQLite's single write lock there), like the job leases of
  :mod:`store.leases`; a result is recorded only while the lease is still the recorder's.
- **At least once.** A deliverer that dies after the POST but before recording it leaves the lease to run out, and
  the row is sent again: receivers dedupe by the event id (``Dsimport-Webhook-Id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store.clock import ledger_now
from store.models import ImportJob
from store.webhook_models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery, WebhookFormat

__all__ = [
    "ABANDONED_ERROR",
    "JOB_ENDED",
    "ClaimedDelivery",
    "claim_due",
    "ending_event",
    "enqueue_ending",
    "give_up_abandoned",
    "record_attempt",
    "schedule_of",
]

JOB_ENDED = "job.ended"
_SCHEDULE_ORIGIN = "schedule:"
# The cache of the enabled webhooks' filters, per transaction (a poll round ends many jobs in one).
_CACHE_KEY = "dsimport.webhook_filters"


@dataclass(frozen=True)
class _Filters:
    webhook_id: str
    statuses: frozenset[str] | None
    kinds: frozenset[str] | None
    schedules: frozenset[str] | None

    def matches(self, status: str, kind: str, schedule: str | None) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.schedules is None or (schedule is not None and schedule in self.schedules)


def _set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _enabled_filters(session: Session) -> list[_Filters]:
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is transaction:
        return list(cached[1])
    rows = session.execute(
        select(Webhook.id, Webhook.statuses, Webhook.kinds, Webhook.schedules).where(Webhook.enabled.is_(True))
    ).all()
    filters = [_Filters(row.id, _set(row.statuses), _set(row.kinds), _set(row.schedules)) for row in rows]
    session.info[_CACHE_KEY] = (transaction, filters)
    return filters


def schedule_of(job: ImportJob) -> str | None:
    """The name of the schedule that requested ``job``, or None (its origin says: ``schedule:NAME``)."""
    origin = job.origin or ""
    return origin[len(_SCHEDULE_ORIGIN) :] if origin.startswith(_SCHEDULE_ORIGIN) else None


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def ending_event(job: ImportJob, *, event_id: str) -> dict[str, Any]:
    """The ``job.ended`` event for ``job``, as stored in the outbox and sent (JSON format) to receivers."""
    return {
        "id": event_id,
        "type": JOB_ENDED,
        "job": {
            "id": job.id,
            "status": str(job.status),
            "kind": str(job.kind),
            "dataset_id": job.dataset_id,
            "schedule": schedule_of(job),
            "origin": job.origin,
            "idempotency_key": job.idempotency_key,
            "remote_task_id": job.remote_task_id,
            "progress": job.progress,
            "requested_count": job.requested_count,
            "imported_count": job.imported_count,
            "skipped_count": job.skipped_count,
            "duplicates_skipped": job.duplicates_skipped,
            "sampled_out": job.sampled_out,
            "partial": job.partial,
            "error_code": job.error_code,
            "error": job.last_error,
            "message": job.message,
            "created_at": _iso(job.created_at),
            "submitted_at": _iso(job.submitted_at),
            "finished_at": _iso(job.finished_at),
        },
    }


def enqueue_ending(session: Session, job: ImportJob, *, now: datetime) -> list[WebhookDelivery]:
    """Add one pending delivery per enabled webhook whose filters match ``job``'s ending; the caller commits.

    Runs without autoflush: reading the webhooks must not flush the job early (its version check belongs to the
    caller's flush).
    """
    with session.no_autoflush:
        filters = _enabled_filters(session)
        if not filters:
            return []
        status, kind, schedule = str(job.status), str(job.kind), schedule_of(job)
        deliveries = []
        for webhook in filters:
            if not webhook.matches(status, kind, schedule):
                continue
            delivery = WebhookDelivery(
                webhook_id=webhook.webhook_id,
                job_id=job.id,
                event=JOB_ENDED,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            delivery.id = str(uuid.uuid4())
            delivery.payload = ending_event(job, event_id=delivery.id)
            session.add(delivery)
            deliveries.append(delivery)
        return deliveries


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to a deliverer, with what it needs to send it (the secret stays in this process)."""

    id: str
    webhook_name: str
    url: str = field(repr=False)
    format: WebhookFormat
    secret: str = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    attempts: int
    created_at: datetime


def _lease_free(now: datetime) -> Any:
    return or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at <= now)


ABANDONED_ERROR = "no deliverer recorded an answer: each one that claimed it died or lost its lease"


def give_up_abandoned(session: Session, *, now: datetime, max_attempts: int) -> int:
    """Mark FAILED the pending deliveries whose last claim was abandoned (its lease ran out with no answer recorded)
    and whose claims already reached ``max_attempts``; returns how many.

    The attempt limit is otherwise applied when an answer is recorded, so a delivery whose every deliverer dies on it
    (a body that crashes the process, a receiver that hangs a worker past its lease) would be claimed forever.
    """
    now = ledger_now(session, now)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.lease_owner.is_not(None),
            WebhookDelivery.lease_expires_at <= now,
            WebhookDelivery.attempts >= max_attempts,
        )
        .values(status=DeliveryStatus.FAILED, last_error=ABANDONED_ERROR, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def claim_due(
    session: Session, *, owner: str, now: datetime, lease_s: float, limit: int, max_attempts: int | None = None
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` pending deliveries that are due, oldest due first; two callers never get the same one.

    Counts the attempt at the claim, so a deliverer that dies mid-POST still moves the row towards giving up; with
    ``max_attempts``, a row abandoned that many times is given up here (:func:`give_up_abandoned`) instead.
    """
    if limit <= 0:
        return []
    now = ledger_now(session, now)
    if max_attempts is not None:
        give_up_abandoned(session, now=now, max_attempts=max_attempts)
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            _lease_free(now),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered only on PostgreSQL
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    claimed = list(
        session.scalars(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(ids),
                WebhookDelivery.status == DeliveryStatus.PENDING,
                _lease_free(now),
            )
            .values(
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=WebhookDelivery.attempts + 1,
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        return []
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(claimed))
        .execution_options(populate_existing=True)
    ).all()
    result = [
        ClaimedDelivery(
            id=delivery.id,
            webhook_name=webhook.name,
            url=webhook.url,
            format=webhook.format,
            secret=webhook.secret,
            payload=dict(delivery.payload),
            attempts=delivery.attempts,
            created_at=delivery.created_at,
        )
        for delivery, webhook in rows
    ]
    result.sort(key=lambda item: (item.created_at, item.id))
    return result


def record_attempt(
    session: Session,
    delivery_id: str,
    *,
    owner: str,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_s: float,
    outcome: DeliveryStatus,
    next_attempt_at: datetime | None,
) -> bool:
    """Write what one POST came to, if ``owner`` still holds the delivery's lease; False when it no longer does.

    ``outcome`` is the delivery's new status: DELIVERED, PENDING again (due at ``next_attempt_at``) or FAILED. The
    attempt row is written either way: it happened.
    """
    values: dict[str, Any] = {
        "status": outcome,
        "last_status_code": status_code,
        "last_error": error,
        "lease_owner": None,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at if outcome is DeliveryStatus.PENDING else None,
    }
    if outcome is DeliveryStatus.DELIVERED:
        values["delivered_at"] = at
    updated = session.scalars(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.lease_owner == owner,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(**values)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.add(
        WebhookAttempt(delivery_id=delivery_id, at=at, status_code=status_code, error=error, duration_s=duration_s)
    )
    return bool(updated)
