"""The API's bodies as pydantic models: what the handlers answer with, and what the OpenAPI document describes.

Answers are built through these models (``model_dump(mode="json")``), so the document cannot drift from them.
Times are ISO-8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from store.models import ImportJob, JobEvent

__all__ = [
    "ErrorAnswer",
    "ErrorBody",
    "EventOut",
    "ImportAnswer",
    "JobDetailOut",
    "JobOut",
    "JobPage",
    "RunNowAnswer",
    "ScheduleCreate",
    "ScheduleList",
    "ScheduleOut",
    "ScheduleRunOut",
]


class _Answer(BaseModel):
    # additionalProperties false in the document: an answer holding a field the document does not name fails the
    # contract tests, and a view that grows a field must be described here first.
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Answer):
    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(description="Stable for programs: invalid_request, not_found, conflict, ...")
    message: str = Field(description="One line for people.")
    details: list[Any] = Field(description="What was wrong, item by item (may be empty).")


class ErrorAnswer(_Answer):
    """Every error the API answers has this shape."""

    error: ErrorBody


class EventOut(_Answer):
    at: datetime
    old_status: str | None
    new_status: str
    progress: int | None
    message: str | None

    @classmethod
    def of(cls, event: JobEvent) -> EventOut:
        return cls(
            at=event.at,
            old_status=None if event.old_status is None else str(event.old_status),
            new_status=str(event.new_status),
            progress=event.progress,
            message=event.message,
        )


class JobOut(_Answer):
    """One import job, as the ledger holds it."""

    id: str
    kind: str
    dataset_id: str
    params: dict[str, Any] = Field(description="The import's body fields.")
    status: str
    terminal: bool = Field(description="True once the job has ended (whatever the outcome).")
    origin: str = Field(description="What requested it: api:<token name>, cli, schedule:<name>, a stream, ...")
    idempotency_key: str
    remote_task_id: str | None
    remote_status: str | None
    progress: int | None
    message: str | None
    error_code: str | None
    last_error: str | None
    requested_count: int | None
    imported_count: int | None
    skipped_count: int | None
    duplicates_skipped: int | None
    skip_existing: bool
    sampled_out: int | None
    partial: bool
    attempts: int
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    deadline_at: datetime | None

    @classmethod
    def of(cls, job: ImportJob) -> JobOut:
        return cls(**cls._fields_of(job))

    @classmethod
    def _fields_of(cls, job: ImportJob) -> dict[str, Any]:
        return {
            "id": job.id,
            "kind": str(job.kind),
            "dataset_id": job.dataset_id,
            "params": job.params,
            "status": str(job.status),
            "terminal": job.is_terminal,
            "origin": job.origin,
            "idempotency_key": job.idempotency_key,
            "remote_task_id": job.remote_task_id,
            "remote_status": job.remote_status,
            "progress": job.progress,
            "message": job.message,
            "error_code": job.error_code,
            "last_error": job.last_error,
            "requested_count": job.requested_count,
            "imported_count": job.imported_count,
            "skipped_count": job.skipped_count,
            "duplicates_skipped": job.duplicates_skipped,
            "skip_existing": job.skip_existing,
            "sampled_out": job.sampled_out,
            "partial": job.partial,
            "attempts": job.attempts,
            "created_at": job.created_at,
            "submitted_at": job.submitted_at,
            "finished_at": job.finished_at,
            "updated_at": job.updated_at,
            "deadline_at": job.deadline_at,
        }


class JobDetailOut(JobOut):
    """One job with its history: every status change, oldest first."""

    events: list[EventOut]

    @classmethod
    def with_events(cls, job: ImportJob, events: list[JobEvent]) -> JobDetailOut:
        return cls(**cls._fields_of(job), events=[EventOut.of(event) for event in events])


class JobPage(_Answer):
    """One page of jobs, newest first; ``next_cursor`` asks for the next (older) page, null on the last."""

    jobs: list[JobOut]
    next_cursor: str | None


class ImportAnswer(_Answer):
    """The job of a request: ``created`` false when the idempotency key had been used already (status 200)."""

    created: bool
    job: JobOut


class ScheduleRunJob(_Answer):
    id: str
    status: str
    progress: int | None
    imported: int | None


class ScheduleRunOut(_Answer):
    fire_time: str | None
    trigger: str
    status: str
    started_at: str | None
    finished_at: str | None
    items: int | None
    offered: int | None = Field(
        description="Distinct items the fire's search or listing offered (window and copy kinds)."
    )
    sampled_out: int | None = Field(description="How many of the offered items the schedule's sample rate left out.")
    window_start: str | None
    window_end: str | None
    message: str | None
    backfill_id: int | None = Field(description="The backfill this run is a chunk of; null for a fire.")
    jobs: list[ScheduleRunJob]


class ScheduleOut(_Answer):
    """A schedule, as `dsimport schedules list --json` shows it."""

    name: str
    kind: str = Field(description="An import kind (a plain schedule) or a schedule kind such as explorer-window.")
    timing: str
    cron: str | None
    every_s: int | None
    state: str = Field(description="active, paused or finished.")
    source: str = Field(description="cli (the command line or this API) or file (the schedules file).")
    dataset_id: str
    params: dict[str, Any]
    sample_rate: float | None = Field(
        description="Window schedules: the share of the items found that each fire imports; null imports all."
    )
    skip_existing: bool = Field(
        description="Its jobs leave out the items the target dataset holds already (by payload or origin)."
    )
    watermark: str | None
    watermark_lag_s: float | None = Field(
        description="Seconds the watermark of a window schedule trails the clock (null: the schedule keeps none)."
    )
    last_fire_at: str | None
    next_fire_at: str | None
    finished_at: str | None
    finished_reason: str | None
    created_at: str | None
    last_run: ScheduleRunOut | None


class ScheduleList(_Answer):
    schedules: list[ScheduleOut]


class ScheduleCreate(BaseModel):
    """A new schedule: the keys of a table of the schedules file (DSIMPORT_SCHEDULES_FILE) plus its ``name``.

    The kind's own settings sit beside the common keys, named as in the file: ``campaign`` for a campaign
    schedule, ``filter`` / ``chunk_size`` / ``since`` for explorer-window, and so on. Give one of ``cron``
    and ``every``. Not ``snapshot``: where the service writes files is set on the command line or in the file.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="1-100 letters, digits, '.', '_' or '-'.")
    kind: str = Field(description="An import kind, or explorer-window, spans-window, campaign-when-done, dataset-copy.")
    dataset: str = Field(description="The target dataset: its UUID or its slug.")
    cron: str | None = Field(default=None, description='A cron expression in UTC, e.g. "0 * * * *".')
    every: str | int | None = Field(default=None, description="A period aligned to the epoch: 30s, 10m, 1h30m, 1d.")
    paused: bool = False


class RunNowAnswer(_Answer):
    """The fire sent to a worker: it runs like a beat fire (a paused schedule too)."""

    name: str
    fire_time: str
