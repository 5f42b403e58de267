"""The webhook outbox on a real ledger (SQLite and PostgreSQL) delivered to a real HTTP receiver on a socket."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from notifications.deliver import DeliveryPolicy, deliver_due, next_attempt_in_s
from store.models import ImportKind, JobStatus
from store.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookFormat
from store.webhook_outbox import ABANDONED_ERROR, claim_due
from store.webhooks import add_webhook, recent_deliveries
from tests.webhooks.helpers import body_of, end_job, ended_job, new_job, signature_verifies
from tests.webhooks.receiver import Receiver, Reply, receiver

SECRET = "whsec-test-0123456789"
POLICY = DeliveryPolicy(timeout_s=0.5, backoff_base_s=1.0, max_attempts=4, lease_s=30.0)


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def _register(
    sessions: sessionmaker[Session],
    url: str,
    name: str = "ops",
    format: WebhookFormat = WebhookFormat.JSON,
    **filters: list[str],
) -> None:
    with sessions() as session:
        add_webhook(session, name=name, url=url, secret=SECRET, format=format, now=datetime.now(UTC), **filters)
        session.commit()


def _deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def test_an_ending_committed_before_a_crash_is_delivered_by_the_next_tick(
    session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    _register(session_factory, hook.url)
    clock = Clock()
    with session_factory() as session:
        job_id = ended_job(session, JobStatus.FAILED, now=clock())
        session.commit()
    # The process that ended the job dies here: nothing was sent, nothing is in memory. A new deliverer starts.
    assert hook.received == []
    report = deliver_due(session_factory, http, owner="after-crash", now=clock, policy=POLICY)
    assert report.delivered == 1
    [request] = hook.received
    assert signature_verifies(SECRET, request)
    event = body_of(request)
    assert event["type"] == "job.ended" and event["job"]["id"] == job_id and event["job"]["status"] == "FAILED"
    assert request.headers["Dsimport-Webhook-Id"] == event["id"]
    [delivery] = _deliveries(session_factory)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_status_code == 200
    # Delivered rows are not sent again.
    assert deliver_due(session_factory, http, owner="again", now=clock, policy=POLICY).claimed == 0
    assert len(hook.received) == 1


def test_an_ending_rolled_back_writes_no_delivery(session_factory: sessionmaker[Session], hook: Receiver) -> None:
    _register(session_factory, hook.url)
    now = datetime.now(UTC)
    with session_factory() as session:
        job = new_job(session, now=now)
        session.commit()
        end_job(job, JobStatus.COMPLETED, now=now)
        session.flush()
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        session.rollback()
    assert _deliveries(session_factory) == []


def test_a_receiver_error_is_retried_after_a_backoff_and_then_delivered(
    session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    hook.plan = lambda n: Reply(500 if n == 0 else 200)
    _register(session_factory, hook.url)
    clock = Clock()
    with session_factory() as session:
        ended_job(session, now=clock())
        session.commit()
    first = deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY)
    assert (first.retrying, first.delivered) == (1, 0)
    [delivery] = _deliveries(session_factory)
    assert delivery.status is DeliveryStatus.PENDING and delivery.last_status_code == 500
    assert delivery.next_attempt_at is not None
    wait_s = (delivery.next_attempt_at - clock()).total_seconds()
    assert POLICY.backoff_base_s * 0.5 <= wait_s <= POLICY.backoff_base_s
    # Not before its time.
    assert deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY).claimed == 0
    clock.advance(wait_s)
    assert deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY).delivered == 1
    assert [request.answered for request in hook.received] == [500, 200]
    first_id, second_id = (request.headers["Dsimport-Webhook-Id"] for request in hook.received)
    assert first_id == second_id  # the same event id on the retry, to dedupe by
    with session_factory() as session:
        attempts = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert [attempt.status_code for attempt in attempts] == [500, 200]
        assert attempts[0].error is not None and "HTTP 500" in attempts[0].error
        [view] = recent_deliveries(session)
        assert view.status is DeliveryStatus.DELIVERED and view.attempts == 2


def test_a_receiver_that_never_answers_is_given_up_after_the_last_attempt(
    session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    hook.plan = lambda n: Reply(200, delay_s=1.5) if n == 0 else Reply(503)
    _register(session_factory, hook.url)
    clock = Clock()
    with session_factory() as session:
        ended_job(session, now=clock())
        session.commit()
    for _ in range(POLICY.max_attempts):
        deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY)
        clock.advance(POLICY.backoff_max_s)
    [delivery] = _deliveries(session_factory)
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == POLICY.max_attempts
    assert delivery.last_status_code == 503
    with session_factory() as session:
        errors = session.scalars(select(WebhookAttempt.error).order_by(WebhookAttempt.id)).all()
    assert errors[0] is not None and "Timeout" in errors[0]  # the first POST timed out
    assert deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY).claimed == 0


def test_a_delivery_whose_every_deliverer_dies_on_it_is_given_up_after_the_last_attempt(
    session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    # Each claim counts an attempt; a deliverer that dies holding the row never records an answer, so the limit
    # has to be applied when the next deliverer finds the abandoned lease.
    _register(session_factory, hook.url)
    clock = Clock()
    with session_factory() as session:
        ended_job(session, now=clock())
        session.commit()
    for _ in range(POLICY.max_attempts - 1):
        with session_factory() as session:
            assert len(claim_due(session, owner="doomed", now=clock(), lease_s=POLICY.lease_s, limit=5)) == 1
            session.commit()
        clock.advance(POLICY.lease_s + 1)
    # One claim short of the limit: still tried, and this deliverer dies too.
    with session_factory() as session:
        claimed = claim_due(
            session, owner="doomed", now=clock(), lease_s=POLICY.lease_s, limit=5, max_attempts=POLICY.max_attempts
        )
        assert len(claimed) == 1
        session.commit()
    clock.advance(POLICY.lease_s + 1)
    assert deliver_due(session_factory, http, owner="w", now=clock, policy=POLICY).claimed == 0
    [delivery] = _deliveries(session_factory)
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == POLICY.max_attempts
    assert delivery.last_error == ABANDONED_ERROR and delivery.lease_owner is None
    assert hook.received == []


def test_filters_pick_the_endings_each_webhook_hears_of(session_factory: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    _register(session_factory, "http://127.0.0.1:9/all", name="all")
    _register(session_factory, "http://127.0.0.1:9/f", name="failures", statuses=["FAILED", "REJECTED"])
    _register(session_factory, "http://127.0.0.1:9/s", name="spans", kinds=["spans"])
    _register(session_factory, "http://127.0.0.1:9/n", name="nightly", schedules=["nightly"])
    with session_factory() as session:
        ids = {
            "completed": ended_job(session, now=now),
            "rejected": ended_job(session, JobStatus.REJECTED, now=now),
            "spans": ended_job(session, JobStatus.CANCELLED_LOCALLY, now=now, kind=ImportKind.SPANS),
            "nightly": ended_job(session, JobStatus.EXPIRED, now=now, origin="schedule:nightly"),
            "other-schedule": ended_job(session, JobStatus.FAILED, now=now, origin="schedule:hourly"),
        }
        running = new_job(session, now=now)  # started, not ended: nobody hears of it
        end_job(running, JobStatus.RUNNING, now=now)
        session.commit()
        views = recent_deliveries(session, limit=100)
    heard: dict[str, set[str]] = {}
    for view in views:
        heard.setdefault(view.webhook, set()).add(view.job_id)
    assert heard["all"] == set(ids.values())
    assert heard["failures"] == {ids["rejected"], ids["other-schedule"]}
    assert heard["spans"] == {ids["spans"]}
    assert heard["nightly"] == {ids["nightly"]}
    assert running.id not in heard["all"]


def test_slack_format_is_a_signed_text_message(
    session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    _register(session_factory, hook.url, format=WebhookFormat.SLACK)
    clock = Clock()
    with session_factory() as session:
        job_id = ended_job(session, JobStatus.FAILED, now=clock(), origin="schedule:nightly")
        session.commit()
    policy = DeliveryPolicy(timeout_s=0.5, jobs_page_url="https://jobs.example/")
    deliver_due(session_factory, http, owner="w", now=clock, policy=policy)
    [request] = hook.received
    assert signature_verifies(SECRET, request)
    document = body_of(request)
    assert set(document) == {"text"}
    assert f"<https://jobs.example/jobs/{job_id}|{job_id}>" in document["text"]
    assert "*FAILED*" in document["text"] and "schedule `nightly`" in document["text"]


def test_two_deliverers_at_once_send_each_delivery_once(
    session_factory: sessionmaker[Session], hook: Receiver
) -> None:
    hook.plan = lambda _n: Reply(200, delay_s=0.01)
    _register(session_factory, hook.url)
    clock = Clock()
    with session_factory() as session:
        for _ in range(40):
            ended_job(session, now=clock())
        session.commit()
    policy = DeliveryPolicy(timeout_s=2.0, batch_size=5)
    reports = []
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        try:
            with httpx.Client() as client:
                reports.append(deliver_due(session_factory, client, owner=owner, now=clock, policy=policy))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"d{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    ids = [request.headers["Dsimport-Webhook-Id"] for request in hook.received]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(report.claimed > 0 for report in reports), "both deliverers took a share"
    assert all(d.status is DeliveryStatus.DELIVERED for d in _deliveries(session_factory))


_END_AND_DIE = """
import os, signal, sys
from datetime import UTC, datetime
from store.db import make_engine, make_session_factory
from store.models import JobStatus
from tests.webhooks.helpers import ended_job

