"""Reading and writing beat schedules, and the items each has already imported.

Like the rest of the ledger, every function takes the caller's Session (and ``now`` when it writes) and leaves
committing to the caller. The definition of a schedule arrives already validated (``tasks.schedule_specs`` checks
names, timings and params); this module only stores it.

Errors (all :class:`store.errors.StoreError`)::

    ScheduleError
    ├── ScheduleNotFoundError     no schedule has that name
    ├── ScheduleExistsError       the name is taken
    └── FileScheduleError         the change must be made in the schedules file instead
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import ImportKind, Schedule, ScheduleItem, ScheduleKind, ScheduleRun, ScheduleSource

__all__ = [
    "FileScheduleError",
    "ScheduleDefinition",
    "ScheduleError",
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "SyncReport",
    "add_items",
    "advance_watermark",
    "create_schedule",
    "get_schedule",
    "imported_item_ids",
    "list_schedules",
    "mark_finished",
    "remove_schedule",
    "require_schedule",
    "set_paused",
    "sync_file_schedules",
]

# Bound parameter lists: SQLite allows 32766 variables per statement, and long IN lists plan badly anyway.
_IN_BATCH = 500


class ScheduleError(StoreError):
    """Raised for a schedule operation the ledger refuses."""


class ScheduleNotFoundError(ScheduleError):
    """Raised when no schedule has the given name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no schedule named {name!r}")


class ScheduleExistsError(ScheduleError):
    """Raised when a schedule is created with a name already taken."""

    def __init__(self, name: str, source: ScheduleSource) -> None:
        self.name = name
        self.source = source
        where = "in the schedules file" if source == ScheduleSource.FILE else "on the command line"
        super().__init__(f"a schedule named {name!r} exists already (defined {where})")


class FileScheduleError(ScheduleError):
    """Raised when the command line tries a change that belongs in the schedules file (removing a file schedule)."""

    def __init__(self, name: str, action: str) -> None:
        self.name = name
        super().__init__(
            f"schedule {name!r} comes from the schedules file: edit the file to {action} it "
            "(pausing it from the command line works)"
        )


@dataclass(frozen=True)
class ScheduleDefinition:
    """What a schedule is, as the command line or the schedules file says it: validated, ready to store.

    ``start`` is where an explorer-window schedule's first window begins (None: when the schedule is created).
    ``paused`` is the state a new schedule starts in; later syncs of the file leave the pause state alone.
    """

    name: str
    kind: ScheduleKind
    import_kind: ImportKind
    dataset_id: str
    params: dict[str, Any]
    cron: str | None = None
    every_s: int | None = None
    start: datetime | None = None
    paused: bool = False

    def same_as(self, schedule: Schedule) -> bool:
        """True when ``schedule`` already stores this definition (state such as pause is not compared)."""
        return (
            schedule.kind == self.kind
            and schedule.import_kind == self.import_kind
            and schedule.dataset_id == self.dataset_id
            and schedule.params == self.params
            and schedule.cron == self.cron
            and schedule.every_s == self.every_s
        )


