"""The ledger's clock: one time that every host of the service agrees on, for leases and due times.

A lease is granted by one host and checked by another, and a due time (``next_poll_at``) is written by one host
and compared by another. Read from each host's own clock, a host whose clock runs ahead sees the leases of the
others expire early and takes work they still hold; a host whose clock runs behind grants leases that are already
over for everyone else, and writes due times that every poller finds overdue. Skew between machines thus eats the
lease's margin. So leases are granted and compared at the database's time:

- PostgreSQL: the server's ``clock_timestamp()``, read once per transaction (one round trip, the first time a
  transaction takes or checks a lease) and reused for the rest of that transaction, as PostgreSQL's own ``now()``
  is; the statement that follows sees the same time the lease was granted at.
- SQLite: the local clock. The database is a file on one host, so all its writers share that host's clock; it is
  read after the transaction has begun (after ``BEGIN IMMEDIATE`` took the write lock), so a long wait for the lock
  does not shorten a lease granted after it.

Which clock a session's leases run on is a property of its session factory: :func:`use_database_clock` marks the
service's factories (the worker's runtime). Without the mark a store function uses the ``now`` its caller passed,
which is what tests that drive simulated time rely on. :class:`LedgerClock` gives code that stamps times outside a
lease statement (due times, submit windows, ``updated_at``) the database's time too, from the local clock and an
offset measured now and then, without a round trip per reading.

What can still break it: the database server's own clock stepping forward (an NTP correction of seconds) ends
every live lease early by the step, so a worker may take work another still holds, as any step of a single clock
would. A :class:`LedgerClock` reading is off by the drift since its last measurement plus half a round trip
(milliseconds) and, while the database cannot be reached, by whatever the local clock drifts meanwhile; that moves
due times and submit windows a little, never a lease, which is always granted and compared at a time the lease
statement's own transaction read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store import guarantees

__all__ = ["LedgerClock", "database_now", "ledger_now", "use_database_clock", "uses_database_clock"]

log = logging.getLogger(__name__)

# Session.info keys: the factory's choice of clock, and the time read for the current transaction.
_CLOCK_KEY = "dsimport.clock"
_CACHE_KEY = "dsimport.database_now"
_DATABASE = "database"


def use_database_clock(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Mark ``factory`` so that leases taken through its sessions run on the database's clock; returns it."""
    info = dict(factory.kw.get("info") or {})
    info[_CLOCK_KEY] = _DATABASE
    factory.configure(info=info)
    return factory


def uses_database_clock(session: Session) -> bool:
    """True when ``session`` comes from a factory marked by :func:`use_database_clock` (and the switch is on)."""
    return session.info.get(_CLOCK_KEY) == _DATABASE and guarantees.enabled("database-clock")


def database_now(session: Session) -> datetime:
    """The database's current time (aware, UTC), read once per transaction of ``session``.

    Begins the session's transaction if it has not begun. Later calls in the same transaction return the same
    value without a round trip.
    """
    connection = session.connection()
    transaction = session.get_transaction()
    cached: tuple[Any, datetime] | None = session.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is transaction:
        return cached[1]
    if connection.dialect.name == "postgresql":
        value: datetime = connection.execute(select(func.clock_timestamp())).scalar_one()
        now = value.astimezone(UTC)
    else:
        now = datetime.now(UTC)
    session.info[_CACHE_KEY] = (transaction, now)
    return now


def ledger_now(session: Session, now: datetime) -> datetime:
    """The time a lease statement of ``session`` grants and compares at: the database's, or the caller's ``now``.

    ``now`` is used only by sessions whose factory was not marked with :func:`use_database_clock` (tests that
    drive time themselves).
    """
    return database_now(session) if uses_database_clock(session) else now


class LedgerClock:
    """A clock that reads the database's time without asking the database each time.

    ``local`` is this process's clock. The offset between it and the database's clock is measured when first
    needed and again every ``refresh_s`` seconds (midpoint of the round trip); a reading is ``local() + offset``.
    For a factory not marked with :func:`use_database_clock`, a reading is ``local()``. On SQLite the database's
    clock is the host's (``datetime.now``), so no measurement touches the database (and takes no write lock).
    A failed measurement keeps the previous offset and is tried again after ``retry_s``.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        local: Callable[[], datetime],
        refresh_s: float = 30.0,
        retry_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._local = local
        self._refresh_s = refresh_s
        self._retry_s = retry_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._next_measure = float("-inf")
        with sessions() as probe:  # a session connects only when used: this one never does
            self._marked = probe.info.get(_CLOCK_KEY) == _DATABASE
            self._dialect = probe.get_bind().dialect.name

    def __call__(self) -> datetime:
        if not (self._marked and guarantees.enabled("database-clock")):
            return self._local()
        if self._dialect != "postgresql":
            return datetime.now(UTC)
        with self._lock:
            if self._monotonic() >= self._next_measure:
                self._measure()
            offset = self._offset
        return self._local() + offset

    def _measure(self) -> None:
        try:
            with self._sessions() as session:
                session.connection()  # connect first, so the round trip below is one SELECT
                before = self._local()
                database = database_now(session)
                after = self._local()
                session.rollback()
        except SQLAlchemyError as exc:
            log.warning("cannot read the database's clock (%s); keeping offset %s", exc, self._offset)
            self._next_measure = self._monotonic() + self._retry_s
            return
        self._offset = database - (before + (after - before) / 2)
        self._next_measure = self._monotonic() + self._refresh_s