sessions = make_session_factory(make_engine(sys.argv[1]))
with sessions() as session:
    job_id = ended_job(session, JobStatus.LOST, now=datetime.now(UTC))
    session.commit()
print(job_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # right after the commit, before anything could be sent
"""


def test_a_process_killed_right_after_the_commit_loses_no_ending(
    database_url: str, session_factory: sessionmaker[Session], hook: Receiver, http: httpx.Client
) -> None:
    _register(session_factory, hook.url)
    repo = Path(__file__).resolve().parents[2]
    died = subprocess.run(
        [sys.executable, "-c", _END_AND_DIE, database_url],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    job_id = died.stdout.strip()
    assert deliver_due(session_factory, http, owner="survivor", now=Clock(), policy=POLICY).delivered == 1
    [request] = hook.received
    assert signature_verifies(SECRET, request) and body_of(request)["job"]["id"] == job_id


def test_the_backoff_doubles_from_its_base_with_jitter_down_to_half_and_stops_at_its_cap() -> None:
    policy = DeliveryPolicy(backoff_base_s=2.0, backoff_max_s=60.0)
    rng = random.Random(5)
    for attempts, full_s in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (30, 60.0)]:
        waits = [next_attempt_in_s(policy, attempts, rng) for _ in range(200)]
        assert full_s * 0.5 <= min(waits) and max(waits) <= full_s
        assert max(waits) - min(waits) > full_s * 0.3  # jittered, not one value
