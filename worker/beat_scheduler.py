"""A Celery beat scheduler that fires the schedules of the ledger's schedules table, next to the service's own
periodic entries (``beat_schedule`` in :mod:`worker.celery_app`).

- The table is re-read every ``schedules_refresh_s``: a schedule added, changed, paused, resumed or removed on the
  command line takes effect within that time, without restarting beat. The schedules file, when set, is synced
  into the table at start and whenever its content changes.
- Fire times come from :mod:`triggers.schedules.fire_times` (cron in UTC, periods aligned to the epoch), so any
  beat names the same fires. For each schedule beat keeps the last fire it sent (starting from the later of the
  schedule's last fire in the ledger and the moment it was created or resumed) and sends ``dsimport.fire_schedule``
  for the latest fire time that has passed since. After an outage that is one catch-up fire, not one per missed time.
- Beat only sends; the task claims the run in the ledger. Two beats by mistake (or a restart) send the same fire
  twice, and the second task finds the run already taken: nothing is imported twice.

A fire that cannot be sent (broker down) is sent again at the next tick. The scheduler keeps nothing on disk.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery.beat import Scheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_session_factory
from store.models import Schedule
from store.schedules import list_schedules
from tasks.names import FIRE_SCHEDULE
from triggers.schedules.fire_times import InvalidTiming, Timing, fire_time_iso
from triggers.schedules.schedule_file import FileWatcher
from triggers.schedules.specs import definition_timing
from worker.runtime_builder import ledger_engine
from worker.settings import Settings

__all__ = ["SETTINGS_CONF_KEY", "LedgerScheduler", "ScheduleCursor", "due_fire"]

log = logging.getLogger(__name__)

SETTINGS_CONF_KEY = "dsimport_settings"
# Never sleep so close to a fire time that the clock has not reached it yet when we wake.
_WAKE_MARGIN_S = 0.005
_RETRY_SEND_S = 1.0


@dataclass
class ScheduleCursor:
    """What beat knows of one schedule: its timing, whether it may fire, and the last fire time it sent."""

    name: str
    timing: Timing
    active: bool
    last_sent: datetime


def due_fire(cursor: ScheduleCursor, now: datetime) -> datetime | None:
    """The fire time to send now: the latest one at or before ``now`` and after the last one sent, if any."""
    if not cursor.active:
        return None
    latest = cursor.timing.latest_at_or_before(now)
    if latest is None or latest <= cursor.last_sent:
        return None
    return latest


def _starting_point(schedule: Schedule) -> datetime:
    # Never fire times before the schedule existed or while it was paused, and never again one already fired.
    if schedule.last_fire_at is not None and schedule.last_fire_at > schedule.fires_after:
        return schedule.last_fire_at
    return schedule.fires_after


class LedgerScheduler(Scheduler):  # type: ignore[misc]  # Celery ships no type hints
    """Beat scheduler for dsimport: the static entries of ``beat_schedule`` plus the ledger's schedules."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        settings = app.conf.get(SETTINGS_CONF_KEY)
        if not isinstance(settings, Settings):
            raise RuntimeError(f"the Celery app carries no dsimport settings under {SETTINGS_CONF_KEY!r}")
        self._settings: Settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._watcher = FileWatcher(settings.schedules_file) if settings.schedules_file is not None else None
        self._cursors: dict[str, ScheduleCursor] = {}
        self._next_refresh = 0.0
        self._file_error: str | None = None
        # Celery calls setup_schedule from here unless lazy; everything it needs is set above.
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self) -> None:
        super().setup_schedule()  # the service's own periodic entries, from app.conf.beat_schedule
        self._engine = ledger_engine(self._settings)
        self._sessions = make_session_factory(self._engine)
        self.refresh()

    @property
    def refresh_interval_s(self) -> float:
        return self._settings.schedules_refresh_s

    def refresh(self) -> None:
        """Sync the schedules file if it changed, then re-read the schedules table."""
        self._next_refresh = time.monotonic() + self.refresh_interval_s
        if self._sessions is None:
            return
        if self._watcher is not None:
            try:
                self._watcher.sync(self._sessions, now=_utcnow)
                self._file_error = None
            except Exception as exc:  # a bad edit must not stop the other schedules: keep the table as it is
                # Said once per distinct problem, not at every refresh.
                if str(exc) != self._file_error:
                    log.error("schedules file not applied: %s", exc)
                self._file_error = str(exc)
        try:
            with self._sessions() as session:
                rows = [
                    (schedule.name, schedule.cron, schedule.every_s, _may_fire(schedule), _starting_point(schedule))
                    for schedule in list_schedules(session)
                ]
        except Exception as exc:  # the database may be down for a moment: keep firing what we know
            log.error("cannot read the schedules table (%s); keeping the schedules loaded before", exc)
            return
        self._apply(rows)

    def _apply(self, rows: list[tuple[str, str | None, int | None, bool, datetime]]) -> None:
        now = _utcnow()
        cursors: dict[str, ScheduleCursor] = {}
        for name, cron, every_s, active, start in rows:
            try:
                timing = definition_timing(cron, every_s)
            except InvalidTiming as exc:
                log.error("schedule %s has an invalid timing and is skipped: %s", name, exc)
                continue
            known = self._cursors.get(name)
            last_sent = start if known is None else max(known.last_sent, start)
            if not active:
                # A paused schedule's fires pass by unsent; resuming moves the starting point to the resume anyway.
                last_sent = max(last_sent, now)
            cursors[name] = ScheduleCursor(name=name, timing=timing, active=active, last_sent=last_sent)
            if known is None:
                log.info("schedule %s loaded: %s, %s", name, timing.describe(), "active" if active else "inactive")
        for name in sorted(set(self._cursors) - set(cursors)):
            log.info("schedule %s removed", name)
        self._cursors = cursors

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() >= self._next_refresh:
            self.refresh()
        delay = float(super().tick(*args, **kwargs))
        return min(delay, self._fire_due(), max(self._next_refresh - time.monotonic(), 0.0))

    def _fire_due(self) -> float:
        """Send every due fire; returns the seconds until the next fire time of any schedule."""
        now = _utcnow()
        wait = float(self.max_interval)
        for cursor in self._cursors.values():
            fire_time = due_fire(cursor, now)
            if fire_time is not None:
                if self._send(cursor.name, fire_time):
                    cursor.last_sent = fire_time
                else:
                    wait = min(wait, _RETRY_SEND_S)
            if cursor.active:
                upcoming = cursor.timing.next_after(max(now, cursor.last_sent))
                wait = min(wait, (upcoming - now).total_seconds() + _WAKE_MARGIN_S)
        return max(wait, 0.0)

    def _send(self, name: str, fire_time: datetime) -> bool:
        iso = fire_time_iso(fire_time)
        log.info("Scheduler: firing schedule %s at %s", name, iso)
        try:
            self.app.send_task(FIRE_SCHEDULE, args=[name, iso, "beat"], producer=self.producer)
        except Exception as exc:  # the broker may be down: the fire stays due and is sent at the next tick
            log.error("could not send the fire of schedule %s at %s: %s", name, iso, exc)
            return False
        return True

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._engine is not None:
                self._engine.dispose()

    @property
    def info(self) -> str:
        source = f", file {self._settings.schedules_file}" if self._settings.schedules_file else ""
        return f"    . schedules table re-read every {self.refresh_interval_s:g} s{source}"


def _may_fire(schedule: Schedule) -> bool:
    return not schedule.paused and schedule.finished_at is None


def _utcnow() -> datetime:
    return datetime.now(UTC)