@dataclass
class SyncReport:
    """What a sync of the schedules file changed in the table."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _initial_watermark(definition: ScheduleDefinition, now: datetime) -> datetime | None:
    if definition.kind != ScheduleKind.EXPLORER_WINDOW:
        return None
    return definition.start or now


def create_schedule(
    session: Session, definition: ScheduleDefinition, *, source: ScheduleSource, now: datetime
) -> Schedule:
    """Store a new schedule. It fires from the first fire time after ``now``.

    :raises ScheduleExistsError: the name is taken (checked again by the unique index, so two concurrent
        creators cannot both win).
    """
    existing = get_schedule(session, definition.name)
    if existing is not None:
        raise ScheduleExistsError(definition.name, existing.source)
    schedule = Schedule(
        id=str(uuid.uuid4()),
        name=definition.name,
        source=source,
        kind=definition.kind,
        import_kind=definition.import_kind,
        dataset_id=definition.dataset_id,
        params=dict(definition.params),
        cron=definition.cron,
        every_s=definition.every_s,
        paused=definition.paused,
        fires_after=now,
        watermark=_initial_watermark(definition, now),
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(schedule)
    except IntegrityError:
        winner = get_schedule(session, definition.name)
        raise ScheduleExistsError(definition.name, winner.source if winner else source) from None
    return schedule


def get_schedule(session: Session, name: str) -> Schedule | None:
    """The schedule named ``name``, or None."""
    return session.scalars(
        select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)
    ).one_or_none()


def require_schedule(session: Session, name: str, *, for_update: bool = False) -> Schedule:
    """The schedule named ``name``, freshly read (row-locked on PostgreSQL with ``for_update``).

    :raises ScheduleNotFoundError: no such schedule.
    """
    query = select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update()
    schedule = session.scalars(query).one_or_none()
    if schedule is None:
        raise ScheduleNotFoundError(name)
    return schedule


def list_schedules(session: Session) -> list[Schedule]:
    """Every schedule, by name."""
    return list(session.scalars(select(Schedule).order_by(Schedule.name)))


def set_paused(session: Session, name: str, paused: bool, *, now: datetime) -> Schedule:
    """Pause or resume a schedule (file schedules too). A resumed schedule does not catch up on the fires it
    missed while paused: it fires from the first fire time after ``now``.

    :raises ScheduleNotFoundError: no such schedule.
    """
    schedule = require_schedule(session, name, for_update=True)
    if schedule.paused != paused:
        schedule.paused = paused
        schedule.updated_at = now
        if not paused:
            schedule.fires_after = max(schedule.fires_after, now)
    return schedule


def remove_schedule(session: Session, name: str, *, allow_file: bool = False) -> None:
    """Delete a schedule with its run history and its imported-item list (its jobs stay in the ledger).

    :raises ScheduleNotFoundError: no such schedule.
    :raises FileScheduleError: the schedule comes from the schedules file and ``allow_file`` is False.
    """
    schedule = require_schedule(session, name, for_update=True)
    if schedule.source == ScheduleSource.FILE and not allow_file:
        raise FileScheduleError(name, "remove")
    _delete(session, schedule)


def _delete(session: Session, schedule: Schedule) -> None:
    session.flush()
    # Children first, in the order a firing task locks rows (run, then schedule), so a removal racing a fire
    # waits instead of deadlocking.
    session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id))
    session.execute(delete(ScheduleItem).where(ScheduleItem.schedule_id == schedule.id))
    session.delete(schedule)
    session.flush()


def mark_finished(session: Session, schedule: Schedule, reason: str, *, now: datetime) -> None:
    """A schedule that has done its one job (campaign-when-done) stops firing, with the reason shown."""
    if schedule.finished_at is None:
        schedule.finished_at = now
        schedule.finished_reason = reason
        schedule.updated_at = now


def advance_watermark(schedule: Schedule, to: datetime, *, now: datetime) -> None:
    """Move an explorer-window schedule's watermark forward to ``to``; never backwards."""
    if schedule.watermark is None or schedule.watermark < to:
        schedule.watermark = to
        schedule.updated_at = now


def imported_item_ids(session: Session, schedule_id: str, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` this schedule has already put in a job."""
    wanted = list(dict.fromkeys(candidates))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_BATCH):
        batch = wanted[start : start + _IN_BATCH]
        found.update(
            session.scalars(
                select(ScheduleItem.item_id).where(
                    ScheduleItem.schedule_id == schedule_id, ScheduleItem.item_id.in_(batch)
                )
            )
        )
    return found


def add_items(session: Session, schedule_id: str, job_id: str, item_ids: Sequence[str], *, now: datetime) -> None:
    """Record that ``item_ids`` went into ``job_id``; a repeated id violates the primary key (it must not happen:
    callers filter with :func:`imported_item_ids` under the schedule's lock)."""
    session.add_all(
        ScheduleItem(schedule_id=schedule_id, item_id=item_id, job_id=job_id, added_at=now) for item_id in item_ids
    )


def sync_file_schedules(
    session: Session, definitions: Collection[ScheduleDefinition], *, now: datetime
) -> SyncReport:
    """Make the file schedules in the table match ``definitions`` (the whole file).

    New names are added, changed definitions updated (watermark, imported items, pause state and history are
    kept), and file schedules no longer in the file removed. A name already used by a command-line schedule is
    left alone and reported as a conflict. Safe to run from several beats at once: a concurrent insert of the
    same name raises ``IntegrityError`` at commit, and the caller syncs again.
    """
    report = SyncReport()
    wanted = {definition.name: definition for definition in definitions}
    existing = {schedule.name: schedule for schedule in list_schedules(session)}
    for name, definition in sorted(wanted.items()):
        schedule = existing.get(name)
        if schedule is None:
            create_schedule(session, definition, source=ScheduleSource.FILE, now=now)
            report.added.append(name)
        elif schedule.source != ScheduleSource.FILE:
            report.conflicts.append(name)
        elif not definition.same_as(schedule):
            _update(schedule, definition, now=now)
            report.updated.append(name)
    for name, schedule in sorted(existing.items()):
        if schedule.source == ScheduleSource.FILE and name not in wanted:
            _delete(session, schedule)
            report.removed.append(name)
    return report


def _update(schedule: Schedule, definition: ScheduleDefinition, *, now: datetime) -> None:
    kind_changed = schedule.kind != definition.kind
    schedule.kind = definition.kind
    schedule.import_kind = definition.import_kind
    schedule.dataset_id = definition.dataset_id
    schedule.params = dict(definition.params)
    schedule.cron = definition.cron
    schedule.every_s = definition.every_s
    if kind_changed:
        schedule.watermark = _initial_watermark(definition, now)
        schedule.finished_at = None
        schedule.finished_reason = None
    schedule.updated_at = now
