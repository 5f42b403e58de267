"""The schedules file (``DSIMPORT_SCHEDULES_FILE``, TOML): reading it and syncing it into the schedules table.

One table per schedule under ``[schedules]``, named by the schedule; the keys are those of
:mod:`triggers.schedules.specs` (``every`` or ``cron``, ``kind``, ``dataset``, then the kind's own)::

    [schedules.support-events]
    every = "15m"
    kind = "explorer-window"
    dataset = "0b6f5a6e-58a4-4d3c-9d43-0f3c2b0d8d11"
    filter = { field = "extra_fields.team", op = "eq", value = "support" }
    chunk_size = 200
    since = 2026-01-01T00:00:00Z
    snapshot = "snapshots/support"   # optional: export the dataset here after each completed import

A relative ``snapshot`` folder is read from the file's own folder.

Beat syncs the file into the table when it starts and whenever the file's content changes (checked every
``DSIMPORT_SCHEDULES_REFRESH_S``). The file is the truth for the definitions of its schedules; their pause state,
watermark, imported items and history live in the table and survive edits of the file. A schedule deleted from
the file is removed from the table with its history kept (put back in the file, it comes back with its imported
items). Each schedule remembers the file that defined it (its resolved path): a beat reading another file never
changes or removes it, so two beats given different files do not undo each other's schedules.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.schedules import ScheduleDefinition, ScheduleExistsError, SyncReport, sync_file_schedules
from triggers.schedules.specs import InvalidSchedule, build_definition

__all__ = [
    "FileWatcher",
    "ScheduleFileError",
    "file_identity",
    "load_schedule_file",
    "parse_schedules",
    "sync_schedule_file",
]

log = logging.getLogger(__name__)

_COMMON_KEYS = frozenset({"kind", "dataset", "cron", "every", "paused", "snapshot"})
# Concurrent beats may insert the same new name at the same moment; the loser syncs again.
_SYNC_ATTEMPTS = 3


class ScheduleFileError(ValueError):
    """Raised when the schedules file cannot be read or describes an invalid schedule (names the file and table)."""


def parse_schedules(
    text: str, *, source: str = "schedules file", base_dir: Path | None = None
) -> list[ScheduleDefinition]:
    """The schedules a TOML document defines; all of them valid, or :class:`ScheduleFileError`.

    ``base_dir`` is the folder relative ``snapshot`` folders are read from (the file's; default: the working one).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleFileError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"schedules"})
    if unknown:
        raise ScheduleFileError(f"{source}: unknown top-level key(s) {', '.join(unknown)} (expected [schedules.NAME])")
    tables = document.get("schedules", {})
    if not isinstance(tables, dict):
        raise ScheduleFileError(f"{source}: schedules must be a table of [schedules.NAME] tables")
    definitions = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ScheduleFileError(f"{source}: schedules.{name} must be a table")
        definitions.append(_definition(name, table, source, base_dir))
    return definitions


def _definition(name: str, table: dict[str, Any], source: str, base_dir: Path | None) -> ScheduleDefinition:
    options = {key: value for key, value in table.items() if key not in _COMMON_KEYS}
    paused = table.get("paused", False)
    try:
        if not isinstance(paused, bool):
            raise InvalidSchedule(f"paused must be true or false, got {paused!r}")
        kind = table.get("kind")
        if not isinstance(kind, str):
            raise InvalidSchedule("kind is missing")
        return build_definition(
            name,
            kind=kind,
            dataset=table.get("dataset"),
            cron=_text_or_none(table.get("cron"), "cron"),
            every=table.get("every"),
            options=options,
            paused=paused,
            snapshot=table.get("snapshot"),
            snapshot_base=base_dir,
        )
    except InvalidSchedule as exc:
        raise ScheduleFileError(f"{source}: [schedules.{name}]: {exc}") from None


def _text_or_none(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidSchedule(f"{what} must be a string")


def load_schedule_file(path: Path) -> list[ScheduleDefinition]:
    """Read and validate the schedules file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleFileError(f"cannot read the schedules file {path}: {exc.strerror}") from None
    return parse_schedules(text, source=str(path), base_dir=path.resolve().parent)


def file_identity(path: Path) -> str:
    """How a schedules file is recorded on the schedules it defines: its absolute, resolved path."""
    return str(path.resolve())


def sync_schedule_file(
    session_factory: sessionmaker[Session], definitions: list[ScheduleDefinition], *, now: datetime, path: Path
) -> SyncReport:
    """Make the table's schedules from the file at ``path`` match ``definitions``, in one transaction."""
    for attempt in range(_SYNC_ATTEMPTS):
        try:
            with session_factory() as session:
                report = sync_file_schedules(session, definitions, now=now, source_file=file_identity(path))
                session.commit()
                return report
        except (IntegrityError, ScheduleExistsError):
            # Another beat added the same file schedule at the same moment; the next pass sees it and updates.
            if attempt == _SYNC_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class FileWatcher:
    """Notices when the schedules file's content changes (content, not mtime: editors and copies keep mtimes)."""

    path: Path
    _digest: str | None = None

    def read_if_changed(self) -> list[ScheduleDefinition] | None:
        """The file's schedules when its content changed since the last successful read, else None.

        A file that fails to read or validate raises :class:`ScheduleFileError` and is tried again next time.
        """
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            raise ScheduleFileError(f"cannot read the schedules file {self.path}: {exc.strerror}") from None
        digest = hashlib.sha256(content).hexdigest()
        if digest == self._digest:
            return None
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ScheduleFileError(f"the schedules file {self.path} is not UTF-8") from None
        definitions = parse_schedules(text, source=str(self.path), base_dir=self.path.resolve().parent)
        self._digest = digest
        return definitions

    def sync(self, session_factory: sessionmaker[Session], now: Callable[[], datetime]) -> SyncReport | None:
        """Sync the file into the table if it changed; None when it did not."""
        definitions = self.read_if_changed()
        if definitions is None:
            return None
        try:
            report = sync_schedule_file(session_factory, definitions, now=now(), path=self.path)
        except Exception:
            self._digest = None  # not applied: try again at the next check
            raise
        for name in report.conflicts:
            log.error(
                "schedules file %s: schedule %r was added on the command line; remove it there or rename it in the "
                "file",
                self.path,
                name,
            )
        for name in report.foreign:
            log.error(
                "schedules file %s: schedule %r is defined by another schedules file; rename it in one of them",
                self.path,
                name,
            )
        if report.changed:
            log.info(
                "schedules file %s synced: added %s, updated %s, removed %s",
                self.path,
                report.added or "none",
                report.updated or "none",
                report.removed or "none",
            )
        return report

