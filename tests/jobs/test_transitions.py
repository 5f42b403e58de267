"""Every transition an API answer makes (jobs.transitions, the code submit, recovery and the poller run): answers in,
job changes out, no broker, no database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from api_client import (
    ClientError,
    DatasetImportTask,
    NotFoundError,
    RateLimitedError,
    RouteNotFoundError,
    ServerError,
    TransportError,
)
from jobs import transitions
from jobs.poll_backoff import PollPolicy
from jobs.transitions import Observation, apply_observation, expire_if_past_deadline
from store.errors import JobAlreadyFinishedError
from store.models import ImportJob, ImportKind, JobStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(initial_interval_s=1.0, multiplier=2.0, max_interval_s=8.0, jitter_ratio=0.0)
NO_FORECAST = PollPolicy(
    initial_interval_s=1.0, multiplier=2.0, max_interval_s=8.0, jitter_ratio=0.0, forecast_fraction=0.0
)


def running_job(**overrides: object) -> ImportJob:
    job = ImportJob(
        id="job-1",
        kind=ImportKind.EXPLORER,
        dataset_id="ds-1",
        params={"completion_event_ids": ["e1"]},
        idempotency_key="k1",
        origin="test",
        status=JobStatus.RUNNING,
        remote_task_id="task-1",
        remote_status="RUNNING",
        remote_status_since=NOW - timedelta(seconds=5),
        progress=10,
        poll_interval_s=1.0,
        poll_count=0,
        attempts=1,
        deadline_at=NOW + timedelta(hours=1),
        created_at=NOW - timedelta(minutes=1),
        updated_at=NOW - timedelta(minutes=1),
        lease_owner="w1",
        lease_expires_at=NOW + timedelta(seconds=60),
    )
    for key, value in overrides.items():
        setattr(job, key, value)
    return job


def task(
    status: str, progress: int | None = None, message: str | None = None, **extra: object
) -> DatasetImportTask:
    body = {
        "id": "task-1",
        "created_at": "2026-01-01T11:59:00Z",
        "updated_at": "2026-01-01T12:00:00Z",
        "deleted_at": None,
        "creator_id": "u",
        "dataset_id": "ds-1",
        "workspace_id": "w",
        "status": status,
        "progress": progress,
        "message": message,
        **extra,
    }
    return DatasetImportTask.model_validate(body)


def observe(
    job: ImportJob,
    observation: Observation,
    *,
    now: datetime = NOW,
    stuck_after_s: float = 600.0,
    policy: PollPolicy = POLICY,
):
    return apply_observation(
        job, observation, now=now, policy=policy, rng=random.Random(1), stuck_after_s=stuck_after_s
    )


def test_completed_task_ends_the_job_with_counts_and_releases_the_lease() -> None:
    job = running_job()
    result = {"requested_record_count": 3, "imported_record_count": 2, "skipped_record_count": 1}
    applied = observe(job, Observation(task=task("COMPLETED", 100, "done", result=result)))
    assert applied.finished and applied.status is JobStatus.COMPLETED
    assert job.status is JobStatus.COMPLETED
    assert (job.progress, job.message, job.finished_at) == (100, "done", NOW)
    assert (job.requested_count, job.imported_count, job.skipped_count) == (3, 2, 1)
    assert job.next_poll_at is None and job.lease_owner is None
    assert job.poll_count == 1


@pytest.mark.parametrize("status", ["FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"])
def test_each_remote_ending_ends_the_job_in_the_same_status(status: str) -> None:
    job = running_job()
    applied = observe(job, Observation(task=task(status, 40, "boom")))
    assert job.status == JobStatus(status) and applied.finished
    assert job.message == "boom"


def test_the_remote_end_time_is_kept_for_the_detection_lag() -> None:
    job = running_job()
    ended = task("COMPLETED", 100, updated_at="2026-01-01T11:59:52.5Z")
    observe(job, Observation(task=ended), now=NOW)
    assert job.remote_ended_at == datetime(2026, 1, 1, 11, 59, 52, 500000, tzinfo=UTC)
    assert job.finished_at == NOW
    still = running_job()
    observe(still, Observation(task=task("RUNNING", 50)))
    assert still.remote_ended_at is None
    submitted = submitting_job()
    transitions.accepted(submitted, ended, now=NOW, policy=POLICY, message="remote task 1")
    assert submitted.remote_ended_at == ended.updated_at


@pytest.mark.parametrize("status", ["CONTINUED_AS_NEW", "UNKNOWN", "PAUSED_BY_SOMETHING_NEW"])
def test_ambiguous_and_unknown_statuses_keep_polling(status: str) -> None:
    job = running_job()
    applied = observe(job, Observation(task=task(status, 10)))
    assert not applied.finished
    assert job.status is JobStatus.RUNNING
    assert job.remote_status == status
    assert job.next_poll_at is not None and job.next_poll_at > NOW


def test_backoff_grows_while_nothing_moves_and_resets_when_progress_moves_with_forecasting_off() -> None:
    job = running_job(progress_at=NOW - timedelta(seconds=2))
    intervals = []
    for _ in range(5):
        observe(job, Observation(task=task("RUNNING", 10)), policy=NO_FORECAST)
        intervals.append(job.poll_interval_s)
    assert intervals == [2.0, 4.0, 8.0, 8.0, 8.0]
    observe(job, Observation(task=task("RUNNING", 50)), policy=NO_FORECAST)
    assert job.poll_interval_s == 1.0
    assert job.next_poll_at == NOW + timedelta(seconds=1)


# --- when a moving import is polled next (jobs.poll_forecast) -----------------------------------------------------


def seconds(at: datetime | None) -> float:
    assert at is not None
    return (at - NOW).total_seconds()


def test_moving_progress_polls_at_the_forecast_end_within_the_cap() -> None:
    # 10 % two seconds ago, 20 % now: at most 5.5 points a second, more than 79 points left: 14.4 s, capped at 8 s.
    job = running_job(progress=10, progress_at=NOW - timedelta(seconds=2))
    observe(job, Observation(task=task("RUNNING", 20)))
    assert (seconds(job.next_poll_at), job.poll_interval_s) == (8.0, 8.0)
    assert (job.progress, job.progress_at, job.progress_rate) == (20, NOW, 5.5)
    # 64 % eight seconds later: at most 45 points in 8 s, more than 35 points left.
    later = NOW + timedelta(seconds=8)
    observe(job, Observation(task=task("RUNNING", 64)), now=later)
    assert job.poll_interval_s == pytest.approx(35 / (45 / 8))
    assert seconds(job.next_poll_at) == pytest.approx(8 + 35 / (45 / 8))
    assert job.progress_at == later


def test_an_end_expected_within_the_initial_interval_is_polled_then_not_a_full_interval_later() -> None:
    job = running_job(progress=90, progress_at=NOW - timedelta(seconds=1))
    observe(job, Observation(task=task("RUNNING", 95)))
    # At most 6 points a second, more than 4 points left: 0.67 s.
    assert seconds(job.next_poll_at) == pytest.approx(4 / 6)
    # Expected any moment: half the initial interval, the next round, not at once.
    job = running_job(progress=90, progress_at=NOW - timedelta(seconds=1))
    observe(job, Observation(task=task("RUNNING", 99)))
    assert seconds(job.next_poll_at) == 0.5


def test_a_value_seen_again_within_its_rate_is_forecast_again() -> None:
    # 97 % first seen at NOW at 4 points a second at most (so it is left within 0.25 s at that rate): a poll 0.5 s
    # later that still reads 97 % came early, not late; more than 2 points are left.
    job = running_job(progress=97, progress_at=NOW, progress_rate=4.0, poll_interval_s=0.5)
    observe(job, Observation(task=task("RUNNING", 97)), now=NOW + timedelta(seconds=0.5))
    assert seconds(job.next_poll_at) == pytest.approx(0.5 + 2 / 4)
    assert (job.progress_at, job.progress_rate) == (NOW, 4.0), "the first sighting and the rate are kept"


def test_an_import_at_99_is_polled_each_round_until_it_ends_or_stalls() -> None:
    job = running_job(progress=99, progress_at=NOW, progress_rate=2.0, poll_interval_s=0.0)
    observe(job, Observation(task=task("RUNNING", 99)), now=NOW + timedelta(seconds=1))
    assert seconds(job.next_poll_at) == 1.5, "due the next round"
    # Held 1.6 s, past three times the 0.5 s a point takes at 2 points a second: it stalled, the backoff decides
    # (grown from the 0.5 s just waited).
    observe(job, Observation(task=task("RUNNING", 99)), now=NOW + timedelta(seconds=1.6))
    assert (seconds(job.next_poll_at), job.poll_interval_s) == (pytest.approx(1.6 + 2.0), 2.0)


def test_a_stalled_forecast_backs_off_from_its_own_interval() -> None:
    job = running_job(progress=10, progress_at=NOW - timedelta(seconds=2))
    observe(job, Observation(task=task("RUNNING", 20)))
    assert job.poll_interval_s == 8.0
    observe(job, Observation(task=task("RUNNING", 20)), now=NOW + timedelta(seconds=8))
    # Held 8 s at 5.5 points a second: stalled. Backoff, grown from the forecast's 8 s (and capped), not from 1 s.
    assert job.poll_interval_s == 8.0
    assert job.progress_at == NOW, "the time the value was first seen is kept while it does not move"


@pytest.mark.parametrize(
    ("why", "remote", "before", "rate", "seen", "interval"),
    [
        ("not RUNNING", "CONTINUED_AS_NEW", 10, 5.0, 40, 1.0),
        ("unknown progress", "RUNNING", 10, 5.0, None, 4.0),
        ("went backwards", "RUNNING", 40, 5.0, 30, 1.0),
        ("has not moved yet", "RUNNING", 40, None, 40, 4.0),
    ],
)
def test_without_a_rate_the_backoff_decides(
    why: str, remote: str, before: int, rate: float | None, seen: int | None, interval: float
) -> None:
    job = running_job(
        progress=before, progress_at=NOW - timedelta(seconds=0.1), progress_rate=rate, poll_interval_s=2.0
    )
    observe(job, Observation(task=task(remote, seen)))
    # The backoff: restarted at 1 s when progress moved, else grown from the stored 2 s.
    assert (seconds(job.next_poll_at), job.poll_interval_s) == (interval, interval), why


def test_progress_is_dated_when_the_answer_arrived_not_when_it_was_written() -> None:
    # The answer arrived 0.5 s before the write: the rate and the forecast are counted from its arrival.
    arrived = NOW - timedelta(seconds=0.5)
    job = running_job(progress=10, progress_at=NOW - timedelta(seconds=2.5))
    observe(job, Observation(task=task("RUNNING", 60), at=arrived))
    assert (job.progress_at, job.progress_rate) == (arrived, 51 / 2)
    assert job.next_poll_at == arrived + timedelta(seconds=39 / (51 / 2))
    # The backoff, which knows no rate, still counts from the write.
    job = running_job(progress=10, progress_at=None)
    observe(job, Observation(task=task("RUNNING", 60), at=arrived))
    assert (job.progress_at, job.next_poll_at) == (arrived, NOW + timedelta(seconds=1))


def test_progress_going_backwards_forgets_the_rate() -> None:
    job = running_job(progress=40, progress_at=NOW - timedelta(seconds=2), progress_rate=5.0)
    observe(job, Observation(task=task("RUNNING", 30)))
    assert (job.progress, job.progress_at, job.progress_rate) == (30, NOW, None)


def test_a_job_with_no_first_sighting_recorded_forecasts_from_its_next_movement() -> None:
    # A row from before progress_at existed: this movement has nothing to measure against, the next one has.
    job = running_job(progress=10, progress_at=None)
    observe(job, Observation(task=task("RUNNING", 20)))
    assert (seconds(job.next_poll_at), job.progress_at) == (1.0, NOW)
    observe(job, Observation(task=task("RUNNING", 40)), now=NOW + timedelta(seconds=1))
    # At most 21 points a second, more than 59 points left.
    assert job.poll_interval_s == pytest.approx(59 / 21)


def test_an_unmoved_progress_with_no_first_sighting_records_it_now() -> None:
    job = running_job(progress=10, progress_at=None)
    observe(job, Observation(task=task("RUNNING", 10)))
    assert job.progress_at == NOW


def test_a_failed_poll_keeps_the_progress_point_and_backs_off() -> None:
    job = running_job(progress=10, progress_at=NOW - timedelta(seconds=2), progress_rate=5.0, poll_interval_s=2.0)
    observe(job, Observation(error=ServerError("boom", status_code=503)))
    assert (job.progress, job.progress_at, job.progress_rate) == (10, NOW - timedelta(seconds=2), 5.0)
    assert job.poll_interval_s == 4.0


def test_forecasting_off_keeps_the_backoff_even_with_a_rate() -> None:
    job = running_job(progress=10, progress_at=NOW - timedelta(seconds=2), progress_rate=5.0, poll_interval_s=4.0)
    observe(job, Observation(task=task("RUNNING", 20)), policy=NO_FORECAST)
    assert (seconds(job.next_poll_at), job.poll_interval_s) == (1.0, 1.0)


def test_a_404_makes_the_job_lost() -> None:
    job = running_job()
    error = NotFoundError("Task not found", status_code=404, error_code="DATASET_TASK_NOT_FOUND")
    applied = observe(job, Observation(error=error))
    assert applied.finished and job.status is JobStatus.LOST
    assert job.finished_at == NOW


def test_a_server_error_keeps_the_job_and_backs_off() -> None:
    job = running_job()
    applied = observe(job, Observation(error=ServerError("boom", status_code=503)))
    assert not applied.finished and job.status is JobStatus.RUNNING
    assert job.last_error is not None and "boom" in job.last_error
    assert job.poll_interval_s == 2.0


def test_a_job_past_its_deadline_expires_on_its_next_poll() -> None:
    job = running_job(deadline_at=NOW - timedelta(seconds=1))
    applied = observe(job, Observation(task=task("RUNNING", 10)))
    assert applied.finished and job.status is JobStatus.EXPIRED


def test_a_terminal_answer_wins_over_the_deadline() -> None:
    job = running_job(deadline_at=NOW - timedelta(seconds=1))
    observe(job, Observation(task=task("COMPLETED", 100)))
    assert job.status is JobStatus.COMPLETED


def test_a_job_stuck_in_unknown_is_flagged_but_not_ended() -> None:
    job = running_job(remote_status="UNKNOWN", remote_status_since=NOW - timedelta(seconds=700))
    applied = observe(job, Observation(task=task("UNKNOWN", 10)), stuck_after_s=600)
    assert job.status is JobStatus.RUNNING
    assert job.last_error is not None and "UNKNOWN" in job.last_error
    assert applied.notes


def test_expire_leaves_finished_jobs_alone() -> None:
    job = running_job(status=JobStatus.COMPLETED, deadline_at=NOW - timedelta(hours=1))
    assert not expire_if_past_deadline(job, now=NOW)
    assert job.status is JobStatus.COMPLETED


def test_transport_errors_are_retryable_observations() -> None:
    from api_client import TransportError

    job = running_job()
    error = TransportError("connection reset", method="GET", url="http://api/x")
    applied = observe(job, Observation(error=error))
    assert not applied.finished and job.status is JobStatus.RUNNING


# --- answers to a submit (and recovery's findings) ---------------------------------------------------------------


def submitting_job(**overrides: object) -> ImportJob:
    fields: dict[str, object] = {
        "status": JobStatus.SUBMITTING, "remote_task_id": None, "remote_status": None, "remote_status_since": None,
        "progress": None, "poll_interval_s": None, "submit_started_at": NOW - timedelta(seconds=2),
    }  # fmt: skip
    return running_job(**(fields | overrides))


def test_an_accepted_submit_becomes_running_with_its_first_poll_scheduled() -> None:
    job = submitting_job(submit_not_before=NOW, last_error="earlier 429")
    ended = transitions.accepted(job, task("RUNNING", progress=None), now=NOW, policy=POLICY, message="remote task 1")
    assert ended is None
    assert (job.status, job.remote_task_id, job.submitted_at) == (JobStatus.RUNNING, "task-1", NOW)
    assert (job.remote_status, job.remote_status_since) == ("RUNNING", NOW)
    assert (job.next_poll_at, job.poll_interval_s) == (NOW + timedelta(seconds=1.0), 1.0)
    assert (job.lease_owner, job.lease_expires_at, job.submit_not_before, job.last_error) == (None, None, None, None)
    assert (job.progress, job.progress_at, job.progress_rate) == (None, None, None)


def test_an_accepted_submit_records_its_first_progress_point() -> None:
    job = submitting_job()
    transitions.accepted(job, task("RUNNING", progress=0), now=NOW, policy=POLICY, message="remote task 1")
    assert (job.progress, job.progress_at) == (0, NOW)
    # So the first poll that sees it move can forecast: 12 % one second later, at most 13 points a second.
    observe(job, Observation(task=task("RUNNING", 12)), now=NOW + timedelta(seconds=1))
    assert job.poll_interval_s == pytest.approx(87 / 13)


def test_an_accepted_submit_whose_task_already_ended_goes_straight_to_the_end_with_its_counts() -> None:
    job = submitting_job()
    result = {"requested_record_count": 3, "imported_record_count": 2, "skipped_record_count": 1}
    done = task("COMPLETED", progress=100, message="done", result=result)
    assert transitions.accepted(job, done, now=NOW, policy=POLICY, message="remote task 1") is JobStatus.COMPLETED
    assert (job.status, job.finished_at, job.next_poll_at, job.lease_owner) == (JobStatus.COMPLETED, NOW, None, None)
    assert (job.requested_count, job.imported_count, job.skipped_count) == (3, 2, 1)


def test_an_adopted_task_keeps_the_pairing_note_visible() -> None:
    job = submitting_job()
    transitions.accepted(job, task("RUNNING"), now=NOW, policy=POLICY, message="adopted", note="paired by time")
    assert (job.status, job.last_error) == (JobStatus.RUNNING, "paired by time")


def test_an_answer_for_a_job_cancelled_meanwhile_is_refused() -> None:
    job = submitting_job(status=JobStatus.CANCELLED_LOCALLY, finished_at=NOW)
    with pytest.raises(JobAlreadyFinishedError):
        transitions.accepted(job, task("RUNNING"), now=NOW, policy=POLICY, message="remote task 1")


def test_a_refused_submit_is_rejected_with_the_api_error_code() -> None:
    job = submitting_job()
    error = ClientError("Dataset not found", status_code=404, error_code="DATASET_NOT_FOUND")
    event = transitions.refused(job, error, now=NOW)
    assert (event.old_status, event.new_status) == (JobStatus.SUBMITTING, JobStatus.REJECTED)
    assert (job.status, job.error_code, job.message, job.finished_at) == (
        JobStatus.REJECTED, "DATASET_NOT_FOUND", "Dataset not found", NOW,
    )  # fmt: skip


@pytest.mark.parametrize("kind", [ImportKind.CAMPAIGN, ImportKind.EXPLORER])
def test_a_kind_the_api_dropped_is_rejected_saying_so(kind: ImportKind) -> None:
    job = submitting_job(kind=kind)
    url = f"https://api.mistral.ai/v1/observability/datasets/ds-1/imports/from-{kind}"
    error = RouteNotFoundError(f"import_from_{kind}: Not Found", method="POST", url=url, status_code=404)
    event = transitions.refused(job, error, now=NOW)
    assert event.new_status == JobStatus.REJECTED
    assert job.error_code == transitions.IMPORT_KIND_NOT_OFFERED
    assert job.message is not None
    assert job.message.startswith(f"the API no longer offers imports from {kind} (route not found): ")
    assert "dsimport import file" in job.message
    # Where the request went stays visible: a wrong base URL is the other way to get here.
    assert url in (job.last_error or "")


def test_a_missing_route_for_a_kind_the_api_still_has_points_at_the_base_url() -> None:
    job = submitting_job(kind=ImportKind.FILE, params={"file_id": "f"})
    transitions.refused(job, RouteNotFoundError("import_from_file: Not Found", status_code=404), now=NOW)
    assert job.error_code == transitions.IMPORT_KIND_NOT_OFFERED
    assert job.message is not None and "no route for imports from file" in job.message
    assert "DSIMPORT_API_BASE_URL" in job.message


def test_a_missing_object_is_not_taken_for_a_missing_route() -> None:
    job = submitting_job(kind=ImportKind.CAMPAIGN, params={"campaign_id": "c"})
    error = NotFoundError("Campaign not found", status_code=404, error_code="CAMPAIGN_NOT_FOUND")
    transitions.refused(job, error, now=NOW)
    assert (job.error_code, job.message) == ("CAMPAIGN_NOT_FOUND", "Campaign not found")


def test_an_ambiguous_answer_leaves_the_job_submitting_under_its_lease_and_keeps_retry_after() -> None:
    job = submitting_job()
    transitions.ambiguous(job, ServerError("gateway timeout", status_code=504, retry_after_s=30), now=NOW)
    assert (job.status, job.lease_owner) == (JobStatus.SUBMITTING, "w1")
    assert job.submit_not_before == NOW + timedelta(seconds=30)
    assert "gateway timeout" in (job.last_error or "")


def test_a_submit_the_api_did_not_act_on_goes_back_to_pending_not_before_retry_after() -> None:
    job = submitting_job()
    event = transitions.retry_later(job, RateLimitedError("slow down", status_code=429, retry_after_s=5), now=NOW)
    assert (event.new_status, job.lease_owner, job.submit_not_before) == (
        JobStatus.PENDING, None, NOW + timedelta(seconds=5),
    )  # fmt: skip


def test_the_last_failed_attempt_gives_up() -> None:
    job = submitting_job()
    transitions.gave_up(job, TransportError("refused", method="POST", url="u"), now=NOW)
    assert (job.status, job.finished_at) == (JobStatus.FAILED, NOW)


def test_no_task_found_after_an_interrupted_submit_sends_it_again() -> None:
    job = submitting_job(attempts=1)
    assert transitions.not_found(job, now=NOW, max_attempts=3, note="paired by time") is JobStatus.PENDING
    assert (job.status, job.lease_owner, job.last_error) == (JobStatus.PENDING, None, "paired by time")


def test_no_task_found_after_too_many_interrupted_submits_fails() -> None:
    job = submitting_job(attempts=4)
    assert transitions.not_found(job, now=NOW, max_attempts=3) is JobStatus.FAILED


def test_no_task_found_past_the_deadline_expires_instead_of_sending() -> None:
    job = submitting_job(attempts=1, deadline_at=NOW - timedelta(seconds=1))
    assert transitions.not_found(job, now=NOW, max_attempts=3) is JobStatus.EXPIRED
    assert job.next_poll_at is None
