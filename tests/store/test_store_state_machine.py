"""The job state machine: the transition table, what a transition does to a job, remote status mapping."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from store.errors import InvalidTransition, JobAlreadyFinishedError, StoreError
from store.models import ACTIVE_JOB_STATUSES, TERMINAL_JOB_STATUSES, ImportJob, ImportKind, JobStatus
from store.state_machine import (
    ALLOWED_TRANSITIONS,
    apply_transition,
    check_transition,
    record_progress,
    remote_to_job_status,
)

from .conftest import NOW

S = JobStatus
REMOTE_ENDINGS = {S.COMPLETED, S.FAILED, S.CANCELED, S.TERMINATED, S.TIMED_OUT}

# Written out independently of the implementation: this is the specification the table must match.
EXPECTED: dict[JobStatus, set[JobStatus]] = {
    # COMPLETED and FAILED without a POST: --skip-existing found nothing new, or could not check.
    S.PENDING: {S.SUBMITTING, S.EXPIRED, S.CANCELLED_LOCALLY, S.COMPLETED, S.FAILED},
    S.SUBMITTING: {S.RUNNING, S.PENDING, S.REJECTED, S.EXPIRED, S.CANCELLED_LOCALLY} | REMOTE_ENDINGS,
    S.RUNNING: {S.LOST, S.EXPIRED, S.CANCELLED_LOCALLY} | REMOTE_ENDINGS,
}


def job_in(status: JobStatus, **fields: object) -> ImportJob:
    job = ImportJob(
        id="job-1",
        kind=ImportKind.FILE,
        dataset_id="ds-1",
        params={"file_id": "f-1"},
        idempotency_key="k",
        origin="test",
        status=status,
        created_at=NOW - timedelta(minutes=1),
        updated_at=NOW - timedelta(minutes=1),
    )
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def test_the_twelve_statuses_and_which_are_terminal() -> None:
    assert {s.value for s in JobStatus} == {
        "PENDING", "SUBMITTING", "RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT",
        "REJECTED", "LOST", "EXPIRED", "CANCELLED_LOCALLY",
    }  # fmt: skip
    assert TERMINAL_JOB_STATUSES == REMOTE_ENDINGS | {S.REJECTED, S.LOST, S.EXPIRED, S.CANCELLED_LOCALLY}
    assert ACTIVE_JOB_STATUSES == {S.PENDING, S.SUBMITTING, S.RUNNING}
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(JobStatus, JobStatus)), ids=str)
def test_transition_table_matches_the_specification(old: JobStatus, new: JobStatus) -> None:
    allowed = new in EXPECTED.get(old, set())
    assert (new in ALLOWED_TRANSITIONS[old]) is allowed
    if allowed:
        check_transition("job-1", old, new)
        return
    with pytest.raises(InvalidTransition) as caught:
        check_transition("job-1", old, new)
    assert isinstance(caught.value, StoreError)
    assert (caught.value.old, caught.value.new, caught.value.job_id) == (old, new, "job-1")
    assert isinstance(caught.value, JobAlreadyFinishedError) is (old in TERMINAL_JOB_STATUSES)


def test_invalid_transition_messages_name_the_job_and_the_statuses() -> None:
    with pytest.raises(InvalidTransition, match=r"^job job-1: cannot go from PENDING to RUNNING$"):
        check_transition("job-1", S.PENDING, S.RUNNING)
    with pytest.raises(JobAlreadyFinishedError, match=r"^job job-1 already finished as COMPLETED$"):
        check_transition("job-1", S.COMPLETED, S.CANCELLED_LOCALLY)


def test_terminal_transition_sets_finished_at_drops_lease_and_schedule_and_builds_the_event() -> None:
    job = job_in(S.RUNNING, progress=40, message="copying", lease_owner="w1", lease_expires_at=NOW,
                 next_poll_at=NOW, remote_task_id="t-1")  # fmt: skip
    event = apply_transition(job, S.COMPLETED, now=NOW, progress=100, message="done")
    assert (job.status, job.finished_at, job.updated_at) == (S.COMPLETED, NOW, NOW)
    assert (job.progress, job.message) == (100, "done")
    assert (job.lease_owner, job.lease_expires_at, job.next_poll_at) == (None, None, None)
    assert (event.job_id, event.at, event.old_status, event.new_status) == ("job-1", NOW, S.RUNNING, S.COMPLETED)
    assert (event.progress, event.message) == (100, "done")


def test_unknown_progress_does_not_overwrite_a_known_one() -> None:
    job = job_in(S.RUNNING, progress=40, message="copying")
    event = apply_transition(job, S.LOST, now=NOW, message="gone")
    assert job.progress == 40
    assert event.progress == 40
    assert job.message == "gone"


def test_entering_running_makes_the_job_due_unless_already_scheduled() -> None:
    fresh = job_in(S.SUBMITTING)
    apply_transition(fresh, S.RUNNING, now=NOW)
    assert fresh.next_poll_at == NOW
    assert fresh.finished_at is None

    scheduled = job_in(S.SUBMITTING, next_poll_at=NOW + timedelta(seconds=5))
    apply_transition(scheduled, S.RUNNING, now=NOW)
    assert scheduled.next_poll_at == NOW + timedelta(seconds=5)


def test_going_back_to_pending_drops_the_submit_lease() -> None:
    job = job_in(S.SUBMITTING, lease_owner="w1", lease_expires_at=NOW + timedelta(seconds=30))
    event = apply_transition(job, S.PENDING, now=NOW, message="retry")
    assert (job.status, job.lease_owner, job.lease_expires_at, job.finished_at) == (S.PENDING, None, None, None)
    assert (event.old_status, event.new_status) == (S.SUBMITTING, S.PENDING)


def test_a_refused_transition_changes_nothing() -> None:
    job = job_in(S.COMPLETED, progress=100, finished_at=NOW)
    with pytest.raises(JobAlreadyFinishedError):
        apply_transition(job, S.CANCELLED_LOCALLY, now=NOW + timedelta(seconds=1), progress=5, message="x")
    assert (job.status, job.progress, job.message, job.finished_at) == (S.COMPLETED, 100, None, NOW)


def test_same_status_is_not_a_transition_but_progress_is_recorded_without_an_event() -> None:
    job = job_in(S.RUNNING, progress=10)
    with pytest.raises(InvalidTransition):
        apply_transition(job, S.RUNNING, now=NOW)
    assert record_progress(job, now=NOW, progress=20, message="half") is True
    assert (job.progress, job.message, job.updated_at) == (20, "half", NOW)
    assert record_progress(job, now=NOW, progress=20) is False
    assert record_progress(job, now=NOW, progress=None) is False
    assert job.progress == 20


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("COMPLETED", S.COMPLETED),
        ("FAILED", S.FAILED),
        ("CANCELED", S.CANCELED),
        ("TERMINATED", S.TERMINATED),
        ("TIMED_OUT", S.TIMED_OUT),
        ("RUNNING", None),
        ("CONTINUED_AS_NEW", None),
        ("UNKNOWN", None),
        ("PENDING", None),
        ("QUEUED_FOR_LATER", None),
        ("completed", None),
        ("", None),
        ("REJECTED", None),
        ("CANCELLED_LOCALLY", None),
    ],
)
def test_remote_to_job_status_maps_only_remote_terminal_statuses(remote: str, expected: JobStatus | None) -> None:
    assert remote_to_job_status(remote) is expected
