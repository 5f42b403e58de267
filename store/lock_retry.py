"""Waiting out SQLite's write lock: retry with backoff and jitter for a bounded time, then one clear error.

SQLite lets one writer in at a time. A writer that finds the lock taken waits inside SQLite for the busy timeout
(30 s by default), polling; with many writers at once (a hundred ``dsimport import`` processes on two cores) some
lose that race for the whole timeout and used to fail with a raw ``sqlite3.OperationalError: database is locked``,
their request not recorded. :func:`retry_when_locked` gives such a writer a longer, bounded time: it retries the
work after a jittered, growing pause until ``budget_s`` has passed since the first failure, then raises
:class:`DatabaseLockedError` (one line, a :class:`store.errors.StoreError`).

What makes a retry safe is the caller's business: the engine retries only the ``BEGIN IMMEDIATE`` that opens a
write transaction (see :mod:`store.db`), before anything was read or written, so every writer of the service
(command line, intake, workers, beat) waits this way without knowing it. Code that wants the same around a whole
unit of work (one that opens, writes and commits its own session, and did nothing outside the database before
its commit) passes it as ``work``.

Only "database is locked" / "database is busy" are retried: SQLite reports them before the statement changed
anything. Every other error, and a lock error on PostgreSQL (which reports lock waits differently), goes through
at once. The bound is checked after each failure, so the longest wait is ``budget_s`` plus one busy timeout.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from store.errors import StoreError

__all__ = [
    "DEFAULT_LOCKED_RETRY_S",
    "DatabaseLockedError",
    "is_locked_error",
    "retry_when_locked",
]

log = logging.getLogger(__name__)

DEFAULT_LOCKED_RETRY_S = 300.0
"""How long a writer keeps trying when the ledger stays locked (``DSIMPORT_DB_LOCKED_RETRY_S``)."""

_FIRST_PAUSE_S = 0.05
_LONGEST_PAUSE_S = 2.0
# The messages SQLite gives for SQLITE_BUSY and SQLITE_LOCKED (Python's sqlite3 passes them through unchanged).
_LOCKED_MESSAGES = ("database is locked", "database is busy", "database table is locked")

T = TypeVar("T")


class DatabaseLockedError(StoreError):
    """Raised when the ledger stayed locked by other writers for longer than the retry budget."""

    def __init__(self, what: str, waited_s: float, attempts: int) -> None:
        self.what = what
        self.waited_s = waited_s
        self.attempts = attempts
        super().__init__(
            f"{what}: the database stayed locked by other writers for {waited_s:.0f} s ({attempts} attempts); "
            "nothing was written, try again (DSIMPORT_DB_LOCKED_RETRY_S sets how long to keep trying)"
        )


def is_locked_error(exc: BaseException) -> bool:
    """True when ``exc`` (raw sqlite3, or wrapped by SQLAlchemy) says another writer holds the lock."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if type(original).__name__ != "OperationalError":
        return False
    text = str(original).lower()
    return any(message in text for message in _LOCKED_MESSAGES)


def retry_when_locked(
    work: Callable[[], T],
    *,
    budget_s: float = DEFAULT_LOCKED_RETRY_S,
    what: str = "writing to the ledger",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """``work()``, called again after a jittered, doubling pause each time it fails on a locked database.

    :raises DatabaseLockedError: still locked ``budget_s`` after the first failure (``budget_s=0``: no retry).
    """
    pick = rng.uniform if rng is not None else random.uniform
    started: float | None = None
    attempts = 0
    pause_s = _FIRST_PAUSE_S
    while True:
        attempts += 1
        try:
            return work()
        except Exception as exc:
            if not is_locked_error(exc):
                raise
            now = clock()
            started = now if started is None else started
            left_s = budget_s - (now - started)
            if left_s <= 0:
                raise DatabaseLockedError(what, now - started, attempts) from None
            if attempts == 1:
                log.info("%s: the database is locked; retrying for up to %.0f s", what, budget_s)
        # Full jitter: writers that failed together must not all come back at the same instant.
        sleep(min(left_s, pick(pause_s / 2, pause_s)))
        pause_s = min(pause_s * 2, _LONGEST_PAUSE_S)
