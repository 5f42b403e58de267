"""Retention on both ledgers: what the prune deletes, what it never deletes, dry runs, batches, and keys forgotten."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_engine, make_session_factory
from store.dead_letters import mark_retried, record_dead_letter
from store.jobs import begin_submit, create_job, get_job_by_key
from store.models import (
    DeadLetter,
    ImportJob,
    ImportKind,
    JobEvent,
    JobStatus,
    Schedule,
    ScheduleItem,
    ScheduleSource,
)
from store.retention import ITEM_WATERMARK_MARGIN, PruneCounts, count_prunable, prune
from store.schedule_items import give_up_items
from store.schedules import add_items, create_schedule
from store.state_machine import apply_transition
from triggers.schedules.specs import build_definition

from .conftest import NOW, add_job

DAY = 86_400.0
THIRTY_DAYS = 30 * DAY
LONG_AGO = NOW - timedelta(days=60)
RECENTLY = NOW - timedelta(days=2)
TARGET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
SOURCE = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"


def finished_job(session: Session, key: str, *, created: datetime, finished: datetime) -> ImportJob:
    """A job that went PENDING -> SUBMITTING -> FAILED: three events."""
    job = add_job(session, key, now=created)
    submitting = begin_submit(session, job.id, owner="w", now=created, lease_s=30)
    assert submitting is not None
    apply_transition(submitting, JobStatus.FAILED, now=finished, message="boom")
    return submitting


def counts(session: Session) -> dict[str, int]:
    def rows(model: type) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "jobs": rows(ImportJob),
        "job_events": rows(JobEvent),
        "dead_letters": rows(DeadLetter),
        "schedule_items": rows(ScheduleItem),
    }


def test_old_finished_jobs_go_with_their_events_and_nothing_else(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        old = finished_job(session, "old", created=LONG_AGO, finished=LONG_AGO + timedelta(hours=1))
        # Finished recently, though created long ago: within the window, kept.
        finished_job(session, "late", created=LONG_AGO, finished=RECENTLY)
        finished_job(session, "recent", created=RECENTLY, finished=RECENTLY)
        # Not terminal, however old: never deleted.
        add_job(session, "old-pending", now=LONG_AGO)
        stuck = add_job(session, "old-submitting", now=LONG_AGO)
        assert begin_submit(session, stuck.id, owner="w", now=LONG_AGO, lease_s=30) is not None
        old_id = old.id
        session.commit()

    result = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)

    assert result.complete
    assert result.counts == PruneCounts(jobs=1, job_events=3, dead_letters=0, schedule_items=0)
    with session_factory() as session:
        kept = {job.idempotency_key: job.status for job in session.scalars(select(ImportJob))}
        assert kept == {
            "late": JobStatus.FAILED,
            "recent": JobStatus.FAILED,
            "old-pending": JobStatus.PENDING,
            "old-submitting": JobStatus.SUBMITTING,
        }
        assert session.scalar(select(func.count()).where(JobEvent.job_id == old_id)) == 0


def test_a_dry_run_counts_exactly_what_the_prune_then_deletes(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for n in range(4):
            finished_job(session, f"old-{n}", created=LONG_AGO, finished=LONG_AGO)
        finished_job(session, "recent", created=RECENTLY, finished=RECENTLY)
        session.commit()
        before = counts(session)

    dry = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW, dry_run=True)
    with session_factory() as session:
        assert counts(session) == before
    real = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)
    assert dry.counts == real.counts == PruneCounts(jobs=4, job_events=12)
    with session_factory() as session:
        assert counts(session) == {"jobs": 1, "job_events": 3, "dead_letters": 0, "schedule_items": 0}


def test_the_prune_works_in_batches_and_stops_at_its_time_budget(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for n in range(10):
            finished_job(session, f"old-{n}", created=LONG_AGO, finished=LONG_AGO)
        session.commit()
    ticks = iter(range(100))
    first = prune(
        session_factory, older_than_s=THIRTY_DAYS, now=NOW, batch_size=3, time_budget_s=1, clock=lambda: next(ticks)
    )
    # One batch, then the budget (one tick) was spent: the next run goes on.
    assert (first.counts.jobs, first.complete) == (3, False)
    pauses: list[float] = []
    rest = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW, batch_size=3, pause_s=0.01, sleep=pauses.append)
    assert (rest.counts.jobs, rest.complete) == (7, True)
    assert pauses == [0.01, 0.01]  # between the three full batches, not after the last one
    with session_factory() as session:
        assert counts(session)["jobs"] == 0


def test_only_resolved_dead_letters_go(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        retry_job = add_job(session, "retried", now=LONG_AGO)

        def letter(entry: str, received: datetime) -> DeadLetter:
            row, _ = record_dead_letter(
                session, stream="s", entry_id=entry, body=b"{}", reason="bad", message_id=None, now=received
            )
            return row

        mark_retried(session, letter("1-0", LONG_AGO), job_id=retry_job.id, now=LONG_AGO)
        letter("2-0", LONG_AGO)  # never resolved: someone still has to look at it
        mark_retried(session, letter("3-0", LONG_AGO), job_id=retry_job.id, now=RECENTLY)  # resolved recently
        session.commit()

    result = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)

    assert result.counts.dead_letters == 1
    with session_factory() as session:
        assert sorted(letter.entry_id or "" for letter in session.scalars(select(DeadLetter))) == ["2-0", "3-0"]


def test_a_kept_dead_letter_loses_only_its_link_to_a_pruned_job(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        job = finished_job(session, "old", created=LONG_AGO, finished=LONG_AGO)
        row, _ = record_dead_letter(
            session, stream="s", entry_id="1-0", body=b"{}", reason="bad", message_id=None, now=LONG_AGO
        )
        mark_retried(session, row, job_id=job.id, now=RECENTLY)
        session.commit()
    assert prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW).counts.jobs == 1
    with session_factory() as session:
        [kept] = session.scalars(select(DeadLetter))
        assert (kept.retried_at is not None, kept.retried_job_id) == (True, None)


def add_schedule(session: Session, name: str, kind: str, **options: object) -> Schedule:
    definition = build_definition(name, kind=kind, dataset=TARGET, every="1h", cron=None, options=options)
    return create_schedule(session, definition, source=ScheduleSource.CLI, now=LONG_AGO - timedelta(days=30))


def test_schedule_items_go_only_when_no_window_can_return_them(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        window = add_schedule(session, "win", "explorer-window", since=LONG_AGO.isoformat())
        spans = add_schedule(
            session, "spans", "spans-window", since=LONG_AGO.isoformat(), mapping="in=span_attributes:k"
        )
        copy = add_schedule(session, "copy", "dataset-copy", from_dataset=SOURCE)
        window.watermark = spans.watermark = NOW - timedelta(hours=1)
        copy.watermark = NOW - timedelta(hours=1)
        job = add_job(session, "chunk", now=LONG_AGO)
        add_items(session, window.id, job.id, ["evt-old-1", "evt-old-2"], now=LONG_AGO)
        add_items(session, window.id, job.id, ["evt-recent"], now=RECENTLY)
        add_items(session, spans.id, job.id, ["trace-old:span"], now=LONG_AGO)
        add_items(session, spans.id, job.id, ["trace-recent:span"], now=RECENTLY)
        # Dataset-copy lists the whole source every fire: a forgotten record id would be copied again.
        add_items(session, copy.id, job.id, ["rec-old"], now=LONG_AGO)
        session.commit()

    result = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)

    assert result.counts.schedule_items == 3
    with session_factory() as session:
        left = sorted(session.scalars(select(ScheduleItem.item_id)))
        assert left == ["evt-recent", "rec-old", "trace-recent:span"]


def test_a_failed_chunk_waiting_for_its_retry_keeps_its_job_and_items(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        window = add_schedule(session, "win", "explorer-window", since=LONG_AGO.isoformat())
        window.watermark = NOW - timedelta(hours=1)
        failed = finished_job(session, "schedule:win:chunk", created=LONG_AGO, finished=LONG_AGO)
        add_items(session, window.id, failed.id, ["evt-1", "evt-2"], now=LONG_AGO)
        schedule_id, failed_id = window.id, failed.id
        session.commit()
    # The schedule was paused since: nothing retried the chunk or gave it up, so its next fire needs both.
    assert prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW).counts == PruneCounts()
    with session_factory() as session:
        give_up_items(session, schedule_id, ["evt-1", "evt-2"], now=RECENTLY)
        session.commit()
    result = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)
    assert (result.counts.jobs, result.counts.schedule_items) == (1, 2)
    with session_factory() as session:
        assert session.get(ImportJob, failed_id) is None


def test_items_near_the_watermark_are_kept_however_old(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        window = add_schedule(session, "win", "explorer-window", since=LONG_AGO.isoformat())
        # A schedule that has not advanced for long: its watermark is itself old.
        window.watermark = LONG_AGO
        job = add_job(session, "chunk", now=LONG_AGO)
        add_items(session, window.id, job.id, ["below"], now=LONG_AGO - ITEM_WATERMARK_MARGIN - timedelta(hours=1))
        add_items(session, window.id, job.id, ["near"], now=LONG_AGO - timedelta(hours=1))
        session.commit()
    dry = prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW, dry_run=True)
    assert dry.counts.schedule_items == 1
    prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)
    with session_factory() as session:
        assert list(session.scalars(select(ScheduleItem.item_id))) == ["near"]


def test_items_of_a_schedule_that_is_gone_go(sqlite_database_url: str) -> None:
    engine = make_engine(sqlite_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            kept = add_schedule(session, "kept", "dataset-copy", from_dataset=SOURCE)
            job = add_job(session, "chunk", now=RECENTLY)
            add_items(session, kept.id, job.id, ["rec-1"], now=RECENTLY)
            session.commit()
            kept_id = kept.id
        # A schedule deleted by a connection without foreign keys (ON DELETE CASCADE did not run): its items stay.
        raw = sqlite3.connect(sqlite_database_url.removeprefix("sqlite:///"))
        with raw:
            raw.execute("PRAGMA foreign_keys = OFF")
            raw.executemany(
                "INSERT INTO schedule_items (schedule_id, item_id, job_id, added_at) VALUES (?, ?, ?, ?)",
                [("gone-a", "x-1", "j", "2026-01-01 00:00:00"), ("gone-a", "x-2", "j", "2026-01-01 00:00:00"),
                 ("gone-b", "x-1", "j", "2026-01-01 00:00:00")],
            )  # fmt: skip
        raw.close()
        result = prune(sessions, older_than_s=THIRTY_DAYS, now=NOW)
        assert result.counts.schedule_items == 3
        with sessions() as session:
            assert list(session.execute(select(ScheduleItem.schedule_id, ScheduleItem.item_id))) == [(kept_id, "rec-1")]
    finally:
        engine.dispose()


def test_after_the_prune_the_same_key_is_a_new_request(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        first = finished_job(session, "message:order-42", created=LONG_AGO, finished=LONG_AGO)
        first_id = first.id
        session.commit()
    prune(session_factory, older_than_s=THIRTY_DAYS, now=NOW)
    with session_factory() as session:
        assert get_job_by_key(session, "message:order-42") is None
        again, created = create_job(
            session,
            kind=ImportKind.CAMPAIGN,
            dataset_id="ds-1",
            params={"campaign_id": "c-1"},
            idempotency_key="message:order-42",
            origin="test",
            deadline_at=None,
            now=NOW,
        )
        assert created and again.id != first_id


def test_a_retention_shorter_than_a_day_is_refused(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="shorter than one day"):
        prune(session_factory, older_than_s=DAY - 1, now=NOW)
    with session_factory() as session:
        assert count_prunable(session, cutoff=NOW) == PruneCounts()
