"""Leases and due polls on the database's clock: a worker whose own clock is off by ±30 s changes nothing.

Each test plays two workers on one ledger: each passes its own clock (the real time shifted by its skew) as ``now``,
as the tasks do, and the sessions run on the database's clock (``use_database_clock``, as the worker's runtime).
On PostgreSQL that is the server's ``clock_timestamp()``, on SQLite the host's clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from store.clock import LedgerClock, database_now, use_database_clock
from store.jobs import get_job, overdue_jobs, stale_jobs
from store.leases import acquire_lease, begin_submit, claim_due_jobs
from store.models import ImportKind, JobStatus, ScheduleKind, ScheduleSource
from store.schedule_runs import claim_run
from store.schedules import ScheduleDefinition, create_schedule

from .conftest import add_job, add_running_job

Factory = sessionmaker[Session]
SKEW_S = 30.0
LEASE_S = 5.0
# How far a reading may be from the real time: the test's own steps on a busy 2-core machine.
SLACK = timedelta(seconds=2)
# (skew of the worker that takes the lease, skew of the worker that then tries to take it too)
PAIRS = [(0.0, SKEW_S), (SKEW_S, 0.0), (0.0, -SKEW_S), (-SKEW_S, 0.0)]
PAIR_IDS = ["normal-holds-fast-tries", "fast-holds-normal-tries", "normal-holds-slow-tries", "slow-holds-normal-tries"]


def clock(skew_s: float) -> datetime:
    """A worker's own clock: the real time, off by ``skew_s``."""
    return datetime.now(UTC) + timedelta(seconds=skew_s)


@pytest.fixture
def ledger(session_factory: Factory) -> Factory:
    """Sessions on the same database that run their leases on the database's clock, as the worker's do."""
    return use_database_clock(sessionmaker(**session_factory.kw))


def assert_near_real_time(value: datetime | None, *, plus_s: float) -> None:
    assert value is not None
    expected = datetime.now(UTC) + timedelta(seconds=plus_s)
    assert expected - SLACK - timedelta(seconds=LEASE_S) <= value <= expected + SLACK, (value, expected)


@pytest.mark.parametrize(("holder_skew", "taker_skew"), PAIRS, ids=PAIR_IDS)
def test_a_poll_lease_is_not_taken_by_a_worker_whose_clock_is_off(
    ledger: Factory, holder_skew: float, taker_skew: float
) -> None:
    with ledger() as session:
        job = add_running_job(session, "a", next_poll_at=clock(-1))
        session.commit()
    with ledger() as session:
        [held] = claim_due_jobs(session, owner="holder", now=clock(holder_skew), lease_s=LEASE_S, limit=10)
        session.commit()
        # Granted for LEASE_S of real time, whatever the holder's clock says.
        assert_near_real_time(held.lease_expires_at, plus_s=LEASE_S)
    with ledger() as session:
        assert claim_due_jobs(session, owner="taker", now=clock(taker_skew), lease_s=LEASE_S, limit=10) == []
        loaded = get_job(session, job.id)
        assert loaded is not None and loaded.lease_owner == "holder"


@pytest.mark.parametrize(("holder_skew", "taker_skew"), PAIRS, ids=PAIR_IDS)
def test_a_submit_lease_is_not_recovered_by_a_worker_whose_clock_is_off(
    ledger: Factory, holder_skew: float, taker_skew: float
) -> None:
    with ledger() as session:
        job = add_job(session, "a", deadline_at=clock(-60))
        session.commit()
    with ledger() as session:
        submitting = begin_submit(session, job.id, owner="submitter", now=clock(holder_skew), lease_s=LEASE_S)
        assert submitting is not None
        session.commit()
        assert_near_real_time(submitting.lease_expires_at, plus_s=LEASE_S)
        # Recovery looks for the remote task from this moment: it must be the real one, not the holder's.
        assert_near_real_time(submitting.submit_started_at, plus_s=0)
    with ledger() as session:
        now = clock(taker_skew)
        assert stale_jobs(session, status=JobStatus.SUBMITTING, older_than=now, limit=10) == []
        assert overdue_jobs(session, now=now, limit=10) == []
        assert (
            acquire_lease(session, job.id, status=JobStatus.SUBMITTING, owner="sweeper", now=now, lease_s=LEASE_S)
            is None
        )


def test_a_worker_whose_clock_runs_ahead_does_not_poll_early(ledger: Factory) -> None:
    with ledger() as session:
        add_running_job(session, "later", next_poll_at=clock(10))
        session.commit()
    with ledger() as session:
        assert claim_due_jobs(session, owner="fast", now=clock(SKEW_S), lease_s=LEASE_S, limit=10) == []


