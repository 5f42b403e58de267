"""Errors raised by the job ledger.

Every error the package raises on purpose derives from :class:`StoreError`::

    StoreError
    ├── DatabaseUnavailableError      the database cannot be reached
    ├── DatabaseNotMigratedError      the schema is not at the migration head
    ├── JobNotFoundError              no job has the given id
    └── InvalidTransition             the state machine forbids a status change
        └── JobAlreadyFinishedError   the job is already in a terminal status

SQLAlchemy errors raised while a caller's own transaction runs (lost connections, deadlocks) are left
untranslated: the caller owns the transaction and decides whether to retry it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.models import JobStatus

__all__ = [
    "DatabaseNotMigratedError",
    "DatabaseUnavailableError",
    "InvalidTransition",
    "JobAlreadyFinishedError",
    "JobNotFoundError",
    "StoreError",
]


class StoreError(Exception):
    """Raised for any failure the ledger reports on purpose."""


class DatabaseUnavailableError(StoreError):
    """Raised when the database cannot be reached (server down, bad host, unreadable file)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"database {url} is unavailable: {reason}")


class DatabaseNotMigratedError(StoreError):
    """Raised when the database schema is not at the head revision this code expects."""

    def __init__(self, url: str, current: str | None, head: str | None, *, known: bool = True) -> None:
        self.url = url
        self.current = current
        self.head = head
        if known:
            message = (
                f"database {url} is not migrated (at {current}, head is {head}): run `dsimport db upgrade`"
            )
        else:
            message = (
                f"database {url} is at revision {current}, which this version of dsimport does not know "
                f"(head is {head}): upgrade dsimport or use another database"
            )
        super().__init__(message)


class JobNotFoundError(StoreError):
    """Raised when a job id names no row in the ledger."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} not found")


class InvalidTransition(StoreError):
    """Raised when a job is asked to move to a status its current status cannot reach."""

    def __init__(
        self, job_id: str | None, old: JobStatus | None, new: JobStatus, message: str | None = None
    ) -> None:
        self.job_id = job_id
        self.old = old
        self.new = new
        old_text = "nothing" if old is None else old.value
        super().__init__(message or f"job {job_id}: cannot go from {old_text} to {new.value}")


class JobAlreadyFinishedError(InvalidTransition):
    """Raised when a job in a terminal status is asked to change again."""

    def __init__(self, job_id: str | None, old: JobStatus, new: JobStatus) -> None:
        super().__init__(job_id, old, new, f"job {job_id} already finished as {old.value}")
