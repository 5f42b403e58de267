"""The jobs page's delivery log (/webhooks) and the /metrics gauge, over a real ledger and HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from notifications.deliver import DeliveryPolicy, deliver_due
from store.models import JobStatus
from store.webhook_models import WebhookFormat
from store.webhooks import add_webhook
from tests.dashboard.conftest import PASSWORD, USER, auth_header
from tests.dashboard.server import serve
from tests.webhooks.helpers import ended_job
from tests.webhooks.receiver import Receiver, Reply, receiver


@pytest.fixture
def page(database_url: str) -> Iterator[httpx.Client]:
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, refresh_s=3)
    with serve(build_app(config)) as http:
        yield http


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def test_the_delivery_log_shows_each_delivery_with_its_attempts_and_last_error(
    page: httpx.Client, hook: Receiver, session_factory: sessionmaker[Session]
) -> None:
    hook.plan = lambda _n: Reply(502)
    now = datetime.now(UTC)
    with session_factory() as session:
        add_webhook(
            session,
            name="<ops>",
            url=hook.url + "/T000/B000/secret-path",
            secret="s" * 20,
            format=WebhookFormat.SLACK,
            statuses=["FAILED"],
            now=now,
        )
        job_id = ended_job(session, JobStatus.FAILED, now=now)
        ended_job(session, JobStatus.COMPLETED, now=now)  # filtered out
        session.commit()
    with httpx.Client() as http:
        deliver_due(session_factory, http, owner="w", now=lambda: now, policy=DeliveryPolicy(timeout_s=1))

    assert page.get("/webhooks").status_code == 401
    html = page.get("/webhooks", headers=auth_header()).text
    assert "&lt;ops&gt;" in html and "<ops>" not in html  # escaped
    assert "secret-path" not in html  # a Slack URL's path is a credential
    rows = re.findall(r'<tr data-delivery="[^"]+" data-status="(\w+)">(.*?)</tr>', html, re.S)
    [(status, row)] = rows
    assert status == "pending"
    assert f'href="/jobs/{job_id}"' in row and "HTTP 502" in row and "<td>1</td>" in row

    metrics = page.get("/metrics").text
    assert 'dsimport_webhook_deliveries{status="pending"} 1.0' in metrics
    assert 'dsimport_webhook_deliveries{status="delivered"} 0.0' in metrics
