"""``dsimport worker``, ``dsimport beat`` and ``dsimport db``: the long-running processes and the schema.

Before a process starts, the preflight checks what would otherwise fail later and less clearly (an unreachable
broker, an unmigrated database, a missing key) and stops with one line that says what to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.common import CommandFailed, check_ledger, settings_or_fail
from cli.db_commands import prune_command
from cli.schedules_commands import check_schedules_file
from worker.settings_error import SettingsError

# The ledger's migrations, the broker check and Celery are imported by the commands that use them: the help loads
# none of them.
if TYPE_CHECKING:
    from worker.settings import Settings

_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def preflight(settings: Settings, *, needs_api_key: bool) -> None:
    from worker.preflight import check_broker

    check_ledger(settings)
    if needs_api_key:
        try:
            settings.require_api_key()
        except SettingsError as exc:
            raise CommandFailed(str(exc)) from None
    problem = check_broker(settings.broker_url)
    if problem is not None:
        raise CommandFailed(problem)


def _with_default(args: list[str], flag: str, short: str | None, value: str) -> list[str]:
    present = any(
        a == flag or a.startswith(flag + "=") or (short is not None and a.startswith(short)) for a in args
    )
    return args if present else [*args, flag, value]


@click.command(context_settings=_PASSTHROUGH)
@click.pass_context
def worker_command(ctx: click.Context) -> None:
    """Run a Celery worker; Celery's worker options pass through (e.g. --concurrency 4 --pool threads)."""
    if "--help" in ctx.args or "-h" in ctx.args:
        click.echo(
            "Usage: dsimport worker [CELERY WORKER OPTIONS]\n\nRuns `celery worker` on the dsimport app."
        )
        return
    settings = settings_or_fail()
    preflight(settings, needs_api_key=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    from worker.celery_app import create_app

    app = create_app(settings)
    args = _with_default(list(ctx.args), "--loglevel", "-l", settings.log_level)
    app.worker_main(["worker", *args])


@click.command(context_settings=_PASSTHROUGH)
@click.pass_context
def beat_command(ctx: click.Context) -> None:
    """Run Celery beat: the service's periodic tasks and the schedules (see `dsimport schedules`)."""
    if "--help" in ctx.args or "-h" in ctx.args:
        click.echo(
            "Usage: dsimport beat [CELERY BEAT OPTIONS]\n\nRuns `celery beat` on the dsimport app with the ledger's "
            "schedules table (and DSIMPORT_SCHEDULES_FILE, when set).\nOne beat is enough; a second one by mistake "
            "imports nothing twice."
        )
        return
    settings = settings_or_fail()
    check_schedules_file(settings)
    preflight(settings, needs_api_key=False)
    settings.home.mkdir(parents=True, exist_ok=True)
    from worker.celery_app import create_app

    app = create_app(settings)
    args = _with_default(list(ctx.args), "--loglevel", "-l", settings.log_level)
    app.start(["beat", *args])


@click.group()
def db_group() -> None:
    """Ledger schema and retention: apply and inspect migrations, prune old rows."""


db_group.add_command(prune_command)


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the ledger at DSIMPORT_DATABASE_URL."""
    from store.db import head_revision, upgrade
    from store.errors import StoreError
    from worker.settings import mask_url

    settings = settings_or_fail()
    try:
        upgrade(settings.database_url)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"{mask_url(settings.database_url)} is at {head_revision()}")


@db_group.command("current")
def db_current() -> None:
    """Print the ledger's migration revision and the newest one."""
    from store.db import current_revision, head_revision, make_engine
    from store.errors import StoreError

    settings = settings_or_fail()
    engine = make_engine(settings.database_url)
    try:
        revision = current_revision(engine)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"current: {revision or 'none'}  head: {head_revision()}")


@click.command()
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes."
)
def up_command(concurrency: int) -> int:
    """Run the whole local stack (emulator when no key, Redis if none answers, worker, beat, Flower, jobs page)."""
    from cli.local_stack.launcher import run_stack

    # `up` starts from the environment alone: it is the stack the others find, not one of them.
    return run_stack(
        settings_or_fail(stack_file=False),
        worker_concurrency=concurrency,
        echo=click.echo,
        fail=lambda line: click.echo(line, err=True),
    )
