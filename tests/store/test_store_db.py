"""Engines, SQLite settings and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import tomllib
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    alembic_config,
    check_migrated,
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    mask_url,
    upgrade,
)
from store.errors import DatabaseNotMigratedError, DatabaseUnavailableError, StoreError
from store.jobs import create_job, get_job
from store.models import Base, ImportKind

from .conftest import NOW, add_job

REPO = Path(__file__).resolve().parents[2]
LEDGER_TABLES = {
    "alembic_version",
    "import_jobs",
    "webhooks",
    "webhook_deliveries",
    "webhook_attempts",
    "job_events",
    "dead_letters",
    "api_tokens",
    "schedules",
    "schedule_runs",
    "schedule_items",
    "dataset_item_keys",
    "dataset_index_state",
    "schedule_backfills",
    "dataset_snapshots",
    "snapshot_jobs",
}
HEAD = "0015"


def test_head_is_the_newest_revision() -> None:
    assert head_revision() == HEAD


def test_upgrade_migrates_an_empty_database_and_is_idempotent(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) is None
        upgrade(empty_database_url)
        assert current_revision(engine) == head_revision()
        check_migrated(engine)
        assert LEDGER_TABLES <= set(inspect(engine).get_table_names())
        upgrade(empty_database_url)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_check_migrated_refuses_an_unmigrated_database_and_names_the_fix(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        with pytest.raises(DatabaseNotMigratedError) as caught:
            check_migrated(engine)
    finally:
        engine.dispose()
    assert isinstance(caught.value, StoreError)
    assert str(caught.value) == (
        f"database {mask_url(empty_database_url)} is not migrated (at None, head is {HEAD}): "
        "run `dsimport db upgrade`"
    )
    assert (caught.value.current, caught.value.head) == (None, HEAD)


def test_check_migrated_refuses_a_database_newer_than_the_code(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseNotMigratedError, match=r"at revision 9999, which this version of dsimport does not"):
        check_migrated(engine)


def test_models_and_migrations_describe_the_same_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert current_revision(engine) is None
        upgrade(database_url)
        check_migrated(engine)
    finally:
        engine.dispose()


def test_unreachable_server_is_one_line_without_the_password() -> None:
    engine = make_engine("postgresql+psycopg://dsimport:s3cr3t-pw@127.0.0.1:1/ledger")
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            check_migrated(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert message.startswith("database postgresql+psycopg://dsimport:***@127.0.0.1:1/ledger is unavailable: ")
    assert "s3cr3t-pw" not in message
    assert "\n" not in message
    assert isinstance(caught.value, StoreError)


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}")  # a directory, not a file
    try:
        with pytest.raises(DatabaseUnavailableError, match="unable to open database file"):
            current_revision(engine)
    finally:
        engine.dispose()


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("postgresql+psycopg://u:pw@h:5432/db?sslmode=require") == (
        "postgresql+psycopg://u:***@h:5432/db?sslmode=require"
    )
    assert mask_url("sqlite:////var/lib/ledger.db") == "sqlite:////var/lib/ledger.db"


def test_sqlite_creates_the_parent_folder(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "ledger.db"
    upgrade(f"sqlite:///{path}")
    assert path.is_file()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_database_url: str) -> None:
    engine = make_engine(sqlite_database_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS == 30_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    # WAL is a property of the file: a plain connection sees it too.
    raw = sqlite3.connect(sqlite_database_url.removeprefix("sqlite:///"))
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def _try_write_lock(path: str) -> str | None:
    raw = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        raw.close()


def test_sqlite_sessions_take_the_write_lock_at_begin_unless_read_only(sqlite_database_url: str) -> None:
    path = sqlite_database_url.removeprefix("sqlite:///")
    engine = make_engine(sqlite_database_url)
    try:
        with make_session_factory(engine)() as session:
            session.execute(text("SELECT 1"))  # reads only, yet holds the write lock
            assert _try_write_lock(path) == "database is locked"
        assert _try_write_lock(path) is None
        with make_session_factory(engine, read_only=True)() as session:
            session.execute(text("SELECT count(*) FROM import_jobs"))
            assert _try_write_lock(path) is None
    finally:
        engine.dispose()


def test_read_only_sessions_read_while_a_writer_holds_the_lock(session_factory: sessionmaker[Session],
                                                              engine: Engine) -> None:  # fmt: skip
    with session_factory() as writer:
        add_job(writer, "k-1")
        writer.flush()
        with make_session_factory(engine, read_only=True)() as reader:
            assert reader.execute(text("SELECT count(*) FROM import_jobs")).scalar() == 0
        writer.commit()


def test_datetimes_come_back_aware_utc_whatever_zone_went_in(session_factory: sessionmaker[Session]) -> None:
    paris_noon = NOW.astimezone(timezone(timedelta(hours=2)))
    with session_factory() as session:
        job = add_job(session, "k-1", now=paris_noon, deadline_at=paris_noon + timedelta(hours=1))
        session.commit()
        job_id = job.id
    with session_factory() as session:
        loaded = get_job(session, job_id)
        assert loaded is not None
        assert loaded.created_at == NOW
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.deadline_at == NOW + timedelta(hours=1)


def test_naive_datetimes_are_refused(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, pytest.raises(StatementError, match="naive datetime"):
        create_job(
            session, kind=ImportKind.FILE, dataset_id="ds-1", params={}, idempotency_key="k", origin="test",
            deadline_at=None, now=NOW.replace(tzinfo=None),
        )  # fmt: skip
        session.flush()


def test_postgres_tables_and_version_table_live_in_the_test_schema(postgres_database_url: str) -> None:
    engine = make_engine(postgres_database_url)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            assert schema is not None and schema.startswith("test_")
            tables = conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
            ).scalars()
            assert set(tables) == LEDGER_TABLES
    finally:
        engine.dispose()


def test_migrations_ship_inside_the_package() -> None:
    location = Path(alembic_config().get_main_option("script_location") or "")
    assert location == REPO / "store" / "migrations"
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (location / name).is_file(), name
    # The .py files ship because their folders are packages (setuptools' find needs __init__.py); the template
    # because package-data names it.
    assert (location / "__init__.py").is_file()
    assert (location / "versions" / "__init__.py").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "*.mako" in pyproject["tool"]["setuptools"]["package-data"]["*"]
