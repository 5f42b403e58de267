"""An import ends on the emulator; the real worker and beat (real Redis, real ledger) tell a receiver on a socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from store.models import ImportKind, JobStatus
from store.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookFormat
from store.webhooks import add_webhook
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs
from tests.webhooks.helpers import body_of, signature_verifies
from tests.webhooks.receiver import Receiver, Reply, receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-end-to-end-0123456789"


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    # One backend is enough here: the outbox's behaviour on both is tests/webhooks/test_outbox_delivery.py's.
    return sqlite_database_url


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {
        **service_overrides,
        "DSIMPORT_WEBHOOK_TICK_S": "0.5",
        "DSIMPORT_WEBHOOK_BACKOFF_S": "0.5",
        "DSIMPORT_JOBS_PAGE_URL": "http://jobs.example:8080",
    }


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def test_an_import_that_ends_is_posted_signed_and_retried_after_a_receiver_error(
    api: DatasetsClient,
    service: ServiceProcesses,
    requester: Requester,
    ledger: sessionmaker[Session],
    hook: Receiver,
) -> None:
    hook.plan = lambda n: Reply(500 if n == 0 else 200)
    with ledger() as session:
        add_webhook(
            session, name="ops", url=hook.url, secret=SECRET, format=WebhookFormat.JSON, now=datetime.now(UTC)
        )
        session.commit()
    target = api.create_dataset("target", "filled by the import")
    uploaded = api.upload_file("records.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n')
    started = time.monotonic()
    job_id = requester.request(ImportKind.FILE, target.id, {"file_id": uploaded.id})
    [job] = wait_for_jobs(ledger, [job_id], timeout_s=60, on_timeout=service.logs).values()
    assert job.status is JobStatus.COMPLETED

    first, second = hook.wait_for(2, timeout_s=30)
    took_s = time.monotonic() - started
    assert (first.answered, second.answered) == (500, 200)
    for request in (first, second):
        assert signature_verifies(SECRET, request)
        event = body_of(request)
        assert event["type"] == "job.ended"
        assert event["job"]["id"] == job_id and event["job"]["status"] == "COMPLETED"
        assert event["job"]["kind"] == "file" and event["job"]["dataset_id"] == target.id
        assert event["job"]["remote_task_id"] == job.remote_task_id
        assert event["job"]["url"] == f"http://jobs.example:8080/jobs/{job_id}"
    assert first.headers["Dsimport-Webhook-Id"] == second.headers["Dsimport-Webhook-Id"]
    assert first.body == second.body

    # Delivered once the 200 is recorded, and never sent again.
    deadline = time.monotonic() + 10
    while True:
        with ledger() as session:
            delivery = session.scalars(select(WebhookDelivery)).one()
            if delivery.status is DeliveryStatus.DELIVERED or time.monotonic() > deadline:
                break
        time.sleep(0.1)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 2, service.logs()
    time.sleep(1.5)  # three more ticks
    assert len(hook.received) == 2
    with ledger() as session:
        codes = session.scalars(select(WebhookAttempt.status_code).order_by(WebhookAttempt.id)).all()
    assert codes == [500, 200]
    assert job.finished_at is not None
    print(
        f"request to delivered (after one retry): {took_s:.1f} s; ending to first POST "
        f"{first.at - job.finished_at.timestamp():.2f} s, retry after {second.at - first.at:.2f} s"
    )
