"""The webhook tables: who is told about job endings, the outbox of what is still to tell them, and each attempt.

A :class:`WebhookDelivery` row is written in the same transaction as the job's move to a terminal status (see
:mod:`store.webhook_outbox`), so an ending that commits always has its deliveries, and one that rolls back has none.
The deliverer (:mod:`notifications.deliver`) works through the pending rows until each is delivered or given up.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _str_enum

__all__ = ["DeliveryStatus", "Webhook", "WebhookAttempt", "WebhookDelivery", "WebhookFormat"]


class WebhookFormat(StrEnum):
    """The body a webhook receives."""

    JSON = "json"
    """The event as JSON (``job.ended`` with the job's facts)."""
    SLACK = "slack"
    """A Slack incoming-webhook message: ``{"text": ...}``."""


class DeliveryStatus(StrEnum):
    """Where one delivery of one event to one webhook is."""

    PENDING = "pending"
    """Not delivered yet; tried again at ``next_attempt_at``."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """Given up after the last attempt allowed (or the webhook was removed)."""


def _new_id() -> str:
    return str(uuid.uuid4())


class Webhook(Base):
    """One receiver of job endings, with what it wants to hear about (None: every value)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    format: Mapped[WebhookFormat] = mapped_column(_str_enum(WebhookFormat))
    statuses: Mapped[list[str] | None] = mapped_column(JSON)
    kinds: Mapped[list[str] | None] = mapped_column(JSON)
    schedules: Mapped[list[str] | None] = mapped_column(JSON)
    # Kept in the clear on purpose: signing needs the secret itself, a hash would not do (unlike the API key, which
    # never enters the ledger). It is shown once by `dsimport webhooks add`, never logged, never a task argument.
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    def __repr__(self) -> str:
        # The secret stays out.
        return f"Webhook(name={self.name!r}, url={self.url!r}, format={self.format!s}, enabled={self.enabled!r})"


class WebhookDelivery(Base):
    """One job ending to tell one webhook: the outbox row, and the log of how it went.

    ``id`` is the event id the receiver sees (``Dsimport-Webhook-Id``): the same on every attempt, so a receiver
    that got it twice (delivery is at least once) can tell. Unique on (webhook, job): a job ends once.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # No foreign key: the delivery log outlives a pruned job.
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[DeliveryStatus] = mapped_column(_str_enum(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("webhook_id", "job_id"),
        # The deliverer's question: which pending rows are due.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    def __repr__(self) -> str:
        return (
            f"WebhookDelivery(id={self.id!r}, job_id={self.job_id!r}, status={self.status!s}, "
            f"attempts={self.attempts!r})"
        )


class WebhookAttempt(Base):
    """One POST of a delivery: what the receiver answered (or why there was no answer) and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float())
