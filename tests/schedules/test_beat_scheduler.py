"""The beat scheduler in process: what it sends, and when, as schedules change under it (both ledgers).

The clock is driven by the test and sending is recorded; the two-beat test with real processes is in
test_beat_integration.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from store.schedules import remove_schedule, set_paused
from triggers.schedules.fire_times import Timing
from worker.beat_scheduler import LedgerScheduler, ScheduleCursor, due_fire
from worker.celery_app import create_app
from worker.settings import Settings

from .conftest import CAMPAIGN, NOW, TARGET, Clock, at
from .test_definitions import EXAMPLE

Sent = list[tuple[str, datetime]]


class RecordingScheduler(LedgerScheduler):
    """Records the fires it would send; ``fail_sends`` makes the broker look down."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: Sent = []
        self.fail_sends = False
        super().__init__(*args, **kwargs)

    def _send(self, name: str, fire_time: datetime) -> bool:
        if self.fail_sends:
            return False
        self.sent.append((name, fire_time))
        return True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("worker.beat_scheduler._utcnow", clock)
    return clock


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Celery]:
    (tmp_path / "schedules.toml").write_text("")
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        broker_url="redis://127.0.0.1:1/4",  # never reached: the scheduler under test records its sends
        schedules_file=tmp_path / "schedules.toml",
        schedules_refresh_s=60,
    )
    app = create_app(settings)
    app.started = []
    yield app
    for scheduler in app.started:
        scheduler.close()
    app.close()


def start(app: Celery) -> RecordingScheduler:
    scheduler = RecordingScheduler(app=app)
    app.started.append(scheduler)
    return scheduler


def add(sessions: sessionmaker[Session], clock: Clock, name: str, every: str) -> None:
    from store.models import ScheduleSource
    from store.schedules import create_schedule
    from triggers.schedules.specs import build_definition

    definition = build_definition(name, kind="campaign", dataset=TARGET, every=every, options={"campaign": CAMPAIGN})
    with sessions() as session:
        create_schedule(session, definition, source=ScheduleSource.CLI, now=clock())
        session.commit()


def step(scheduler: RecordingScheduler, clock: Clock, seconds: float) -> Sent:
    """Advance the clock, let the scheduler fire, and return what it sent meanwhile."""
    before = len(scheduler.sent)
    clock.now += timedelta(seconds=seconds)
    scheduler._fire_due()
    return scheduler.sent[before:]


def test_due_fire_sends_only_the_latest_missed_fire() -> None:
    cursor = ScheduleCursor("s", Timing.parse(every="1m"), active=True, last_sent=NOW)
    assert due_fire(cursor, at(59)) is None
    assert due_fire(cursor, at(60)) == at(60)
    assert due_fire(cursor, at(301)) == at(300)  # after an outage: one catch-up fire, the latest
    cursor.active = False
    assert due_fire(cursor, at(301)) is None


def test_static_entries_are_kept_next_to_the_table(app: Celery, clock: Clock) -> None:
    scheduler = start(app)
    assert {"poll-due-jobs", "recover-jobs"} <= set(scheduler.schedule)
    assert "schedules table re-read every 60 s" in scheduler.info


def test_add_pause_resume_remove_at_run_time(
    app: Celery, clock: Clock, session_factory: sessionmaker[Session]
) -> None:
    scheduler = start(app)
    assert step(scheduler, clock, 120) == []

    add(session_factory, clock, "every-minute", "1m")  # created at 12:02:00
    assert step(scheduler, clock, 65) == []  # not re-read yet
    scheduler.refresh()
    assert scheduler._fire_due() < 60
    assert scheduler.sent == [("every-minute", at(180))]  # 12:03, the one fire since it was created
    assert step(scheduler, clock, 60) == [("every-minute", at(240))]

    with session_factory() as session:
        set_paused(session, "every-minute", True, now=clock())
        session.commit()
    scheduler.refresh()
    assert step(scheduler, clock, 60) == []
    assert step(scheduler, clock, 60) == []

    with session_factory() as session:
        set_paused(session, "every-minute", False, now=clock())
        session.commit()
    scheduler.refresh()
    assert step(scheduler, clock, 1) == []  # no catch-up of the fires missed while paused
    assert step(scheduler, clock, 59) == [("every-minute", at(420))]

    with session_factory() as session:
        remove_schedule(session, "every-minute", now=clock())
        session.commit()
    scheduler.refresh()
    assert step(scheduler, clock, 600) == []


def test_a_timing_change_is_picked_up(app: Celery, clock: Clock, session_factory: sessionmaker[Session]) -> None:
    add(session_factory, clock, "s", "1h")
    scheduler = start(app)
    assert step(scheduler, clock, 60) == []
    with session_factory() as session:
        from store.schedules import require_schedule

        require_schedule(session, "s").every_s = 60
        session.commit()
    scheduler.refresh()
    assert step(scheduler, clock, 60) == [("s", at(120))]


def test_two_schedulers_and_a_restart_name_the_same_fires(
    app: Celery, clock: Clock, session_factory: sessionmaker[Session]
) -> None:
    clock.now = at(17)
    add(session_factory, clock, "s", "10s")
    one, two = start(app), start(app)
    for _ in range(7):
        clock.now += timedelta(seconds=3.3)
        one._fire_due()
        two._fire_due()
    assert one.sent == two.sent == [("s", at(20)), ("s", at(30)), ("s", at(40))]

    # The task records each fire as the schedule's last fire; a restarted beat starts from there.
    with session_factory() as session:
        from store.schedules import require_schedule

        require_schedule(session, "s").last_fire_at = at(40)
        session.commit()
    clock.now = at(45)
    restarted = start(app)
    assert restarted._fire_due() == pytest.approx(5, abs=0.01)
    assert restarted.sent == []
    # Down for a while: one catch-up fire, the latest, then on schedule again.
    assert step(restarted, clock, 100) == [("s", at(140))]
    assert step(restarted, clock, 10) == [("s", at(150))]


def test_a_fire_that_could_not_be_sent_is_sent_at_the_next_tick(
    app: Celery, clock: Clock, session_factory: sessionmaker[Session]
) -> None:
    add(session_factory, clock, "s", "1m")
    scheduler = start(app)
    scheduler.fail_sends = True
    assert step(scheduler, clock, 60) == []
    assert scheduler._fire_due() <= 1.0
    scheduler.fail_sends = False
    assert step(scheduler, clock, 1) == [("s", at(60))]


def test_the_schedules_file_is_synced_at_start_and_on_change(
    app: Celery, clock: Clock, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    (tmp_path / "schedules.toml").write_text(EXAMPLE)
    scheduler = start(app)
    assert set(scheduler._cursors) == {"hourly-review", "support-events", "review-when-done", "mirror"}
    assert scheduler._cursors["mirror"].active is False  # paused = true in the file
    (tmp_path / "schedules.toml").write_text(EXAMPLE.replace("[schedules.hourly-review]", "[schedules.renamed]"))
    scheduler.refresh()
    assert "renamed" in scheduler._cursors and "hourly-review" not in scheduler._cursors
    # A broken edit is logged and changes nothing.
    (tmp_path / "schedules.toml").write_text("[schedules.x\n")
    scheduler.refresh()
    assert "renamed" in scheduler._cursors
