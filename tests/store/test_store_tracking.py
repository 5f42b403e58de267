"""Recording what the API said: submit accepted or failed, and each poll's answer."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from store.errors import InvalidTransition, JobAlreadyFinishedError
from store.models import ImportJob, ImportKind, JobStatus
from store.tracking import ImportCounts, PollRecord, record_poll, record_submit_accepted, record_submit_failed

from .conftest import NOW, POLICY, at

S = JobStatus


def job_in(status: JobStatus, **fields: object) -> ImportJob:
    job = ImportJob(
        id="job-1",
        kind=ImportKind.DATASET,
        dataset_id="ds-1",
        params={"source_dataset_id": "ds-0"},
        idempotency_key="k",
        origin="test",
        status=status,
        poll_count=0,
        attempts=1,
        created_at=NOW - timedelta(minutes=1),
        updated_at=NOW - timedelta(minutes=1),
    )
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def submitting() -> ImportJob:
    return job_in(S.SUBMITTING, lease_owner="w1", lease_expires_at=at(30), submit_started_at=NOW)


def running(**fields: object) -> ImportJob:
    base: dict[str, object] = {
        "remote_task_id": "t-1", "remote_status": "RUNNING", "remote_status_since": NOW, "progress": 10,
        "poll_interval_s": 2.0, "next_poll_at": NOW, "lease_owner": "p1", "lease_expires_at": at(60),
    }  # fmt: skip
    return job_in(S.RUNNING, **(base | fields))


def poll(
    job: ImportJob,
    remote_status: str,
    progress: int | None = None,
    message: str | None = None,
    counts: ImportCounts | None = None,
) -> PollRecord:
    return record_poll(
        job, remote_status=remote_status, progress=progress, message=message, now=at(10), policy=POLICY,
        rng=random.Random(0), counts=counts,
    )  # fmt: skip


def test_accepted_submit_becomes_running_with_its_first_poll_scheduled() -> None:
    job = submitting()
    event = record_submit_accepted(
        job, remote_task_id="t-1", remote_status="RUNNING", progress=None, message=None, now=NOW,
        policy=POLICY, rng=random.Random(0),
    )  # fmt: skip
    assert (event.old_status, event.new_status) == (S.SUBMITTING, S.RUNNING)
    assert (job.status, job.remote_task_id, job.submitted_at) == (S.RUNNING, "t-1", NOW)
    assert (job.remote_status, job.remote_status_since) == ("RUNNING", NOW)
    assert (job.next_poll_at, job.poll_interval_s) == (at(POLICY.initial_interval_s), POLICY.initial_interval_s)
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert job.progress is None


def test_accepted_submit_whose_task_already_ended_goes_straight_to_the_end() -> None:
    job = submitting()
    event = record_submit_accepted(
        job, remote_task_id="t-1", remote_status="COMPLETED", progress=100, message="done", now=NOW,
        policy=POLICY, rng=random.Random(0), counts=ImportCounts(requested=3, imported=2, skipped=1),
    )  # fmt: skip
    assert (event.old_status, event.new_status) == (S.SUBMITTING, S.COMPLETED)
    assert (job.finished_at, job.next_poll_at, job.lease_owner) == (NOW, None, None)
    assert (job.requested_count, job.imported_count, job.skipped_count) == (3, 2, 1)


def test_accepted_submit_for_a_job_cancelled_meanwhile_is_refused_untouched() -> None:
    job = job_in(S.CANCELLED_LOCALLY, finished_at=NOW)
    with pytest.raises(JobAlreadyFinishedError):
        record_submit_accepted(
            job, remote_task_id="t-1", remote_status="RUNNING", progress=None, message=None, now=NOW,
            policy=POLICY, rng=random.Random(0),
        )  # fmt: skip
    assert job.remote_task_id is None


def test_retryable_submit_failure_goes_back_to_pending() -> None:
    job = submitting()
    event = record_submit_failed(job, error="503 from API", retryable=True, now=NOW)
    assert (event.old_status, event.new_status) == (S.SUBMITTING, S.PENDING)
    assert (job.status, job.last_error, job.error_code, job.lease_owner) == (S.PENDING, "503 from API", None, None)


def test_refused_submit_is_rejected_with_its_error_code() -> None:
    job = submitting()
    event = record_submit_failed(
        job, error="Dataset not found", retryable=False, now=NOW, error_code="DATASET_NOT_FOUND"
    )
    assert event.new_status is S.REJECTED
    assert (job.status, job.error_code, job.message, job.finished_at) == (
        S.REJECTED, "DATASET_NOT_FOUND", "Dataset not found", NOW,
    )  # fmt: skip


def test_poll_without_movement_backs_off_and_releases_the_lease() -> None:
    job = running()
    record = poll(job, "RUNNING", progress=10)
    assert (record.event, record.moved, record.finished) == (None, False, False)
    assert (job.poll_interval_s, job.next_poll_at) == (4.0, at(14))
    assert (job.lease_owner, job.lease_expires_at, job.poll_count) == (None, None, 1)
    assert job.remote_status_since == NOW


def test_poll_with_progress_resets_the_backoff() -> None:
    job = running(poll_interval_s=8.0)
    record = poll(job, "RUNNING", progress=55, message="halfway")
    assert record.moved and not record.finished
    assert (job.progress, job.message, job.poll_interval_s, job.next_poll_at) == (55, "halfway", 1.0, at(11))


def test_unreported_progress_keeps_the_last_known_value() -> None:
    job = running(progress=30)
    poll(job, "RUNNING", progress=None)
    assert job.progress == 30


@pytest.mark.parametrize("remote", ["UNKNOWN", "CONTINUED_AS_NEW", "SOMETHING_NEW"])
def test_non_terminal_remote_statuses_keep_the_job_running_and_record_the_raw_status(remote: str) -> None:
    job = running()
    record = poll(job, remote)
    assert job.status is S.RUNNING and not record.finished
    assert (job.remote_status, job.remote_status_since) == (remote, at(10))
    assert record.moved  # a status change counts as movement
    record = poll(job, remote)
    assert job.remote_status_since == at(10)  # unchanged raw status keeps its "since"
    assert not record.moved


@pytest.mark.parametrize("remote", ["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"])
def test_terminal_remote_status_ends_the_job(remote: str) -> None:
    job = running()
    record = poll(job, remote, progress=100, message="the end", counts=ImportCounts(imported=5))
    assert record.finished and record.event is not None
    assert (record.event.old_status, record.event.new_status) == (S.RUNNING, S(remote))
    assert (job.status, job.finished_at, job.next_poll_at, job.lease_owner) == (S(remote), at(10), None, None)
    assert (job.imported_count, job.requested_count, job.message) == (5, None, "the end")


def test_poll_for_a_job_no_longer_running_is_refused() -> None:
    with pytest.raises(JobAlreadyFinishedError):
        poll(job_in(S.CANCELLED_LOCALLY), "RUNNING")
    with pytest.raises(InvalidTransition):
        poll(job_in(S.PENDING), "RUNNING")
