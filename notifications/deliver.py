"""Delivering the outbox: claim due deliveries, POST each signed body, record what came of it.

At least once: a delivery is marked delivered only after a 2xx answer was recorded, and one whose deliverer died
between the POST and the record is sent again when its lease runs out, with the same ``Dsimport-Webhook-Id``.
Anything other than a 2xx (an error status, a timeout, no connection) is retried with exponential backoff and
jitter, until :attr:`DeliveryPolicy.max_attempts` or :attr:`DeliveryPolicy.max_age_s`; then it is given up
(``failed``) and stays in the delivery log with its last error. Every attempt is logged in the ledger.

Webhook URLs are not logged: a Slack incoming-webhook URL is itself a credential. Nor is a secret: it is read from
the ledger here, at the moment of signing.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from notifications.bodies import render_body
from notifications.signing import signed_headers
from store.webhook_models import DeliveryStatus, Webhook
from store.webhook_outbox import ClaimedDelivery, claim_due, record_attempt

__all__ = ["TEST_EVENT", "Answer", "DeliveryPolicy", "DeliveryReport", "deliver_due", "next_attempt_in_s", "send_test"]

log = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
_ERROR_EXCERPT = 300


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are sent and retried (durations in seconds)."""

    timeout_s: float = 5.0
    max_attempts: int = 10
    max_age_s: float = 24 * 3600.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 600.0
    # Longer than one POST can take, so a live deliverer never loses its lease mid-send.
    lease_s: float = 60.0
    batch_size: int = 50
    # One run stops claiming after this long; the next tick carries on.
    budget_s: float = 20.0
    jobs_page_url: str | None = None


@dataclass
class DeliveryReport:
    """What one run did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0


@dataclass(frozen=True)
class Answer:
    """What one POST came to: a status code, or the error that stopped it."""

    status_code: int | None
    error: str | None
    duration_s: float
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_attempt_in_s(policy: DeliveryPolicy, attempts: int, rng: random.Random) -> float:
    """Seconds before the attempt after ``attempts`` failed ones: doubling from the base, capped, jittered down to
    half, so receivers coming back from an outage are not hit by every retry at once."""
    backoff = min(policy.backoff_max_s, policy.backoff_base_s * 2.0 ** max(0, attempts - 1))
    return float(backoff * rng.uniform(0.5, 1.0))


def post_signed(http: httpx.Client, url: str, *, secret: str, event_id: str, body: bytes, timeout_s: float) -> Answer:
    """POST ``body`` signed now; never raises for the receiver's failures, it reports them."""
    headers = signed_headers(secret, event_id=event_id, timestamp=int(time.time()), body=body)
    started = time.monotonic()
    try:
        response = http.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:_ERROR_EXCERPT], time.monotonic() - started)
    duration_s = time.monotonic() - started
    excerpt = response.text[:_ERROR_EXCERPT]
    if 200 <= response.status_code < 300:
        return Answer(response.status_code, None, duration_s, excerpt)
    return Answer(response.status_code, f"HTTP {response.status_code}: {excerpt}".strip(), duration_s, excerpt)


def deliver_due(
    session_factory: sessionmaker[Session],
    http: httpx.Client,
    *,
    owner: str,
    now: Callable[[], datetime],
    policy: DeliveryPolicy,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send every due delivery (batch by batch, within the policy's budget) and record each answer."""
    rng = rng or random.Random()
    report = DeliveryReport()
    started = time.monotonic()
    while time.monotonic() - started < policy.budget_s:
        with session_factory() as session:
            claimed = claim_due(
                session,
                owner=owner,
                now=now(),
                lease_s=policy.lease_s,
                limit=policy.batch_size,
                max_attempts=policy.max_attempts,
            )
            session.commit()
        report.claimed += len(claimed)
        for delivery in claimed:
            _deliver_one(session_factory, http, delivery, owner=owner, now=now, policy=policy, rng=rng, report=report)
        if len(claimed) < policy.batch_size:
            break
    return report


def _deliver_one(
    session_factory: sessionmaker[Session],
    http: httpx.Client,
    delivery: ClaimedDelivery,
    *,
    owner: str,
    now: Callable[[], datetime],
    policy: DeliveryPolicy,
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    body = render_body(delivery.format, delivery.payload, jobs_page_url=policy.jobs_page_url)
    answer = post_signed(
        http, delivery.url, secret=delivery.secret, event_id=delivery.id, body=body, timeout_s=policy.timeout_s
    )
    at = now()
    outcome, next_at = _outcome(delivery, answer, at=at, policy=policy, rng=rng)
    with session_factory() as session:
        recorded = record_attempt(
            session,
            delivery.id,
            owner=owner,
            at=at,
            status_code=answer.status_code,
            error=answer.error,
            duration_s=answer.duration_s,
            outcome=outcome,
            next_attempt_at=next_at,
        )
        session.commit()
    if not recorded:
        # The lease ran out and another deliverer took the row: its record is the one that counts.
        report.superseded += 1
        return
    if outcome is DeliveryStatus.DELIVERED:
        report.delivered += 1
    elif outcome is DeliveryStatus.FAILED:
        report.failed += 1
        log.warning(
            "webhook %s: gave up delivery %s after %d attempts: %s",
            delivery.webhook_name,
            delivery.id,
            delivery.attempts,
            answer.error,
        )
    else:
        report.retrying += 1
        log.info(
            "webhook %s: delivery %s attempt %d failed (%s); next at %s",
            delivery.webhook_name,
            delivery.id,
            delivery.attempts,
            answer.error,
            next_at.isoformat() if next_at else None,
        )


def _outcome(
    delivery: ClaimedDelivery, answer: Answer, *, at: datetime, policy: DeliveryPolicy, rng: random.Random
) -> tuple[DeliveryStatus, datetime | None]:
    if answer.ok:
        return DeliveryStatus.DELIVERED, None
    next_at = at + timedelta(seconds=next_attempt_in_s(policy, delivery.attempts, rng))
    too_old = (next_at - delivery.created_at).total_seconds() > policy.max_age_s
    if delivery.attempts >= policy.max_attempts or too_old:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.PENDING, next_at


def send_test(http: httpx.Client, webhook: Webhook, *, policy: DeliveryPolicy) -> Answer:
    """POST a signed ``webhook.test`` event to ``webhook`` now, outside the outbox, and return the answer."""
    event_id = str(uuid.uuid4())
    event: dict[str, Any] = {"id": event_id, "type": TEST_EVENT, "webhook": webhook.name}
    body = render_body(webhook.format, event, jobs_page_url=policy.jobs_page_url)
    return post_signed(
        http, webhook.url, secret=webhook.secret, event_id=event_id, body=body, timeout_s=policy.timeout_s
    )
