"""The prune deletes settled webhook deliveries (delivered or given up) older than the cutoff, with their attempts;
a pending one, an ending still to be told, stays whatever its age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.models import JobStatus
from store.retention import PruneCounts, prune
from store.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookFormat
from store.webhook_outbox import record_attempt
from store.webhooks import add_webhook
from tests.webhooks.helpers import ended_job

NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=60)
THIRTY_DAYS = 30 * 86_400.0


def _delivery(session: Session, *, at: datetime, outcome: DeliveryStatus) -> str:
    job_id = ended_job(session, JobStatus.COMPLETED, now=at)
    session.flush()
    delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).one()
    if outcome is not DeliveryStatus.PENDING:
        delivery.lease_owner = "w"
        session.flush()
        assert record_attempt(
            session, delivery.id, owner="w", at=at, status_code=200, error=None, duration_s=0.01,
            outcome=outcome, next_attempt_at=None,
        )  # fmt: skip
    return delivery.id


def test_settled_old_deliveries_go_with_their_attempts(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        add_webhook(
            session, name="ops", url="http://127.0.0.1:9/", secret="s" * 20, format=WebhookFormat.JSON, now=LONG_AGO
        )
        _delivery(session, at=LONG_AGO, outcome=DeliveryStatus.DELIVERED)
        _delivery(session, at=LONG_AGO, outcome=DeliveryStatus.FAILED)
        kept = {
            _delivery(session, at=LONG_AGO, outcome=DeliveryStatus.PENDING),
            _delivery(session, at=NOW - timedelta(days=1), outcome=DeliveryStatus.DELIVERED),
        }
        session.commit()

    dry = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW, dry_run=True)
    result = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)
    expected = PruneCounts(jobs=3, job_events=12, webhook_deliveries=2, webhook_attempts=2)
    assert dry.counts == result.counts == expected
    with session_factory() as session:
        assert set(session.scalars(select(WebhookDelivery.id))) == kept
        assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == 1
