"""``dsimport jobs``: read the ledger and stop tracking a job."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cli.common import UUID, CommandFailed, LazyChoice, ledger_sessions, settings_or_fail, utcnow
from import_kinds import ImportKind

# The ledger is imported by the commands that open it: `dsimport jobs --help` loads none of it.
if TYPE_CHECKING:
    from store.models import ImportJob, JobEvent


def _job_statuses() -> list[str]:
    from store.models import JobStatus

    return [status.value for status in JobStatus]


@click.group()
def jobs_group() -> None:
    """Inspect and cancel import jobs."""


@jobs_group.command("list")
@click.option("--status", type=LazyChoice(_job_statuses, case_sensitive=False), default=None)
@click.option("--kind", type=click.Choice([k.value for k in ImportKind]), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_command(status: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    from store.jobs import list_jobs
    from store.models import JobStatus

    with ledger_sessions(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        jobs = list_jobs(
            session,
            status=JobStatus(status.upper()) if status else None,
            kind=ImportKind(kind) if kind else None,
            limit=limit,
        )
        rows = [job_to_dict(job) for job in jobs]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'JOB':36}  {'KIND':10}  {'STATUS':17}  {'PROG':>4}  {'DATASET':36}  CREATED")
    for row in rows:
        progress = "?" if row["progress"] is None else f"{row['progress']}%"
        status = f"{row['status']} partial" if row["partial"] else row["status"]
        click.echo(
            f"{row['id']:36}  {row['kind']:10}  {status:17}  {progress:>4}  {row['dataset_id']:36}  "
            f"{row['created_at']}"
        )


@jobs_group.command("show")
@click.argument("job_id", type=UUID)
@click.option("--json", "as_json", is_flag=True)
def show_command(job_id: str, as_json: bool) -> None:
    """Show one job with its history."""
    from store.jobs import get_job, job_events
    from store.snapshots import snapshot_of_job

    with ledger_sessions(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        job = get_job(session, job_id)
        if job is None:
            raise CommandFailed(f"no job {job_id}")
        row = job_to_dict(job)
        snapshot = snapshot_of_job(session, job_id)
        if snapshot is not None:
            # Only a completed job of a schedule that takes snapshots has one.
            taken = snapshot.snapshot
            row["snapshot"] = {
                "status": str(snapshot.status),
                "attempts": snapshot.attempts,
                "error": snapshot.last_error,
                "path": None if taken is None else taken.path,
                "record_count": None if taken is None else taken.record_count,
                "sha256": None if taken is None else taken.sha256,
            }
        row["events"] = [event_to_dict(event) for event in job_events(session, job_id)]
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    for key, value in row.items():
        if key == "snapshot":
            click.echo(f"{key:18} {_snapshot_text(value)}")
        elif key != "events":
            click.echo(f"{key:18} {'' if value is None else value}")
    click.echo("events:")
    for event in row["events"]:
        progress = "" if event["progress"] is None else f" {event['progress']}%"
        message = f"  {event['message']}" if event["message"] else ""
        click.echo(
            f"  {event['at']}  {event['old_status'] or '-'} -> {event['new_status']}{progress}{message}"
        )


def _snapshot_text(snapshot: dict[str, Any]) -> str:
    if snapshot["path"] is not None:
        return f"{snapshot['path']} ({snapshot['record_count']} records, sha256 {snapshot['sha256']})"
    error = f": {snapshot['error']}" if snapshot["error"] else ""
    return f"{snapshot['status']} after {snapshot['attempts']} attempt(s){error}"


@jobs_group.command("cancel")
@click.argument("job_id", type=UUID)
def cancel_command(job_id: str) -> None:
    """Stop tracking a job (the API has no cancel: the remote import, if started, goes on)."""
    from store.errors import StoreError
    from store.jobs import cancel_job

    with ledger_sessions(settings_or_fail()) as sessions, sessions() as session:
        try:
            job = cancel_job(session, job_id, now=utcnow())
        except StoreError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
        click.echo(f"{job.id} {job.status}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def job_to_dict(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": str(job.kind),
        "dataset_id": job.dataset_id,
        "status": str(job.status),
        "progress": job.progress,
        "message": job.message,
        "error_code": job.error_code,
        "remote_task_id": job.remote_task_id,
        "remote_status": job.remote_status,
        "params": job.params,
        "origin": job.origin,
        "idempotency_key": job.idempotency_key,
        "requested_count": job.requested_count,
        "imported_count": job.imported_count,
        "skipped_count": job.skipped_count,
        "duplicates_skipped": job.duplicates_skipped,
        "sampled_out": job.sampled_out,
        "partial": job.partial,
        "attempts": job.attempts,
        "poll_count": job.poll_count,
        "last_error": job.last_error,
        "next_poll_at": _iso(job.next_poll_at),
        "deadline_at": _iso(job.deadline_at),
        "created_at": _iso(job.created_at),
        "submitted_at": _iso(job.submitted_at),
        "finished_at": _iso(job.finished_at),
    }


def event_to_dict(event: JobEvent) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "old_status": str(event.old_status) if event.old_status else None,
        "new_status": str(event.new_status),
        "progress": event.progress,
        "message": event.message,
    }
