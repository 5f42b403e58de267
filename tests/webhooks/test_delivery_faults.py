"""A seeded fault campaign on the outbox: receivers that fail, throttle and time out, deliverers that die between
the POST and its record, endings rolled back; an independent checker then holds the guarantee up to the ledger.

The checker reads the endings from ``import_jobs`` with plain SQL (not the outbox) and the signatures with plain
``hmac`` (not :mod:`notifications.signing`): every committed ending reached every webhook at least once, answered
2xx on time and signed; no rolled-back ending reached anyone. A failing seed replays with ``-k "seed-N"``.
"""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from notifications.deliver import DeliveryPolicy, deliver_due
from store.models import JobStatus
from store.webhook_models import WebhookFormat
from store.webhook_outbox import claim_due
from store.webhooks import add_webhook
from tests.webhooks.helpers import end_job, new_job, signature_verifies
from tests.webhooks.receiver import Receiver, Reply, receiver

SECRETS = {"json": "whsec-json-0123456789abcdef", "slack": "whsec-slack-0123456789abcdef"}
ENDINGS = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.EXPIRED, JobStatus.LOST]
POLICY = DeliveryPolicy(timeout_s=0.25, backoff_base_s=1.0, max_attempts=30, lease_s=10.0, batch_size=7)


class Clock:
    """The deliverers' clock, moved on between rounds so backoffs and leases pass without waiting."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.at

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.at += timedelta(seconds=seconds)


def _faulty(rng: random.Random, lock: threading.Lock) -> Reply:
    with lock:
        roll = rng.random()
    if roll < 0.55:
        return Reply(200)
    if roll < 0.70:
        return Reply(500)
    if roll < 0.78:
        return Reply(429)
    if roll < 0.85:
        return Reply(404)
    if roll < 0.93:
        return Reply(200, delay_s=POLICY.timeout_s * 2)  # answered, but after the sender stopped waiting
    return Reply(503, delay_s=POLICY.timeout_s * 2)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def _end_jobs(sessions: sessionmaker[Session], rng: random.Random, clock: Clock) -> tuple[set[str], set[str]]:
    """Endings in small transactions, some rolled back; returns the ids committed and the ids rolled back."""
    committed: set[str] = set()
    rolled_back: set[str] = set()
    for _ in range(8):
        with sessions() as session:
            jobs = [new_job(session, now=clock()) for _ in range(rng.randint(1, 5))]
            session.commit()
            for job in jobs:
                end_job(job, rng.choice(ENDINGS), now=clock())
            ids = {job.id for job in jobs}
            if rng.random() < 0.25:
                session.rollback()
                rolled_back |= ids
            else:
                session.commit()
                committed |= ids
    return committed, rolled_back


def _die_mid_delivery(sessions: sessionmaker[Session], http: httpx.Client, clock: Clock, rng: random.Random) -> None:
    """A deliverer that claims a few rows, POSTs some of them, and dies before recording anything."""
    with sessions() as session:
        claimed = claim_due(session, owner="doomed", now=clock(), lease_s=POLICY.lease_s, limit=rng.randint(1, 4))
        session.commit()
    for delivery in claimed[: rng.randint(0, len(claimed))]:
        try:
            http.post(delivery.url, content=b"{}", timeout=POLICY.timeout_s)  # unsigned junk: must not count
        except httpx.HTTPError:
            pass


@pytest.mark.parametrize("seed", [1, 2, 3], ids=lambda seed: f"seed-{seed}")
def test_every_committed_ending_reaches_every_webhook_at_least_once(
    seed: int, session_factory: sessionmaker[Session], hook: Receiver
) -> None:
    rng = random.Random(seed)
    receiver_rng, receiver_lock = random.Random(seed * 7919), threading.Lock()
    hook.plan = lambda _n: _faulty(receiver_rng, receiver_lock)
    clock = Clock()
    with session_factory() as session:
        for name, secret in SECRETS.items():
            add_webhook(
                session, name=name, url=f"{hook.url}/{name}", secret=secret, format=WebhookFormat(name), now=clock()
            )
        session.commit()
    committed, rolled_back = _end_jobs(session_factory, rng, clock)
    assert committed and rolled_back, f"seed {seed} exercises both"

    with httpx.Client() as http:
        for round_number in range(40):
            if rng.random() < 0.3:
                _die_mid_delivery(session_factory, http, clock, rng)
            threads = [
                threading.Thread(
                    target=deliver_due,
                    args=(session_factory, http),
                    kwargs={"owner": f"d{round_number}-{n}", "now": clock, "policy": POLICY},
                )
                for n in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            with session_factory() as session:
                pending = session.scalar(text("SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"))
            if not pending:
                break
            clock.advance(POLICY.lease_s + 1)  # past every backoff so far, and past a dead deliverer's lease
    assert pending == 0, f"seed {seed}: {pending} deliveries not delivered after {round_number + 1} rounds"

    # The independent checker.
    with session_factory() as session:
        ended = set(session.scalars(text("SELECT id FROM import_jobs WHERE finished_at IS NOT NULL")))
    assert ended == committed
    heard: dict[str, set[str]] = defaultdict(set)
    for request in hook.received:
        name = request.path.rsplit("/", 1)[-1]
        if request.answered != 200 or request.delayed_s or not signature_verifies(SECRETS[name], request):
            continue
        document = json.loads(request.body)
        if name == "json":
            heard[name].add(document["job"]["id"])
        else:
            heard[name] |= {job_id for job_id in committed | rolled_back if job_id in document["text"]}
    for name in SECRETS:
        assert heard[name] == committed, f"seed {seed}: webhook {name} missed {sorted(committed - heard[name])}"
    faults = sum(1 for request in hook.received if request.answered != 200 or request.delayed_s)
    assert faults > 0, f"seed {seed} injected no fault"
