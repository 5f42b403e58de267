"""What the command-line modules share: settings, database and client access, id validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, RetryPolicy
from store.db import check_migrated, make_engine, make_session_factory
from store.errors import StoreError

from .settings import Settings, SettingsError, load_settings


class CommandFailed(click.ClickException):
    """An operational failure, reported as one line with exit code 1."""

    exit_code = 1


class UuidParam(click.ParamType[str, Any]):
    """An id the API types as a uuid: a malformed one is refused here rather than by a 422 later."""

    name = "UUID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            self.fail(f"{value!r} is not a valid UUID", param, ctx)


UUID = UuidParam()


def utcnow() -> datetime:
    return datetime.now(UTC)


def settings_or_fail() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise CommandFailed(str(exc)) from None


def ledger(settings: Settings, *, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory on a migrated ledger, or one line saying what to fix.

    ``read_only`` sessions do not take SQLite's write lock, so listings never wait behind the workers.
    """
    try:
        engine = make_engine(settings.database_url)
        check_migrated(engine)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    return make_session_factory(engine, read_only=read_only)


def api_client(settings: Settings) -> DatasetsClient:
    try:
        key = settings.require_api_key()
    except SettingsError as exc:
        raise CommandFailed(str(exc)) from None
    return DatasetsClient(
        key,
        base_url=settings.api_base_url,
        timeout_s=settings.api_timeout_s,
        retry=RetryPolicy(max_attempts=settings.api_max_attempts),
    )