def test_a_worker_whose_clock_runs_behind_still_polls_what_is_due(ledger: Factory) -> None:
    with ledger() as session:
        due = add_running_job(session, "due", next_poll_at=clock(-1))
        session.commit()
    with ledger() as session:
        claimed = claim_due_jobs(session, owner="slow", now=clock(-SKEW_S), lease_s=LEASE_S, limit=10)
        assert [job.id for job in claimed] == [due.id]


def test_a_lease_still_ends_after_its_length_of_real_time(ledger: Factory) -> None:
    with ledger() as session:
        add_running_job(session, "a", next_poll_at=clock(-1))
        session.commit()
    with ledger() as session:
        assert len(claim_due_jobs(session, owner="fast", now=clock(SKEW_S), lease_s=0.5, limit=10)) == 1
        session.commit()
    time.sleep(0.8)
    with ledger() as session:
        taken = claim_due_jobs(session, owner="slow", now=clock(-SKEW_S), lease_s=LEASE_S, limit=10)
        assert [job.lease_owner for job in taken] == ["slow"]


@pytest.mark.parametrize(("holder_skew", "taker_skew"), PAIRS, ids=PAIR_IDS)
def test_a_schedule_run_is_not_taken_over_by_a_worker_whose_clock_is_off(
    ledger: Factory, holder_skew: float, taker_skew: float
) -> None:
    definition = ScheduleDefinition(
        name="hourly",
        kind=ScheduleKind.PLAIN,
        import_kind=ImportKind.CAMPAIGN,
        dataset_id="ds-1",
        params={"campaign_id": "c-1"},
        every_s=3600,
    )
    fire_time = clock(0).replace(microsecond=0)
    with ledger() as session:
        schedule = create_schedule(session, definition, source=ScheduleSource.CLI, now=clock(0))
        held = claim_run(
            session, schedule, fire_time, trigger="beat", owner="holder", now=clock(holder_skew), lease_s=LEASE_S
        )
        assert held.run is not None
        session.commit()
        assert_near_real_time(held.run.lease_expires_at, plus_s=LEASE_S)
    with ledger() as session:
        schedule = session.merge(schedule)
        second = claim_run(
            session, schedule, fire_time, trigger="beat", owner="taker", now=clock(taker_skew), lease_s=LEASE_S
        )
        assert second.run is None and not second.taken_over
        assert second.existing is not None and second.existing.owner == "holder"


def test_the_database_time_costs_one_query_per_transaction(ledger: Factory) -> None:
    with ledger() as session:
        queries: list[str] = []
        bind = session.connection().engine

        def record(conn: object, cursor: object, statement: str, *args: object) -> None:
            queries.append(statement)

        event.listen(bind, "before_cursor_execute", record)
        try:
            first = database_now(session)
            assert database_now(session) == first
            session.commit()
            time.sleep(0.01)
            assert database_now(session) > first
        finally:
            event.remove(bind, "before_cursor_execute", record)
        reads = [q for q in queries if "clock_timestamp" in q]
        expected = 2 if bind.dialect.name == "postgresql" else 0
        assert len(reads) == expected, queries


@pytest.mark.parametrize("skew_s", [SKEW_S, -SKEW_S])
def test_the_ledger_clock_reads_the_database_time_through_a_skewed_host_clock(
    ledger: Factory, session_factory: Factory, skew_s: float
) -> None:
    ledger_clock = LedgerClock(ledger, local=lambda: clock(skew_s))
    for _ in range(3):
        reading = ledger_clock()
        with ledger() as session:
            database = database_now(session)
        assert abs((reading - database).total_seconds()) < SLACK.total_seconds()
    # A factory that is not on the database's clock (tests driving time) gets the local clock as it is.
    unmarked = LedgerClock(session_factory, local=lambda: clock(skew_s))
    assert abs((unmarked() - clock(skew_s)).total_seconds()) < SLACK.total_seconds()


def test_the_ledger_clock_falls_back_to_the_last_offset_when_the_database_cannot_be_reached() -> None:
    from store.db import make_engine

    # Nothing listens on port 1: every connection is refused at once.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    try:
        ledger_clock = LedgerClock(
            use_database_clock(sessionmaker(bind=engine)), local=lambda: clock(SKEW_S), retry_s=60
        )
        started = time.monotonic()
        readings = [ledger_clock() for _ in range(3)]
        # No offset was ever measured: the local clock as it is, and one failed attempt, not one per reading.
        assert all(abs((r - clock(SKEW_S)).total_seconds()) < SLACK.total_seconds() for r in readings)
        assert time.monotonic() - started < 5
    finally:
        engine.dispose()
