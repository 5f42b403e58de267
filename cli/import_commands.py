"""``dsimport import KIND``: request an import of each kind, optionally following it to its end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cli.common import DATASET, CommandFailed, lazy_settings, ledger_sessions, utcnow
from cli.filter_import import refuse_search_options, run_search_import, search_options
from cli.kind_options import chosen_search, kind_commands, source_params
from import_kinds import CommandGroup, ImportKind, ImportKindSpec

# The ledger and Celery are imported by the command that records and sends: the help loads neither.
if TYPE_CHECKING:
    from worker.settings import Settings


def _common() -> list[click.Parameter]:
    return [
        click.Option(["--wait"], is_flag=True, help="Follow the job until it ends; exit 1 unless COMPLETED."),
        click.Option(
            ["--key", "idempotency_key"],
            default=None,
            help="Idempotency key: a second request with the same key returns the same job (with --filter: the base of "
            "each chunk's key, BASE:N).",
        ),
        click.Option(["--dataset", "dataset_id"], type=DATASET, required=True, help="Target dataset id."),
        click.Option(
            ["--skip-existing"],
            is_flag=True,
            help="Leave out, before importing, the items the dataset already holds (same payload, or the same "
            "event, conversation or span); the job counts them as duplicates skipped.",
        ),
    ]


@click.group()
def import_group() -> None:
    """Request an import into a dataset; prints the job id."""


def _import(spec: ImportKindSpec, values: dict[str, Any]) -> None:
    settings = lazy_settings()
    search = chosen_search(spec, values)
    if search is not None:
        run_search_import(spec, search, values, settings)
        return
    refuse_search_options(spec, values)
    params = source_params(spec, values, settings)
    _run(
        ImportKind(spec.name),
        values["dataset_id"],
        params,
        values["idempotency_key"],
        values["wait"],
        settings,
        skip_existing=values["skip_existing"],
    )


for _command in kind_commands(CommandGroup.IMPORT, _common, _import, search_options):
    import_group.add_command(_command)


def _run(
    kind: ImportKind,
    dataset_id: str,
    params: dict[str, Any],
    idempotency_key: str | None,
    wait: bool,
    lazy: Callable[[], Settings],
    *,
    skip_existing: bool = False,
) -> None:
    from jobs.request_import import InvalidImportRequest, check_idempotency_key, request_import, validate_params
    from store.errors import StoreError
    from store.models import JobStatus

    # What the request itself gets wrong is a bad argument, said before the ledger is opened.
    try:
        validate_params(kind, params)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
    except InvalidImportRequest as exc:
        raise click.UsageError(str(exc)) from None
    settings = lazy()
    from worker.celery_app import sender_app

    with ledger_sessions(settings) as sessions:
        app = sender_app(settings)

        def send(job_id: str) -> None:
            app.send_task("dsimport.submit", args=[job_id])

        try:
            requested = request_import(
                sessions,
                kind=kind,
                dataset_id=dataset_id,
                params=params,
                origin="cli",
                now=utcnow(),
                deadline_s=settings.job_deadline_s,
                send=send,
                idempotency_key=idempotency_key,
                skip_existing=skip_existing,
            )
        except InvalidImportRequest as exc:
            raise click.UsageError(str(exc)) from None
        except StoreError as exc:  # the ledger stayed locked past DSIMPORT_DB_LOCKED_RETRY_S: nothing was recorded
            raise CommandFailed(str(exc)) from None
        finally:
            app.close()
    click.echo(requested.job_id)
    if not requested.created:
        click.echo(f"an import with this key exists already ({requested.status})", err=True)
    if wait:
        with ledger_sessions(settings, read_only=True) as sessions:
            status = follow(sessions, requested.job_id)
        if status != JobStatus.COMPLETED:
            raise CommandFailed(f"job {requested.job_id} ended {status}")


def follow(sessions: Any, job_id: str, *, interval_s: float = 0.5) -> str:
    """Show a job's progress until it ends; returns its final status."""
    from store.jobs import get_job
    from store.models import TERMINAL_JOB_STATUSES

    tty = sys.stderr.isatty()
    last = ""
    while True:
        with sessions() as session:
            job = get_job(session, job_id)
            assert job is not None
            status, progress, message = str(job.status), job.progress, job.message
            ended = job.status in TERMINAL_JOB_STATUSES
        line = f"{_bar(progress)} {status}" + (f" {message}" if ended and message else "")
        if line != last:
            click.echo(("\r" if tty else "") + line, err=True, nl=not tty)
            last = line
        if ended:
            if tty:
                click.echo("", err=True)
            return status
        time.sleep(interval_s)


def _bar(progress: int | None, width: int = 30) -> str:
    if progress is None:
        return "[" + "?" * width + "]    ?"
    filled = max(0, min(width, round(width * progress / 100)))
    return "[" + "#" * filled + "." * (width - filled) + f"] {progress:3d}%"
