"""Registering webhooks and reading their delivery log. Every function takes the caller's Session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.webhook_models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery, WebhookFormat

__all__ = [
    "DeliveryView",
    "WebhookExistsError",
    "WebhookNotFoundError",
    "add_webhook",
    "delivery_counts",
    "get_webhook",
    "list_webhooks",
    "recent_deliveries",
    "remove_webhook",
    "require_webhook",
]


class WebhookNotFoundError(StoreError):
    """Raised when no webhook has the name asked for."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no webhook named {name!r}")
        self.name = name


class WebhookExistsError(StoreError):
    """Raised when a webhook is added under a name another already has."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a webhook named {name!r} already exists")
        self.name = name


def _listed(values: Sequence[str]) -> list[str] | None:
    # An empty filter means "every value", stored as NULL.
    return sorted(set(values)) or None


def add_webhook(
    session: Session,
    *,
    name: str,
    url: str,
    secret: str,
    format: WebhookFormat,
    statuses: Sequence[str] = (),
    kinds: Sequence[str] = (),
    schedules: Sequence[str] = (),
    now: datetime,
) -> Webhook:
    """Register a webhook; endings from now on that match its filters are delivered to it.

    :raises WebhookExistsError: the name is taken.
    """
    webhook = Webhook(
        name=name,
        url=url,
        secret=secret,
        format=format,
        statuses=_listed(statuses),
        kinds=_listed(kinds),
        schedules=_listed(schedules),
        enabled=True,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(webhook)
    except IntegrityError as exc:
        raise WebhookExistsError(name) from exc
    return webhook


def get_webhook(session: Session, name: str) -> Webhook | None:
    return session.scalars(select(Webhook).where(Webhook.name == name)).one_or_none()


def require_webhook(session: Session, name: str) -> Webhook:
    """:raises WebhookNotFoundError: no webhook has ``name``."""
    webhook = get_webhook(session, name)
    if webhook is None:
        raise WebhookNotFoundError(name)
    return webhook


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.name)))


def remove_webhook(session: Session, name: str) -> int:
    """Remove a webhook with its delivery log (pending deliveries are dropped); returns how many deliveries went.

    :raises WebhookNotFoundError: no webhook has ``name``.
    """
    webhook = require_webhook(session, name)
    ids = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id)
    # Explicit deletes rather than the foreign keys' cascade: SQLite enforces it only with its pragma on.
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    removed = session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id).returning(WebhookDelivery.id)
    ).all()
    session.delete(webhook)
    return len(removed)


@dataclass(frozen=True)
class DeliveryView:
    """One row of the delivery log."""

    id: str
    webhook: str
    job_id: str
    job_status: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def recent_deliveries(session: Session, *, webhook: str | None = None, limit: int = 50) -> list[DeliveryView]:
    """The newest deliveries (of one webhook, by name, when given), newest first.

    :raises WebhookNotFoundError: ``webhook`` names none.
    """
    query = select(WebhookDelivery, Webhook.name).where(Webhook.id == WebhookDelivery.webhook_id)
    if webhook is not None:
        query = query.where(WebhookDelivery.webhook_id == require_webhook(session, webhook).id)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit)
    return [
        DeliveryView(
            id=row.id,
            webhook=name,
            job_id=row.job_id,
            job_status=(row.payload.get("job") or {}).get("status"),
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
        )
        for row, name in session.execute(query).all()
    ]


def delivery_counts(session: Session) -> dict[str, int]:
    """How many deliveries are in each status (for /metrics and the jobs page)."""
    rows = session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    counts = {str(status): 0 for status in DeliveryStatus}
    counts.update({str(status): int(count) for status, count in rows})
    return counts
