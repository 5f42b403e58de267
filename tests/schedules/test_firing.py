"""Firing a schedule, without a broker: the run guard, each kind, watermarks, chunks, failures. Both ledgers."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

from sqlalchemy import func, select

from store.jobs import get_job_by_key, list_jobs
from store.models import ImportJob, ImportKind, JobStatus, RunStatus, ScheduleItem, ScheduleRun
from store.schedule_runs import list_runs, prune_runs
from store.schedules import get_schedule, remove_schedule, set_paused
from triggers.schedules.firing import FireOutcome, fire

from .conftest import CAMPAIGN, NOW, SOURCE, TARGET, Harness, at


def runs(harness: Harness, name: str) -> list[ScheduleRun]:
    with harness.sessions() as session:
        schedule = get_schedule(session, name)
        assert schedule is not None
        return list(reversed(list_runs(session, schedule.id, limit=1000)))


def all_jobs(harness: Harness) -> list[ImportJob]:
    with harness.sessions() as session:
        return sorted(list_jobs(session, limit=10_000), key=lambda job: job.idempotency_key)


def imported_items(harness: Harness) -> list[str]:
    with harness.sessions() as session:
        return sorted(session.scalars(select(ScheduleItem.item_id)))


# --- the run guard ----------------------------------------------------------------------------------------------


def test_plain_fire_creates_one_job_keyed_by_name_and_fire_time(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    report = fire(harness.context, "hourly", at(3600))
    assert report.outcome == FireOutcome.SUBMITTED
    [job] = all_jobs(harness)
    assert job.idempotency_key == "schedule:hourly:2026-03-01T13:00:00Z"
    assert (job.kind, job.dataset_id, job.params) == (ImportKind.CAMPAIGN, TARGET, {"campaign_id": CAMPAIGN})
    assert job.origin == "schedule:hourly"
    assert harness.sent == [job.id]
    [run] = runs(harness, "hourly")
    assert (run.status, run.job_ids, run.trigger) == (RunStatus.SUBMITTED, [job.id], "beat")
    with harness.sessions() as session:
        schedule = get_schedule(session, "hourly")
        assert schedule is not None and schedule.last_fire_at == at(3600)


def test_the_same_fire_twice_does_nothing_the_second_time(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    first = fire(harness.context, "hourly", at(3600))
    second = fire(harness.context, "hourly", at(3600))
    assert (first.outcome, second.outcome) == (FireOutcome.SUBMITTED, FireOutcome.DUPLICATE)
    assert "already ran (SUBMITTED)" in (second.message or "")
    assert len(all_jobs(harness)) == 1
    assert len(harness.sent) == 1
    fire(harness.context, "hourly", at(7200))
    assert len(all_jobs(harness)) == 2


def test_concurrent_fires_of_the_same_time_create_one_run_and_one_job(harness: Harness) -> None:
    harness.add("often", "explorer", every="1s", events=["evt-1"])
    barrier = Barrier(6)

    def go(_: int) -> FireOutcome:
        barrier.wait(timeout=30)
        return fire(harness.context, "often", at(1)).outcome

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(go, range(6)))
    assert outcomes.count(FireOutcome.SUBMITTED) == 1
    assert set(outcomes) <= {FireOutcome.SUBMITTED, FireOutcome.DUPLICATE, FireOutcome.BUSY}
    assert len(all_jobs(harness)) == 1
    assert len(runs(harness, "often")) == 1


def test_a_run_left_started_by_a_dead_task_is_taken_over_after_its_lease(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    sid = None
    with harness.sessions() as session:
        schedule = get_schedule(session, "hourly")
        assert schedule is not None
        sid = schedule.id
        session.add(
            ScheduleRun(
                schedule_id=sid, fire_time=at(3600), trigger="beat", status=RunStatus.STARTED, owner="dead",
                attempts=1, lease_expires_at=at(30), started_at=NOW, job_ids=[],
            )
        )  # fmt: skip
        session.commit()
    busy = fire(harness.context, "hourly", at(3600))
    assert busy.outcome == FireOutcome.BUSY
    assert busy.retry_after_s is not None and 30 <= busy.retry_after_s <= 32
    harness.clock.now = at(31)
    taken = fire(harness.context, "hourly", at(3600))
    assert taken.outcome == FireOutcome.SUBMITTED
    [run] = runs(harness, "hourly")
    assert (run.status, run.attempts) == (RunStatus.SUBMITTED, 2)
    assert len(all_jobs(harness)) == 1


def test_a_task_whose_run_was_taken_over_writes_nothing(harness: Harness) -> None:
    harness.add("win", "explorer-window", since=NOW.isoformat())
    harness.api.events = {"evt-1": at(10)}
    real_search = harness.api.search_event_ids

    def search_then_lose_the_run(filters: object) -> list[str]:
        found = real_search(filters)  # type: ignore[arg-type]
        # While this task talks to the API its lease runs out and another task takes the run over.
        harness.api.search_event_ids = real_search  # type: ignore[method-assign]
        harness.clock.now = at(200)
        other = fire(harness.context, "win", at(60))
        assert other.outcome == FireOutcome.SUBMITTED
        return found

    harness.api.search_event_ids = search_then_lose_the_run  # type: ignore[method-assign]
    harness.lease_s = 1.0
    report = fire(harness.context, "win", at(60))
    assert report.outcome == FireOutcome.LOST
    assert len(all_jobs(harness)) == 1
    assert imported_items(harness) == ["evt-1"]


# --- pause, resume, finish, remove ------------------------------------------------------------------------------


def test_paused_schedules_do_not_fire_unless_run_by_hand(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    with harness.sessions() as session:
        set_paused(session, "hourly", True, now=NOW)
        session.commit()
    assert fire(harness.context, "hourly", at(3600)).outcome == FireOutcome.PAUSED
    assert all_jobs(harness) == []
    manual = fire(harness.context, "hourly", at(3601), trigger="manual")
    assert manual.outcome == FireOutcome.SUBMITTED
    with harness.sessions() as session:
        set_paused(session, "hourly", False, now=at(3700))
        session.commit()
        schedule = get_schedule(session, "hourly")
        assert schedule is not None and schedule.fires_after == at(3700)
    assert fire(harness.context, "hourly", at(7200)).outcome == FireOutcome.SUBMITTED
    assert [run.trigger for run in runs(harness, "hourly")] == ["manual", "beat"]


def test_a_removed_schedule_does_not_fire(harness: Harness) -> None:
    harness.add("gone", "campaign", every="1h", campaign=CAMPAIGN)
    with harness.sessions() as session:
        remove_schedule(session, "gone", now=NOW)
        session.commit()
    assert fire(harness.context, "gone", at(3600)).outcome == FireOutcome.UNKNOWN
    assert all_jobs(harness) == []


# --- explorer-window --------------------------------------------------------------------------------------------


def test_explorer_window_advances_its_watermark_and_never_imports_an_event_twice(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), chunk_size=100)
    harness.api.events = {"e-10": at(10), "e-59": at(59), "e-60": at(60), "e-90": at(90)}

    first = fire(harness.context, "win", at(60))
    assert first.outcome == FireOutcome.SUBMITTED
    assert _job_events(harness, first.job_ids) == ["e-10", "e-59"]
    # The window is half-open: the event created exactly at the fire time belongs to the next window.
    second = fire(harness.context, "win", at(120))
    assert _job_events(harness, second.job_ids) == ["e-60", "e-90"]
    third = fire(harness.context, "win", at(180))
    assert third.outcome == FireOutcome.EMPTY and third.job_ids == []
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == at(180)

    # An event that turns up late inside an old window is picked up once the window is searched again
    # (here by rewinding the watermark), and the events already imported are not imported again.
    harness.api.events["e-30"] = at(30)
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None
        schedule.watermark = NOW
        session.commit()
    fourth = fire(harness.context, "win", at(240))
    assert _job_events(harness, fourth.job_ids) == ["e-30"]
    assert imported_items(harness) == ["e-10", "e-30", "e-59", "e-60", "e-90"]
    windows = [(run.window_start, run.window_end) for run in runs(harness, "win")]
    assert windows == [(NOW, at(60)), (at(60), at(120)), (at(120), at(180)), (NOW, at(240))]


def test_explorer_window_requests_chunks_with_their_own_keys(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), chunk_size=3)
    harness.api.events = {f"e-{n:02d}": at(n) for n in range(7)}
    report = fire(harness.context, "win", at(60))
    jobs = [_job(harness, job_id) for job_id in report.job_ids]
    assert [job.params["completion_event_ids"] for job in jobs] == [
        ["e-00", "e-01", "e-02"],
        ["e-03", "e-04", "e-05"],
        ["e-06"],
    ]
    assert [job.idempotency_key for job in jobs] == [f"schedule:win:2026-03-01T12:01:00Z:{n}" for n in range(3)]
    assert harness.sent == report.job_ids
    [run] = runs(harness, "win")
    assert (run.item_count, run.message) == (7, "7 new of 7 found, 3 job(s)")


def test_explorer_window_sends_its_filter_with_the_time_window(harness: Harness) -> None:
    condition = {"field": "extra_fields.team", "op": "eq", "value": "support"}
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), filter=condition)
    fire(harness.context, "win", at(60))
    [(_, sent)] = [call for call in harness.api.calls if call[0] == "search"]
    assert sent == {
        "AND": [
            {"field": "created_at", "op": "gte", "value": "2026-03-01T12:00:00Z"},
            {"field": "created_at", "op": "lt", "value": "2026-03-01T12:01:00Z"},
            condition,
        ]
    }


def test_explorer_window_keeps_its_watermark_when_the_search_fails(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    harness.api.events = {"e-1": at(1), "e-70": at(70)}
    harness.api.fail_next = 1
    failed = fire(harness.context, "win", at(60))
    assert failed.outcome == FireOutcome.FAILED and "search is down" in (failed.message or "")
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == NOW
    # The next fire covers the failed window too.
    recovered = fire(harness.context, "win", at(120))
    assert _job_events(harness, recovered.job_ids) == ["e-1", "e-70"]
    assert [run.status for run in runs(harness, "win")] == [RunStatus.FAILED, RunStatus.SUBMITTED]


def test_explorer_window_starts_at_creation_without_since(harness: Harness) -> None:
    harness.clock.now = at(30)
    harness.add("win", "explorer-window", every="1m")
    harness.api.events = {"before": at(10), "after": at(40)}
    report = fire(harness.context, "win", at(60))
    assert _job_events(harness, report.job_ids) == ["after"]


def test_an_old_fire_arriving_after_a_newer_one_finds_its_window_covered(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    harness.api.events = {"e-30": at(30), "e-90": at(90)}
    newer = fire(harness.context, "win", at(120))
    older = fire(harness.context, "win", at(60))
    assert _job_events(harness, newer.job_ids) == ["e-30", "e-90"]
    assert older.outcome == FireOutcome.EMPTY
    assert "already covered" in (older.message or "")


# --- campaign-when-done -----------------------------------------------------------------------------------------


def test_campaign_when_done_waits_then_imports_once_then_stops(harness: Harness) -> None:
    harness.add("late", "campaign-when-done", every="1m", campaign=CAMPAIGN)
    harness.api.campaign_statuses = ["RUNNING", "UNKNOWN", "COMPLETED"]
    outcomes = []
    for n in (1, 2, 3, 4):
        harness.clock.now = at(60 * n + 1)
        outcomes.append(fire(harness.context, "late", at(60 * n)).outcome)
    # The fourth fire finds the import requested and still running: it waits for it.
    assert outcomes == [FireOutcome.WAITING, FireOutcome.WAITING, FireOutcome.SUBMITTED, FireOutcome.WAITING]
    [job] = all_jobs(harness)
    assert job.idempotency_key == f"schedule:late:campaign:{CAMPAIGN}"
    assert job.params == {"campaign_id": CAMPAIGN}
    _set_status(harness, job.id, JobStatus.COMPLETED)
    harness.clock.now = at(301)
    assert fire(harness.context, "late", at(300)).outcome == FireOutcome.EMPTY
    statuses = [(run.status, run.message) for run in runs(harness, "late")]
    done = f"campaign {CAMPAIGN} completed and was imported by job {job.id}"
    assert statuses == [
        (RunStatus.WAITING, f"campaign {CAMPAIGN} is RUNNING"),
        (RunStatus.WAITING, f"campaign {CAMPAIGN} is UNKNOWN"),
        (RunStatus.SUBMITTED, f"campaign {CAMPAIGN} is COMPLETED"),
        (RunStatus.WAITING, f"campaign {CAMPAIGN}: import job {job.id} is PENDING"),
        (RunStatus.EMPTY, done),
    ]
    with harness.sessions() as session:
        schedule = get_schedule(session, "late")
        assert schedule is not None and schedule.finished_at == at(301)
        assert schedule.finished_reason == done
    # Even run by hand, a finished schedule does nothing.
    assert fire(harness.context, "late", at(500), trigger="manual").outcome == FireOutcome.FINISHED
    assert len(all_jobs(harness)) == 1


def test_campaign_when_done_gives_up_on_a_campaign_that_failed(harness: Harness) -> None:
    harness.add("late", "campaign-when-done", every="1m", campaign=CAMPAIGN)
    harness.api.campaign_statuses = ["FAILED"]
    report = fire(harness.context, "late", at(60))
    assert report.outcome == FireOutcome.FAILED
    assert all_jobs(harness) == []
    with harness.sessions() as session:
        schedule = get_schedule(session, "late")
        assert schedule is not None
        assert schedule.finished_reason == f"campaign {CAMPAIGN} ended FAILED: nothing to import"


def test_two_fires_seeing_the_campaign_completed_share_one_job(harness: Harness) -> None:
    harness.add("late", "campaign-when-done", every="1m", campaign=CAMPAIGN)
    first = fire(harness.context, "late", at(60))
    # A second fire that had claimed its run before the first one finished the schedule.
    with harness.sessions() as session:
        schedule = get_schedule(session, "late")
        assert schedule is not None
        schedule.finished_at = None
        session.commit()
    second = fire(harness.context, "late", at(120))
    assert first.job_ids == second.job_ids
    assert len(all_jobs(harness)) == 1


# --- dataset-copy -----------------------------------------------------------------------------------------------


def test_dataset_copy_copies_each_record_once_in_chunks(harness: Harness) -> None:
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE, chunk_size=2)
    harness.api.records = [f"r-{n}" for n in range(5)]
    first = fire(harness.context, "mirror", at(3600))
    assert [_job(harness, job_id).params["dataset_record_ids"] for job_id in first.job_ids] == [
        ["r-0", "r-1"],
        ["r-2", "r-3"],
        ["r-4"],
    ]
    assert ("list_records", (SOURCE, 1, 100)) in harness.api.calls
    assert fire(harness.context, "mirror", at(7200)).outcome == FireOutcome.EMPTY
    harness.api.records += ["r-5", "r-6"]
    third = fire(harness.context, "mirror", at(10800))
    assert _job_events(harness, third.job_ids, field="dataset_record_ids") == ["r-5", "r-6"]
    assert imported_items(harness) == [f"r-{n}" for n in range(7)]
    with harness.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 4


def test_each_schedule_keeps_its_own_list_of_imported_ids(harness: Harness) -> None:
    harness.add("a", "dataset-copy", every="1h", from_dataset=SOURCE)
    harness.add("b", "dataset-copy", every="1h", from_dataset=SOURCE)
    harness.api.records = ["r-1"]
    assert fire(harness.context, "a", at(3600)).outcome == FireOutcome.SUBMITTED
    assert fire(harness.context, "b", at(3600)).outcome == FireOutcome.SUBMITTED


def test_a_send_failure_leaves_the_jobs_pending_for_recovery(harness: Harness) -> None:
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE)
    harness.api.records = ["r-1"]

    def broken_send(job_id: str) -> None:
        raise ConnectionError("broker down")

    context = harness.context
    object.__setattr__(context, "send", broken_send)
    report = fire(context, "mirror", at(3600))
    assert report.outcome == FireOutcome.SUBMITTED
    [job] = all_jobs(harness)
    assert job.status == JobStatus.PENDING
    with harness.sessions() as session:
        assert get_job_by_key(session, "schedule:mirror:2026-03-01T13:00:00Z:0") is not None


def test_runs_record_timing_and_history_order(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    for hours in (1, 2, 3):
        harness.clock.now = at(3600 * hours + 5)
        fire(harness.context, "hourly", at(3600 * hours))
    history = runs(harness, "hourly")
    assert [run.fire_time for run in history] == [at(3600), at(7200), at(10800)]
    assert all(run.finished_at == run.fire_time + timedelta(seconds=5) for run in history)


def _set_status(harness: Harness, job_id: str, status: JobStatus) -> None:
    """Stand in for the worker: the job ended with ``status`` (a terminal one, as the poller writes it)."""
    with harness.sessions() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status = status
        session.commit()


def _job(harness: Harness, job_id: str) -> ImportJob:
    with harness.sessions() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        return job


def _job_events(harness: Harness, job_ids: list[str], *, field: str = "completion_event_ids") -> list[str]:
    return sorted(item for job_id in job_ids for item in _job(harness, job_id).params[field])


def test_old_runs_are_pruned_but_a_late_duplicate_still_imports_nothing_new(harness: Harness) -> None:
    harness.add("often", "campaign", every="1s", campaign=CAMPAIGN)
    for second in range(1, 13):
        fire(harness.context, "often", at(second))
    with harness.sessions() as session:
        schedule = get_schedule(session, "often")
        assert schedule is not None
        assert prune_runs(session, schedule.id, keep=5) == 7
        session.commit()
    assert [run.fire_time for run in runs(harness, "often")] == [at(s) for s in range(8, 13)]
    # A pruned fire delivered again finds its job by key: no second import.
    again = fire(harness.context, "often", at(1))
    assert again.outcome == FireOutcome.SUBMITTED and again.message == "job existed already (PENDING)"
    assert len(all_jobs(harness)) == 12


# --- late events, paging --------------------------------------------------------------------------------------


def test_an_event_searchable_only_after_its_fire_is_imported_by_the_next_fire(harness: Harness) -> None:
    harness.settle_lag_s = 30.0
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    harness.api.events = {"e-10": at(10)}
    first = fire(harness.context, "win", at(60))
    assert _job_events(harness, first.job_ids) == ["e-10"]
    # Stamped a second before the fire time, but indexed (searchable) only after the fire searched.
    harness.api.events["e-59"] = at(59)
    second = fire(harness.context, "win", at(120))
    assert _job_events(harness, second.job_ids) == ["e-59"]
    assert imported_items(harness) == ["e-10", "e-59"]
    windows = [(run.window_start, run.window_end) for run in runs(harness, "win")]
    assert windows == [(NOW, at(30)), (at(30), at(90))]


def test_explorer_window_waits_for_the_settle_lag_before_its_first_search(harness: Harness) -> None:
    harness.settle_lag_s = 120.0
    harness.add("win", "explorer-window", every="1m")
    early = fire(harness.context, "win", at(60))
    assert early.outcome == FireOutcome.EMPTY and "already covered" in (early.message or "")
    assert [call for call in harness.api.calls if call[0] == "search"] == []


def test_dataset_copy_reads_a_bounded_number_of_pages_per_fire_and_continues_at_the_next(harness: Harness) -> None:
    harness.copy_page_size, harness.copy_pages_per_fire = 2, 2
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE, chunk_size=3)
    harness.api.records = [f"r-{n:02d}" for n in range(11)]
    pages_read = []
    for hour in range(1, 5):
        before = len(harness.api.calls)
        fire(harness.context, "mirror", at(3600 * hour))
        pages_read.append([call[1][1] for call in harness.api.calls[before:]])
    # 11 records in pages of 2: pages 1-2, 3-4, 5-6 (the end: the next pass starts over), then 1-2 again.
    assert pages_read == [[1, 2], [3, 4], [5, 6], [1, 2]]
    copied = Counter(r for job in all_jobs(harness) for r in job.params["dataset_record_ids"])
    assert copied == Counter({f"r-{n:02d}": 1 for n in range(11)})
    assert [run.status for run in runs(harness, "mirror")][-1] == RunStatus.EMPTY
    # Records added after a full pass are found by the next pass.
    harness.api.records.append("r-11")
    for hour in range(5, 8):
        fire(harness.context, "mirror", at(3600 * hour))
    assert "r-11" in imported_items(harness) and len(imported_items(harness)) == 12
