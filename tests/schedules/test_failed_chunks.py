"""Chunks whose job failed are requested again by later fires (a bounded number of times, each retry once), then
given up visibly; campaign-when-done retries its import the same way. Without a broker, both ledgers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from sqlalchemy import select

from store.jobs import get_job_by_key, job_events, list_jobs
from store.models import ImportJob, JobStatus, RunStatus, ScheduleItem, ScheduleRun
from store.schedule_items import item_counts
from store.schedule_runs import list_runs
from store.schedules import get_schedule
from triggers.schedules.chunk_retries import CHUNK_RETRIES
from triggers.schedules.firing import FireOutcome, fire

from .conftest import CAMPAIGN, NOW, SOURCE, Harness, at

FIRST = "2026-03-01T13:00:00Z"


def _set_status(harness: Harness, job_id: str, status: JobStatus, **fields: object) -> None:
    """Stand in for the worker: the job ended with ``status``."""
    with harness.sessions() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status = status
        for name, value in fields.items():
            setattr(job, name, value)
        session.commit()


def _job(harness: Harness, key: str) -> ImportJob:
    with harness.sessions() as session:
        job = get_job_by_key(session, key)
        assert job is not None, key
        session.expunge(job)
        return job


def _items(harness: Harness) -> dict[str, tuple[str, int, bool]]:
    """item -> (job id, retries, given up)."""
    with harness.sessions() as session:
        rows = session.scalars(select(ScheduleItem))
        return {row.item_id: (row.job_id, row.retries, row.given_up_at is not None) for row in rows}


def _mirror(harness: Harness, records: int = 5) -> None:
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE, chunk_size=2)
    harness.api.records = [f"r-{n}" for n in range(records)]


def test_a_failed_chunk_is_requested_again_by_the_next_fire_under_its_retry_key(harness: Harness) -> None:
    _mirror(harness)
    first = fire(harness.context, "mirror", at(3600))
    assert len(first.job_ids) == 3
    failed = _job(harness, f"schedule:mirror:{FIRST}:0")
    _set_status(harness, failed.id, JobStatus.REJECTED)
    _set_status(harness, first.job_ids[1], JobStatus.COMPLETED)

    second = fire(harness.context, "mirror", at(7200))
    retry = _job(harness, f"schedule:mirror:{FIRST}:0:retry:1")
    assert second.outcome == FireOutcome.SUBMITTED and second.job_ids == [retry.id]
    assert retry.params == {"dataset_record_ids": ["r-0", "r-1"]}
    assert harness.sent[-1] == retry.id
    items = _items(harness)
    assert items["r-0"] == items["r-1"] == (retry.id, 1, False)
    assert items["r-2"] == (first.job_ids[1], 0, False)
    # Visible: in the run's message and in the failed job's history.
    [run] = [run for run in _runs(harness) if run.fire_time == at(7200)]
    assert run.status == RunStatus.SUBMITTED and run.job_ids == [retry.id]
    assert f"job {failed.id} ended REJECTED: retry 1 of {CHUNK_RETRIES} is job {retry.id}" in (run.message or "")
    with harness.sessions() as session:
        notes = [event.message for event in job_events(session, failed.id)]
    assert f"schedule mirror: retry 1 of {CHUNK_RETRIES} is job {retry.id}" in notes

    # The retry is still running: the next fire neither retries again nor finds anything new.
    third = fire(harness.context, "mirror", at(10800))
    assert third.outcome == FireOutcome.EMPTY
    assert len(_all_jobs(harness)) == 4


def test_after_the_last_retry_the_items_are_given_up_visibly_and_never_requested_again(harness: Harness) -> None:
    _mirror(harness, records=2)
    fire(harness.context, "mirror", at(3600))
    key = f"schedule:mirror:{FIRST}:0"
    for retry in range(1, CHUNK_RETRIES + 1):
        _set_status(harness, _job(harness, key).id, JobStatus.FAILED)
        fire(harness.context, "mirror", at(3600 * (retry + 1)))
        key = f"schedule:mirror:{FIRST}:0:retry:{retry}"
        assert _job(harness, key).params == {"dataset_record_ids": ["r-0", "r-1"]}
    last = _job(harness, key)
    _set_status(harness, last.id, JobStatus.FAILED)
    gave_up = fire(harness.context, "mirror", at(3600 * (CHUNK_RETRIES + 2)))
    assert gave_up.outcome == FireOutcome.EMPTY
    assert f"gave up on 2 item(s) of job {last.id} (FAILED, {CHUNK_RETRIES} retries)" in (gave_up.message or "")
    assert _items(harness) == {item: (last.id, CHUNK_RETRIES, True) for item in ("r-0", "r-1")}
    with harness.sessions() as session:
        schedule = get_schedule(session, "mirror")
        assert schedule is not None
        counts = item_counts(session, schedule.id)
        assert (counts.total, counts.retried, counts.given_up) == (2, 2, 2)
    assert fire(harness.context, "mirror", at(3600 * 10)).outcome == FireOutcome.EMPTY
    assert len(_all_jobs(harness)) == 1 + CHUNK_RETRIES


def test_concurrent_fires_retry_a_failed_chunk_once(harness: Harness) -> None:
    _mirror(harness, records=2)
    fire(harness.context, "mirror", at(3600))
    _set_status(harness, _job(harness, f"schedule:mirror:{FIRST}:0").id, JobStatus.LOST)
    barrier = Barrier(4)

    def go(hour: int) -> FireOutcome:
        barrier.wait(timeout=30)
        return fire(harness.context, "mirror", at(3600 * hour)).outcome

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(go, range(2, 6)))
    assert sorted(outcomes).count(FireOutcome.SUBMITTED) == 1, outcomes
    keys = sorted(job.idempotency_key for job in _all_jobs(harness))
    assert keys == [f"schedule:mirror:{FIRST}:0", f"schedule:mirror:{FIRST}:0:retry:1"]


def test_an_expired_job_that_may_have_imported_is_given_up_not_retried(harness: Harness) -> None:
    _mirror(harness, records=4)
    first = fire(harness.context, "mirror", at(3600))
    # Expired before it sent anything: safe to retry. Expired while sending: the remote import may exist.
    _set_status(harness, first.job_ids[0], JobStatus.EXPIRED)
    _set_status(harness, first.job_ids[1], JobStatus.EXPIRED, submit_started_at=at(3601))
    second = fire(harness.context, "mirror", at(7200))
    [retry] = second.job_ids
    assert _job(harness, f"schedule:mirror:{FIRST}:0:retry:1").id == retry
    items = _items(harness)
    assert items["r-0"] == (retry, 1, False)
    assert items["r-2"] == (first.job_ids[1], 0, True)
    assert "it may have imported them" in (second.message or "")


def test_explorer_window_retries_its_failed_chunks_too(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), chunk_size=10)
    harness.api.events = {"e-1": at(1), "e-2": at(2)}
    first = fire(harness.context, "win", at(60))
    _set_status(harness, first.job_ids[0], JobStatus.TIMED_OUT)
    second = fire(harness.context, "win", at(120))
    retry = _job(harness, "schedule:win:2026-03-01T12:01:00Z:0:retry:1")
    assert second.job_ids == [retry.id] and retry.params == {"completion_event_ids": ["e-1", "e-2"]}
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == at(120)


def test_campaign_when_done_retries_a_failed_import_then_finishes_with_the_reason(harness: Harness) -> None:
    harness.add("late", "campaign-when-done", every="1m", campaign=CAMPAIGN)
    key = f"schedule:late:campaign:{CAMPAIGN}"
    assert fire(harness.context, "late", at(60)).outcome == FireOutcome.SUBMITTED
    for retry in range(1, CHUNK_RETRIES + 1):
        _set_status(harness, _job(harness, key).id, JobStatus.FAILED)
        report = fire(harness.context, "late", at(60 * (retry + 1)))
        key = f"schedule:late:campaign:{CAMPAIGN}:retry:{retry}"
        assert report.outcome == FireOutcome.SUBMITTED and report.job_ids == [_job(harness, key).id]
        assert f"retry {retry} of {CHUNK_RETRIES}" in (report.message or "")
    last = _job(harness, key)
    _set_status(harness, last.id, JobStatus.REJECTED)
    final = fire(harness.context, "late", at(600))
    assert final.outcome == FireOutcome.FAILED
    reason = f"campaign {CAMPAIGN}: import job {last.id} ended REJECTED, after {CHUNK_RETRIES} retries"
    with harness.sessions() as session:
        schedule = get_schedule(session, "late")
        assert schedule is not None and schedule.finished_reason == reason
    assert fire(harness.context, "late", at(660)).outcome == FireOutcome.FINISHED
    assert len(_all_jobs(harness)) == 1 + CHUNK_RETRIES


def test_campaign_when_done_finishes_once_a_retried_import_completes(harness: Harness) -> None:
    harness.add("late", "campaign-when-done", every="1m", campaign=CAMPAIGN)
    fire(harness.context, "late", at(60))
    _set_status(harness, _job(harness, f"schedule:late:campaign:{CAMPAIGN}").id, JobStatus.LOST)
    fire(harness.context, "late", at(120))
    retry = _job(harness, f"schedule:late:campaign:{CAMPAIGN}:retry:1")
    assert fire(harness.context, "late", at(180)).outcome == FireOutcome.WAITING
    _set_status(harness, retry.id, JobStatus.COMPLETED)
    assert fire(harness.context, "late", at(240)).outcome == FireOutcome.EMPTY
    with harness.sessions() as session:
        schedule = get_schedule(session, "late")
        assert schedule is not None
        assert schedule.finished_reason == f"campaign {CAMPAIGN} completed and was imported by job {retry.id}"


def _all_jobs(harness: Harness) -> list[ImportJob]:
    with harness.sessions() as session:
        return list_jobs(session, limit=1000)


def _runs(harness: Harness) -> list[ScheduleRun]:
    with harness.sessions() as session:
        schedule = get_schedule(session, "mirror")
        assert schedule is not None
        return list(list_runs(session, schedule.id, limit=100))
