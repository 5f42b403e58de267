"""``dsimport import KIND``: request an import of each kind, optionally following it to its end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.common import (
    DATASET,
    UUID,
    CommandFailed,
    dataset_record_ids,
    file_id_to_import,
    ledger_sessions,
    settings_or_fail,
    utcnow,
)
from jobs.request_import import InvalidImportRequest, check_idempotency_key, request_import, validate_params
from store.errors import StoreError
from store.jobs import get_job
from store.models import TERMINAL_JOB_STATUSES, ImportKind, JobStatus
from worker.settings import Settings


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--dataset", "dataset_id", type=DATASET, required=True, help="Target dataset id.")(func)
    func = click.option(
        "--key",
        "idempotency_key",
        default=None,
        help="Idempotency key: a second request with the same key returns the same job.",
    )(func)
    func = click.option("--wait", is_flag=True, help="Follow the job until it ends; exit 1 unless COMPLETED.")(func)
    return func


@click.group()
def import_group() -> None:
    """Request an import into a dataset; prints the job id."""


@import_group.command("campaign")
@_common
@click.option("--campaign", "campaign_id", type=UUID, required=True, help="Campaign whose selected events to import.")
def import_campaign(dataset_id: str, idempotency_key: str | None, wait: bool, campaign_id: str) -> None:
    """Import a campaign's selected completion events."""
    _run(ImportKind.CAMPAIGN, dataset_id, {"campaign_id": campaign_id}, idempotency_key, wait)


@import_group.command("explorer")
@_common
@click.option("--event", "event_ids", multiple=True, required=True, help="Completion event id (repeatable).")
def import_explorer(dataset_id: str, idempotency_key: str | None, wait: bool, event_ids: tuple[str, ...]) -> None:
    """Import chat-completion events from the explorer."""
    _run(ImportKind.EXPLORER, dataset_id, {"completion_event_ids": list(event_ids)}, idempotency_key, wait)


@import_group.command("file")
@_common
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL file to upload, then import.",
)
@click.option("--file-id", "file_id", default=None, help="Id of a file already uploaded.")
def import_file(
    dataset_id: str, idempotency_key: str | None, wait: bool, path: Path | None, file_id: str | None
) -> None:
    """Import a JSONL file (uploaded first with --path, or already uploaded with --file-id)."""
    settings = settings_or_fail()
    file_id = file_id_to_import(settings, path, file_id)
    _run(ImportKind.FILE, dataset_id, {"file_id": file_id}, idempotency_key, wait, settings=settings)


@import_group.command("playground")
@_common
@click.option(
    "--conversation",
    "conversation_ids",
    multiple=True,
    required=True,
    help="Playground conversation id (repeatable).",
)
def import_playground(
    dataset_id: str, idempotency_key: str | None, wait: bool, conversation_ids: tuple[str, ...]
) -> None:
    """Import playground conversations."""
    _run(ImportKind.PLAYGROUND, dataset_id, {"conversation_ids": list(conversation_ids)}, idempotency_key, wait)


@import_group.command("dataset")
@_common
@click.option("--record", "record_ids", multiple=True, type=UUID, help="Dataset record id (repeatable).")
@click.option("--from-dataset", "from_dataset", type=DATASET, default=None, help="Take all records of this dataset.")
def import_dataset(
    dataset_id: str,
    idempotency_key: str | None,
    wait: bool,
    record_ids: tuple[str, ...],
    from_dataset: str | None,
) -> None:
    """Copy records of another dataset (named one by one, or all of one dataset)."""
    settings = settings_or_fail()
    ids = dataset_record_ids(settings, record_ids, from_dataset)
    _run(ImportKind.DATASET, dataset_id, {"dataset_record_ids": ids}, idempotency_key, wait, settings=settings)


def _run(
    kind: ImportKind,
    dataset_id: str,
    params: dict[str, Any],
    idempotency_key: str | None,
    wait: bool,
    *,
    settings: Settings | None = None,
) -> None:
    # What the request itself gets wrong is a bad argument, said before the ledger is opened.
    try:
        validate_params(kind, params)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
    except InvalidImportRequest as exc:
        raise click.UsageError(str(exc)) from None
    settings = settings or settings_or_fail()
    from worker.celery_app import create_app

    with ledger_sessions(settings) as sessions:
        app = create_app(settings)

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
