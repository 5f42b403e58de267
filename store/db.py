"""Engines, sessions and schema migrations.

SQLite is made fit for several worker processes: WAL journal (readers never block the writer), a 30 s busy
timeout (writers queue instead of failing), foreign keys on, and every transaction opened with
``BEGIN IMMEDIATE``, retried with backoff for ``locked_retry_s`` (5 minutes by default) when the busy timeout
runs out under heavy contention, then refused with one line (:mod:`store.lock_retry`). The ``BEGIN IMMEDIATE``
matters: the sqlite3 driver's default only begins a transaction at the first INSERT/UPDATE, so a read-then-write
transaction could read a snapshot another writer has already replaced and then fail with "database is locked" no
matter the timeout. Taking the write lock at BEGIN serializes writers up front. Sessions that only read can use
``make_session_factory(engine, read_only=True)`` and run concurrently with writers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, table
from sqlalchemy import column as sql_column
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseNotMigratedError, DatabaseUnavailableError
from store.lock_retry import DEFAULT_LOCKED_RETRY_S, retry_when_locked
from store.migration_head import shipped_head

# Alembic is imported where a migration is inspected or applied, not here: a command that only reads or writes
# the ledger checks its revision without it (see check_migrated).
if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "alembic_config",
    "check_migrated",
    "current_revision",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "mask_url",
    "upgrade",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long SQLite itself waits for the write lock before each retry (``DSIMPORT_DB_BUSY_TIMEOUT_S``)."""
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Engine/connection execution option naming the BEGIN flavour SQLite transactions start with.
_SQLITE_BEGIN_OPTION = "dsimport_sqlite_begin"
_PG_CONNECT_TIMEOUT_S = 10
# Alembic's default table for the revision a database is at (store/migrations/env.py keeps the default).
_VERSION_TABLE = "alembic_version"


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***``, safe for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(
    url: str,
    *,
    busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
    locked_retry_s: float = DEFAULT_LOCKED_RETRY_S,
    **kwargs: Any,
) -> Engine:
    """Create an engine for a ``sqlite:///path`` or ``postgresql+psycopg://…`` URL.

    On SQLite, ``busy_timeout_s`` is how long SQLite waits for the write lock, and ``locked_retry_s`` how long a
    transaction keeps retrying its BEGIN after that (both ignored on PostgreSQL). Extra keyword arguments go to
    :func:`sqlalchemy.create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, busy_timeout_s=busy_timeout_s, locked_retry_s=locked_retry_s, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        connect_args = dict(kwargs.pop("connect_args", {}))
        if "connect_timeout" not in parsed.query:
            # libpq waits forever on an unreachable host by default; a start-up check should fail instead.
            connect_args.setdefault("connect_timeout", _PG_CONNECT_TIMEOUT_S)
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, connect_args=connect_args, **kwargs)
    return create_engine(parsed, **kwargs)


def _make_sqlite_engine(url: URL, *, busy_timeout_s: float, locked_retry_s: float, **kwargs: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # The sqlite3 driver's ``timeout`` is SQLite's busy timeout (a PRAGMA could not take it as a bound value).
    connect_args = {"timeout": busy_timeout_s, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    what = f"a write to {mask_url(url)}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the BEGIN hook below); this also lets the PRAGMAs run
        # outside any implicit transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the
            # last transactions, and it saves an fsync per commit.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if mode == "DEFERRED":
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        # Nothing has happened in the transaction yet, so a BEGIN refused for a lock held too long is safe to
        # send again: every writer of the service waits out contention here.
        retry_when_locked(lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"), budget_s=locked_retry_s, what=what)

    return engine


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory for ``engine``.

    Objects stay loaded after commit (``expire_on_commit=False``) so a caller can still read a job it just
    committed. ``read_only=True`` opens SQLite transactions without taking the write lock; writing from such a
    session may fail with "database is locked" under contention, so use it only for reads. On PostgreSQL the
    flag changes nothing.
    """
    bind = engine.execution_options(**{_SQLITE_BEGIN_OPTION: "DEFERRED"}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def _connect(engine: Engine, *, read_only: bool) -> Iterator[Connection]:
    """Connect, turning a failure to reach the database into :class:`DatabaseUnavailableError`."""
    if read_only:
        engine = engine.execution_options(**{_SQLITE_BEGIN_OPTION: "DEFERRED"})
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise DatabaseUnavailableError(mask_url(engine.url), _first_line(exc)) from exc
    with conn:
        yield conn


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc.orig).__name__


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), pointing at the packaged migrations.

    With ``connection``, migrations run on it (inside its transaction) instead of opening their own.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration revision shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at, or None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with _connect(engine, read_only=True) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_migrated(engine: Engine) -> None:
    """Raise unless the database schema is at :func:`head_revision`.

    :raises DatabaseUnavailableError: the database cannot be reached.
    :raises DatabaseNotMigratedError: the schema is behind (or ahead of) this code.
    """
    # The usual answer (one row, the head the migration files name) needs no Alembic; any other is Alembic's.
    shipped = shipped_head()
    if shipped is not None and _recorded_revisions(engine) == [shipped]:
        return
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    known = current is None or current in _known_revisions()
    raise DatabaseNotMigratedError(mask_url(engine.url), current, head, known=known)


def _recorded_revisions(engine: Engine) -> list[str] | None:
    """The rows of the database's revision table, or None when it has none (a database never migrated)."""
    with _connect(engine, read_only=True) as conn:
        if not inspect(conn).has_table(_VERSION_TABLE):
            return None
        version = table(_VERSION_TABLE, sql_column("version_num"))
        return [str(row) for row in conn.execute(select(version.c.version_num)).scalars()]


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (default: the newest) in one transaction."""
    from alembic import command

    engine = make_engine(url)
    try:
        with _connect(engine, read_only=False) as conn, conn.begin():
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
