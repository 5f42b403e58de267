"""How schedules and their runs are shown: one dict per schedule or run, used by `schedules … --json`, the
command line's tables and the HTTP API (so the three say the same thing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from store.models import ImportJob, Schedule, ScheduleBackfill, ScheduleKind, ScheduleRun
from store.schedule_backfills import BackfillTotals, chunk_count, chunks_done
from store.snapshot_models import DatasetSnapshot
from triggers.schedules.fire_times import InvalidTiming, fire_time_iso
from triggers.schedules.lag import watermark_lag_s
from triggers.schedules.specs import definition_timing

__all__ = ["backfill_to_dict", "public_kind", "run_to_dict", "schedule_to_dict", "snapshot_to_dict"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else fire_time_iso(value) if value.microsecond == 0 else value.isoformat()


def public_kind(schedule: Schedule) -> str:
    """The kind as users write it: the import kind for a plain schedule, else the schedule kind."""
    return str(schedule.import_kind) if schedule.kind == ScheduleKind.PLAIN else str(schedule.kind)


def _state(schedule: Schedule) -> str:
    if schedule.removed_at is not None:
        return "removed"
    if schedule.finished_at is not None:
        return "finished"
    return "paused" if schedule.paused else "active"


def _next_fire(schedule: Schedule, now: datetime) -> str | None:
    if _state(schedule) != "active":
        return None
    try:
        timing = definition_timing(schedule.cron, schedule.every_s)
    except InvalidTiming:
        return None
    start = max(now, schedule.fires_after, schedule.last_fire_at or schedule.fires_after)
    return fire_time_iso(timing.next_after(start))


def schedule_to_dict(
    schedule: Schedule, latest: ScheduleRun | None, jobs: dict[str, ImportJob], *, now: datetime
) -> dict[str, Any]:
    try:
        timing = definition_timing(schedule.cron, schedule.every_s).describe()
    except InvalidTiming:
        timing = f"invalid ({schedule.cron or schedule.every_s})"
    return {
        "name": schedule.name,
        "kind": public_kind(schedule),
        "timing": timing,
        "cron": schedule.cron,
        "every_s": schedule.every_s,
        "state": _state(schedule),
        "source": str(schedule.source),
        "dataset_id": schedule.dataset_id,
        "params": schedule.params,
        "sample_rate": schedule.sample_rate,
        "skip_existing": schedule.skip_existing,
        "watermark": _iso(schedule.watermark),
        "watermark_lag_s": _rounded(watermark_lag_s(schedule, now.astimezone(UTC))),
        "last_fire_at": _iso(schedule.last_fire_at),
        "next_fire_at": _next_fire(schedule, now.astimezone(UTC)),
        "finished_at": _iso(schedule.finished_at),
        "finished_reason": schedule.finished_reason,
        "created_at": _iso(schedule.created_at),
        "last_run": None if latest is None else run_to_dict(latest, jobs),
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def run_to_dict(run: ScheduleRun, jobs: dict[str, ImportJob]) -> dict[str, Any]:
    return {
        "fire_time": _iso(run.fire_time),
        "trigger": run.trigger,
        "status": str(run.status),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "items": run.item_count,
        "offered": run.offered_count,
        "sampled_out": run.sampled_out_count,
        "window_start": _iso(run.window_start),
        "window_end": _iso(run.window_end),
        "message": run.message,
        "backfill_id": run.backfill_id,
        "jobs": [_job_summary(job_id, jobs.get(job_id)) for job_id in run.job_ids or []],
    }


def _job_summary(job_id: str, job: ImportJob | None) -> dict[str, Any]:
    if job is None:
        return {"id": job_id, "status": "missing", "progress": None, "imported": None}
    return {"id": job.id, "status": str(job.status), "progress": job.progress, "imported": job.imported_count}


def backfill_to_dict(backfill: ScheduleBackfill, totals: BackfillTotals | None = None) -> dict[str, Any]:
    totals = totals or BackfillTotals()
    return {
        "id": backfill.id,
        "since": _iso(backfill.since),
        "until": _iso(backfill.until),
        "step_s": backfill.step_s,
        "cursor": _iso(backfill.cursor),
        "chunks_done": chunks_done(backfill),
        "chunks": chunk_count(backfill),
        "status": str(backfill.status),
        "created_at": _iso(backfill.created_at),
        "finished_at": _iso(backfill.finished_at),
        "message": backfill.message,
        "offered": totals.offered,
        "sampled_out": totals.sampled_out,
        "requested": totals.requested,
        "jobs": totals.jobs,
    }


def snapshot_to_dict(snapshot: DatasetSnapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "created_at": snapshot.created_at.astimezone(UTC).isoformat(),
        "dataset_id": snapshot.dataset_id,
        "path": snapshot.path,
        "record_count": snapshot.record_count,
        "sha256": snapshot.sha256,
        "bytes": snapshot.bytes,
        "job_ids": list(snapshot.job_ids),
    }
