"""What the command-line modules share: settings, database and client access, id validation.

Start-up stays light: a command's help, and its arguments' checks, need none of the ledger, the API client, the
settings' pydantic model or Celery, so those are imported inside the functions that use them
(tests/cli/test_startup_imports.py keeps it so; ``python -m bench.cli_startup`` measures it).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from worker.settings_error import SettingsError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from api_client import DatasetsClient
    from worker.settings import Settings


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


class DatasetRefParam(click.ParamType[str, Any]):
    """A dataset: its UUID (written the canonical way) or its workspace-scoped slug, which the API takes wherever
    a dataset id goes. Anything else is refused here, in one line saying what a reference looks like."""

    name = "DATASET"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        # The help then reads "--dataset UUID|SLUG": the option's own text need not say it.
        return "UUID|SLUG"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from api_client.dataset_refs import parse_dataset_ref

        try:
            return parse_dataset_ref(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DATASET = DatasetRefParam()


class MomentParam(click.ParamType[datetime, Any]):
    """A date and time in ISO-8601; one without an offset is read as UTC, like every time this service handles."""

    name = "TIME"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            except ValueError:
                self.fail(f"{value!r} is not an ISO-8601 date and time", param, ctx)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


MOMENT = MomentParam()


def parse_json_option(text: str, param_hint: str) -> Any:
    """``text`` read as JSON, or :class:`click.BadParameter` saying in one line why it is not."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=param_hint) from None
    except ValueError as exc:  # an integer of more than 4,300 digits; the message's first clause says so
        raise click.BadParameter(f"not valid JSON: {str(exc).split(':')[0]}", param_hint=param_hint) from None
    except RecursionError:
        raise click.BadParameter("not valid JSON: nested too deeply", param_hint=param_hint) from None


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses NaN, which compares false with both bounds and so passes."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class LazyChoice(click.Choice[str]):
    """A :class:`click.Choice` whose choices are read on first use (parsing a value, or the command's own help):
    they come from a module that listing the command in its group's help must not load (the ledger's statuses)."""

    def __init__(self, choices: Callable[[], Iterable[str]], *, case_sensitive: bool = True) -> None:
        self._read = choices
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:
        if self._choices is None:
            self._choices = tuple(self._read())
        return self._choices

    @choices.setter
    def choices(self, value: tuple[str, ...]) -> None:
        self._choices = tuple(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def settings_or_fail(*, stack_file: bool = True) -> Settings:
    """The settings, or one line saying what is wrong; ``stack_file=False``: without a running stack's file."""
    from worker.settings import load_settings

    try:
        return load_settings(stack_file=stack_file)
    except SettingsError as exc:
        raise CommandFailed(str(exc)) from None


def lazy_settings() -> Callable[[], Settings]:
    """:func:`settings_or_fail`, read on the first call only: a command checks its arguments before the settings."""
    return cache(settings_or_fail)


def ledger(settings: Settings, *, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory on a migrated ledger, or one line saying what to fix.

    ``read_only`` sessions do not take SQLite's write lock, so listings never wait behind the workers.
    """
    from store.db import check_migrated, make_engine, make_session_factory
    from store.errors import StoreError

    try:
        engine = make_engine(settings.database_url, **settings.engine_options())
        check_migrated(engine)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    return make_session_factory(engine, read_only=read_only)


def check_ledger(settings: Settings) -> None:
    """Refuse an unreachable or unmigrated ledger with one line saying what to do; keep no connection open."""
    from store.db import check_migrated, make_engine
    from store.errors import StoreError

    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        engine.dispose()


@contextmanager
def ledger_sessions(settings: Settings, *, read_only: bool = False) -> Iterator[sessionmaker[Session]]:
    """:func:`ledger`, with the engine's connections closed on the way out (PostgreSQL counts them)."""
    sessions = ledger(settings, read_only=read_only)
    try:
        yield sessions
    finally:
        sessions.kw["bind"].dispose()


def api_client(settings: Settings) -> DatasetsClient:
    from api_client import DatasetsClient, RetryPolicy

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


def records_of_dataset(settings: Settings, dataset_id: str) -> list[str]:
    """The ids of every record of ``dataset_id`` (``--from-dataset``: a copy of all of them)."""
    from api_client import ApiError

    with api_client(settings) as client:
        try:
            ids = [record.id for record in client.iter_records(dataset_id)]
        except ApiError as exc:
            raise CommandFailed(f"cannot list the records of {dataset_id}: {exc}") from None
    if not ids:
        raise CommandFailed(f"dataset {dataset_id} has no records to copy")
    return ids


def upload_file(settings: Settings, path: Path, *, param_hint: str = "--path") -> str:
    """The id of ``path`` once uploaded (``--path``: a local file is uploaded, then imported)."""
    from api_client import ApiError

    try:
        content = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=param_hint) from None
    if not content.strip():
        raise click.BadParameter(f"{path} is empty", param_hint=param_hint)
    with api_client(settings) as client:
        try:
            uploaded = client.upload_file(path.name, content).id
        except ApiError as exc:
            raise CommandFailed(f"upload of {path} failed: {exc}") from None
    click.echo(f"uploaded {path} as file {uploaded}", err=True)
    return uploaded


@contextmanager
def open_ledger(settings: Settings, *, read_only: bool = False) -> Iterator[sessionmaker[Session]]:
    """Sessions on the migrated ledger; the engine's connections are closed on the way out."""
    sessions = ledger(settings, read_only=read_only)
    try:
        yield sessions
    finally:
        sessions.kw["bind"].dispose()
