"""The message intake on a SQLite ledger whose write lock another connection holds past the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from store.db import make_engine, make_session_factory
from store.jobs import get_job_by_key
from store.lock_retry import DatabaseLockedError
from triggers.messages.intake import Intake, Outcome

from .conftest import Sent

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"


def body(message_id: str) -> bytes:
    return (
        f'{{"id": "{message_id}", "kind": "campaign", "dataset_id": "{DATASET}", "campaign_id": "{CAMPAIGN}"}}'
    ).encode()


def intake_on(url: str, sent: Sent, *, locked_retry_s: float) -> Intake:
    engine = make_engine(url, busy_timeout_s=0.1, locked_retry_s=locked_retry_s)
    return Intake(session_factory=make_session_factory(engine), send=sent, deadline_s=3600.0)


@pytest.mark.timeout(30)
def test_a_message_waits_for_the_lock_and_becomes_a_job(sqlite_database_url: str, sent: Sent) -> None:
    intake = intake_on(sqlite_database_url, sent, locked_retry_s=20)
    path = sqlite_database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(1.0, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    try:
        result = intake.accept(body("m-1"), source="stream:s", entry_id="1-0")
    finally:
        intake.session_factory.kw["bind"].dispose()
    assert time.monotonic() - started >= 0.95  # ten busy timeouts
    holder.close()
    assert result.outcome is Outcome.CREATED and sent.job_ids == [result.job_id]


@pytest.mark.timeout(30)
def test_past_the_bound_the_message_is_left_for_a_retry(sqlite_database_url: str, sent: Sent) -> None:
    intake = intake_on(sqlite_database_url, sent, locked_retry_s=0.5)
    holder = sqlite3.connect(sqlite_database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # The stream consumer leaves the entry pending on any error here: it is claimed and processed again.
        with pytest.raises(DatabaseLockedError):
            intake.accept(body("m-2"), source="stream:s", entry_id="2-0")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        with intake.session_factory() as session:
            assert get_job_by_key(session, "message:m-2") is None
    finally:
        intake.session_factory.kw["bind"].dispose()
    assert sent.job_ids == []
