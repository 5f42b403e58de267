"""Reading and writing beat schedules, and the items each has already imported.

Like the rest of the ledger, every function takes the caller's Session (and ``now`` when it writes) and leaves
committing to the caller. The definition of a schedule arrives already validated (``triggers.schedules.specs`` checks
names, timings and params); this module only stores it.

Errors (all :class:`store.errors.StoreError`)::

    ScheduleError
    ├── ScheduleNotFoundError     no schedule has that name
    ├── ScheduleExistsError       the name is taken
    └── FileScheduleError         the change must be made in the schedules file instead

Removing a schedule keeps its history by default: the row is marked removed (it no longer fires and is not
listed), its runs and its imported-item list stay, and adding a schedule of the same name again (on the command
line or in a schedules file) brings it back with that list, so nothing it imported is imported again. Only
``forget=True`` deletes the row, its runs, its items and its snapshots' rows (never their files).
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
from store.models import (
    WINDOW_SCHEDULE_KINDS,
    ImportKind,
    Schedule,
    ScheduleBackfill,
    ScheduleItem,
    ScheduleKind,
    ScheduleRun,
    ScheduleSource,
)
from store.snapshot_models import DatasetSnapshot, SnapshotJob

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
    "revive_schedule",
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

    ``start`` is where a window schedule's first window begins (None: when the schedule is created).
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
    sample_rate: float | None = None
    """Window schedules: the share of the items found that is imported, in (0, 1); None imports every item."""
    skip_existing: bool = True
    """Its jobs leave out what the target dataset holds already (:mod:`jobs.skip_existing`)."""
    snapshot_dir: str | None = None
    """An absolute folder the target dataset is exported to after each completed import; None takes no snapshots."""

    def same_as(self, schedule: Schedule) -> bool:
        """True when ``schedule`` already stores this definition (state such as pause is not compared)."""
        return (
            schedule.kind == self.kind
            and schedule.import_kind == self.import_kind
            and schedule.dataset_id == self.dataset_id
            and schedule.params == self.params
            and schedule.cron == self.cron
            and schedule.every_s == self.every_s
            and schedule.sample_rate == self.sample_rate
            and schedule.skip_existing == self.skip_existing
            and schedule.snapshot_dir == self.snapshot_dir
        )


@dataclass
class SyncReport:
    """What a sync of the schedules file changed in the table.

    ``conflicts`` are names taken by a command-line schedule, ``foreign`` names defined by another schedules file:
    both are left alone.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _initial_watermark(definition: ScheduleDefinition, now: datetime) -> datetime | None:
    if definition.kind not in WINDOW_SCHEDULE_KINDS:
        return None
    return definition.start or now


def create_schedule(
    session: Session,
    definition: ScheduleDefinition,
    *,
    source: ScheduleSource,
    now: datetime,
    source_file: str | None = None,
) -> Schedule:
    """Store a new schedule (``source_file``: the schedules file it comes from). It fires from the first fire time
    after ``now``. A schedule of that name removed with its history kept is brought back instead
    (:func:`revive_schedule`), with its imported-item list.

    :raises ScheduleExistsError: the name is taken (checked again by the unique index, so two concurrent
        creators cannot both win).
    """
    existing = get_schedule(session, definition.name)
    if existing is not None:
        if existing.removed_at is not None:
            return revive_schedule(existing, definition, source=source, source_file=source_file, now=now)
        raise ScheduleExistsError(definition.name, existing.source)
    schedule = Schedule(
        id=str(uuid.uuid4()),
        name=definition.name,
        source=source,
        kind=definition.kind,
        import_kind=definition.import_kind,
        dataset_id=definition.dataset_id,
        params=dict(definition.params),
        sample_rate=definition.sample_rate,
        skip_existing=definition.skip_existing,
        snapshot_dir=definition.snapshot_dir,
        cron=definition.cron,
        every_s=definition.every_s,
        paused=definition.paused,
        fires_after=now,
        watermark=_initial_watermark(definition, now),
        created_at=now,
        updated_at=now,
        source_file=source_file,
    )
    try:
        with session.begin_nested():
            session.add(schedule)
    except IntegrityError:
        winner = get_schedule(session, definition.name)
        raise ScheduleExistsError(definition.name, winner.source if winner else source) from None
    return schedule


def revive_schedule(
    schedule: Schedule,
    definition: ScheduleDefinition,
    *,
    source: ScheduleSource,
    source_file: str | None,
    now: datetime,
) -> Schedule:
    """Bring back a schedule removed with its history kept, under ``definition``: it keeps its imported items (and
    its watermark, unless the kind changed) and fires from the first fire time after ``now``."""
    _update(schedule, definition, now=now)
    schedule.source = source
    schedule.source_file = source_file
    schedule.removed_at = None
    schedule.paused = definition.paused
    schedule.fires_after = max(schedule.fires_after, now)
    return schedule


def get_schedule(session: Session, name: str) -> Schedule | None:
    """The schedule named ``name`` (a removed one too: check ``removed_at``), or None."""
    return session.scalars(
        select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)
    ).one_or_none()


def require_schedule(
    session: Session, name: str, *, for_update: bool = False, include_removed: bool = False
) -> Schedule:
    """The schedule named ``name``, freshly read (row-locked on PostgreSQL with ``for_update``).

    :raises ScheduleNotFoundError: no such schedule (or it was removed, unless ``include_removed``).
    """
    query = select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update()
    schedule = session.scalars(query).one_or_none()
    if schedule is None or (schedule.removed_at is not None and not include_removed):
        raise ScheduleNotFoundError(name)
    return schedule


def list_schedules(session: Session, *, include_removed: bool = False) -> list[Schedule]:
    """Every schedule (not the removed ones unless ``include_removed``), by name."""
    query = select(Schedule).order_by(Schedule.name)
    if not include_removed:
        query = query.where(Schedule.removed_at.is_(None))
    return list(session.scalars(query))


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


def remove_schedule(
    session: Session, name: str, *, now: datetime, allow_file: bool = False, forget: bool = False
) -> None:
    """Stop a schedule for good. By default its run history and imported-item list are kept (the row is marked
    removed: re-adding the name brings them back); with ``forget`` the row, its runs and its items are deleted
    (its jobs stay in the ledger either way). Forgetting a schedule already removed is allowed.

    :raises ScheduleNotFoundError: no such schedule.
    :raises FileScheduleError: the schedule comes from the schedules file and ``allow_file`` is False.
    """
    schedule = require_schedule(session, name, for_update=True, include_removed=forget)
    if schedule.source == ScheduleSource.FILE and schedule.removed_at is None and not allow_file:
        raise FileScheduleError(name, "remove")
    if forget:
        _delete(session, schedule)
    else:
        _mark_removed(schedule, now=now)


def _mark_removed(schedule: Schedule, *, now: datetime) -> None:
    if schedule.removed_at is None:
        schedule.removed_at = now
        schedule.updated_at = now


def _delete(session: Session, schedule: Schedule) -> None:
    session.flush()
    # Children first, in the order a firing task locks rows (run, then schedule), so a removal racing a fire
    # waits instead of deadlocking.
    session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id))
    session.execute(delete(ScheduleItem).where(ScheduleItem.schedule_id == schedule.id))
    session.execute(delete(ScheduleBackfill).where(ScheduleBackfill.schedule_id == schedule.id))
    # The snapshots' rows go with the history; their files stay where they were written.
    session.execute(delete(SnapshotJob).where(SnapshotJob.schedule_id == schedule.id))
    session.execute(delete(DatasetSnapshot).where(DatasetSnapshot.schedule_id == schedule.id))
    session.delete(schedule)
    session.flush()


def mark_finished(session: Session, schedule: Schedule, reason: str, *, now: datetime) -> None:
    """A schedule that has done its one job (campaign-when-done) stops firing, with the reason shown."""
    if schedule.finished_at is None:
        schedule.finished_at = now
        schedule.finished_reason = reason
        schedule.updated_at = now


def advance_watermark(schedule: Schedule, to: datetime, *, now: datetime) -> None:
    """Move a window schedule's watermark forward to ``to``; never backwards."""
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
    session: Session, definitions: Collection[ScheduleDefinition], *, now: datetime, source_file: str
) -> SyncReport:
    """Make the schedules that came from the file ``source_file`` match ``definitions`` (the whole file).

    New names are added (a removed schedule of that name comes back with its imported items), changed
    definitions updated (watermark, imported items, pause state and history are kept), and schedules of this
    file no longer in it removed with their history kept. A sync never touches a schedule defined elsewhere:
    a name used by a command-line schedule is reported in ``conflicts``, one defined by another schedules file
    (two beats reading different files) in ``foreign``, and neither is changed or removed. A file schedule
    stored before files were recorded is adopted by the first file that names it, and never removed by a file
    that does not. Safe to run from several beats at once: a concurrent insert of the same name raises
    ``IntegrityError`` at commit, and the caller syncs again.
    """
    report = SyncReport()
    wanted = {definition.name: definition for definition in definitions}
    existing = {schedule.name: schedule for schedule in list_schedules(session, include_removed=True)}
    for name, definition in sorted(wanted.items()):
        schedule = existing.get(name)
        if schedule is None or schedule.removed_at is not None:
            create_schedule(session, definition, source=ScheduleSource.FILE, now=now, source_file=source_file)
            report.added.append(name)
        elif schedule.source != ScheduleSource.FILE:
            report.conflicts.append(name)
        elif schedule.source_file not in (None, source_file):
            report.foreign.append(name)
        elif not definition.same_as(schedule) or schedule.source_file is None:
            _update(schedule, definition, now=now)
            schedule.source_file = source_file
            report.updated.append(name)
    for name, schedule in sorted(existing.items()):
        ours = schedule.source == ScheduleSource.FILE and schedule.source_file == source_file
        if ours and schedule.removed_at is None and name not in wanted:
            _mark_removed(schedule, now=now)
            report.removed.append(name)
    return report


def _update(schedule: Schedule, definition: ScheduleDefinition, *, now: datetime) -> None:
    kind_changed = schedule.kind != definition.kind
    if kind_changed or schedule.params.get("from_dataset_id") != definition.params.get("from_dataset_id"):
        schedule.copy_page = None  # a page number of another source (or kind) means nothing here
    schedule.kind = definition.kind
    schedule.import_kind = definition.import_kind
    schedule.dataset_id = definition.dataset_id
    schedule.params = dict(definition.params)
    schedule.sample_rate = definition.sample_rate
    schedule.skip_existing = definition.skip_existing
    schedule.snapshot_dir = definition.snapshot_dir
    schedule.cron = definition.cron
    schedule.every_s = definition.every_s
    if kind_changed:
        schedule.watermark = _initial_watermark(definition, now)
        schedule.finished_at = None
        schedule.finished_reason = None
    schedule.updated_at = now
