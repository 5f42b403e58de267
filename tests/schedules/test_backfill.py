"""Backfilling a window schedule, without a broker: chunks, keys, the watermark, overlaps with fires, crashes and
resumes, failed searches, sampling and the checks on the request. Both ledgers."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from threading import Barrier

import pytest
from sqlalchemy import select

from import_kinds import spec_of
from store.models import BackfillStatus, ImportJob, RunStatus, Schedule, ScheduleBackfill, ScheduleRun
from store.schedule_runs import claim_chunk_run
from store.schedules import get_schedule, remove_schedule
from triggers.schedules.backfill import (
    BackfillError,
    BackfillOutcome,
    BackfillReport,
    advance_backfill,
    parse_moment,
    request_backfill,
)
from triggers.schedules.firing import FireOutcome, fire
from triggers.schedules.sampling import keeps

from .conftest import CAMPAIGN, NOW, Harness, at

HOUR = 3600


def backfill(harness: Harness, name: str, since: datetime, until: datetime, *, step_s: int = 1800) -> int:
    with harness.sessions() as session:
        started = request_backfill(
            session, name, since=since, until=until, step_s=step_s, now=harness.clock(), settle_lag_s=0.0
        )
        session.commit()
        return started.backfill.id


def advance(harness: Harness, backfill_id: int, *, budget_s: float = 1000.0) -> BackfillReport:
    return advance_backfill(harness.context, backfill_id, budget_s=budget_s)


def requested_items(harness: Harness) -> Counter[str]:
    """Every item every job asked for, counted: an item requested twice shows 2."""
    spec = spec_of(harness_kind(harness))
    with harness.sessions() as session:
        jobs = list(session.scalars(select(ImportJob)))
    assert spec.item_field is not None
    return Counter(spec.item_field.shape.item_key(item) for job in jobs for item in spec.items_of(job.params))


def harness_kind(harness: Harness) -> str:
    with harness.sessions() as session:
        return str(session.scalars(select(Schedule.import_kind)).first())


def chunk_runs(harness: Harness) -> list[ScheduleRun]:
    with harness.sessions() as session:
        return list(
            session.scalars(
                select(ScheduleRun).where(ScheduleRun.backfill_id.is_not(None)).order_by(ScheduleRun.fire_time)
            )
        )


def the_backfill(harness: Harness, backfill_id: int) -> ScheduleBackfill:
    with harness.sessions() as session:
        row = session.get(ScheduleBackfill, backfill_id)
        assert row is not None
        return row


@pytest.fixture
def events(harness: Harness) -> dict[str, datetime]:
    """Events from three hours before NOW to an hour after, one every ten minutes, and the clock an hour on."""
    harness.api.events = {f"e{minute:+04d}": at(minute * 60) for minute in range(-180, 61, 10)}
    harness.clock.now = at(2 * HOUR)
    return harness.api.events


def between(events: dict[str, datetime], start: datetime, end: datetime) -> Counter[str]:
    return Counter(event for event, created in events.items() if start <= created < end)


# --- a backfill -------------------------------------------------------------------------------------------------


def test_a_backfill_imports_each_event_of_its_range_once_in_chunks_and_leaves_the_watermark(
    harness: Harness, events: dict[str, datetime]
) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), chunk_size=2)
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR))

    report = advance(harness, backfill_id)

    assert (report.outcome, report.chunks_done, report.chunks) == (BackfillOutcome.DONE, 4, 4)
    assert requested_items(harness) == between(events, at(-3 * HOUR), at(-HOUR))
    runs = chunk_runs(harness)
    assert [(run.trigger, run.status, run.window_start, run.window_end) for run in runs] == [
        ("backfill", RunStatus.SUBMITTED, at(-3 * HOUR + n * 1800), at(-3 * HOUR + (n + 1) * 1800)) for n in range(4)
    ]
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None
        assert (schedule.watermark, schedule.last_fire_at) == (NOW, None)
        keys = sorted(session.scalars(select(ImportJob.idempotency_key)))
    assert keys[0] == f"schedule:win:backfill:{backfill_id}:2026-03-01T09:00:00Z:0"
    assert len(harness.sent) == len(keys)
    row = the_backfill(harness, backfill_id)
    assert (row.status, row.cursor, row.finished_at) == (BackfillStatus.DONE, at(-HOUR), harness.clock())
    # Done is done: another task finds nothing to do.
    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    assert len(harness.sent) == len(keys)


def test_the_last_chunk_is_cut_at_until(harness: Harness, events: dict[str, datetime]) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-HOUR), at(-HOUR + 2500), step_s=1800)
    assert advance(harness, backfill_id).chunks == 2
    assert [(run.window_start, run.window_end) for run in chunk_runs(harness)] == [
        (at(-HOUR), at(-HOUR + 1800)),
        (at(-HOUR + 1800), at(-HOUR + 2500)),
    ]


def test_backfill_and_fires_over_the_same_times_import_each_event_once(
    harness: Harness, events: dict[str, datetime]
) -> None:
    harness.add("win", "explorer-window", every="1m", since=at(-2 * HOUR).isoformat(), chunk_size=3)
    # A fire at the same second as a chunk's start is a run of its own.
    assert fire(harness.context, "win", at(-3 * HOUR + 1800)).outcome == FireOutcome.EMPTY
    live = fire(harness.context, "win", NOW)  # [NOW-2h, NOW)
    assert live.outcome == FireOutcome.SUBMITTED

    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR))  # overlaps the live window by an hour
    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    later = fire(harness.context, "win", at(HOUR))  # [NOW, NOW+1h)
    assert later.outcome == FireOutcome.SUBMITTED

    assert requested_items(harness) == between(events, at(-3 * HOUR), at(HOUR))
    runs = chunk_runs(harness)
    assert runs[1].fire_time == at(-3 * HOUR + 1800) and runs[1].status == RunStatus.SUBMITTED
    # The overlapping chunks found only events the fire had imported: nothing new, no job.
    assert [run.status for run in runs[2:]] == [RunStatus.EMPTY, RunStatus.EMPTY]
    with harness.sessions() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == at(HOUR)


def test_two_tasks_on_one_backfill_import_each_event_once(harness: Harness, events: dict[str, datetime]) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), chunk_size=2)
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR), step_s=600)
    barrier = Barrier(3)

    def go(_: int) -> BackfillOutcome:
        barrier.wait(timeout=30)
        outcome = BackfillOutcome.BUSY
        while outcome == BackfillOutcome.BUSY:
            outcome = advance(harness, backfill_id).outcome
        return outcome

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(go, range(3)))
    assert set(outcomes) == {BackfillOutcome.DONE}
    assert requested_items(harness) == between(events, at(-3 * HOUR), at(-HOUR))
    assert len(chunk_runs(harness)) == 12


def test_the_sample_of_a_backfill_is_the_schedules(harness: Harness, events: dict[str, datetime]) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat(), sample=0.5)
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(HOUR - 3600))
    advance(harness, backfill_id)
    expected = between(events, at(-3 * HOUR), NOW)
    kept = Counter({event: 1 for event in expected if keeps(event, 0.5)})
    assert 0 < len(kept) < len(expected)
    assert requested_items(harness) == kept
    assert sum(run.sampled_out_count or 0 for run in chunk_runs(harness)) == len(expected) - len(kept)


def test_a_spans_window_backfill_carries_the_mapping_contract(harness: Harness) -> None:
    harness.api.spans = {(f"t{n}", f"s{n}"): at(-HOUR + n * 60) for n in range(5)}
    harness.clock.now = at(HOUR)
    harness.add(
        "spans", "spans-window", every="1m", since=NOW.isoformat(), mapping=["input=span_attributes:gen_ai.prompt"]
    )
    backfill_id = backfill(harness, "spans", at(-HOUR), NOW)
    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    with harness.sessions() as session:
        [job] = session.scalars(select(ImportJob))
    assert "mapping_contract" in job.params
    assert requested_items(harness) == Counter({f"t{n}:s{n}": 1 for n in range(5)})


# --- crashes and resumes ----------------------------------------------------------------------------------------


def test_a_chunk_left_started_by_a_dead_task_is_taken_over_after_its_lease(
    harness: Harness, events: dict[str, datetime]
) -> None:
    schedule_id = harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-2 * HOUR))
    # A task claimed the first chunk and died before it recorded anything.
    with harness.sessions() as session:
        claim = claim_chunk_run(
            session, schedule_id, backfill_id, at(-3 * HOUR), owner="dead", now=harness.clock(), lease_s=30.0
        )
        assert claim.run is not None
        session.commit()

    busy = advance(harness, backfill_id)
    assert busy.outcome == BackfillOutcome.BUSY and busy.retry_after_s is not None
    assert requested_items(harness) == Counter()

    harness.clock.now += timedelta(seconds=31)
    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    assert requested_items(harness) == between(events, at(-3 * HOUR), at(-2 * HOUR))
    assert [(run.attempts, run.status) for run in chunk_runs(harness)] == [
        (2, RunStatus.SUBMITTED),
        (1, RunStatus.SUBMITTED),
    ]


def test_a_task_that_dies_between_a_chunk_and_the_cursor_is_resumed_without_doubles(
    harness: Harness, events: dict[str, datetime]
) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR))
    first = advance(harness, backfill_id, budget_s=0.0)  # one chunk, then the task hands over
    assert (first.outcome, first.chunks_done) == (BackfillOutcome.MORE, 1)
    # As if the task had died after the chunk's commit, before the cursor moved.
    with harness.sessions() as session:
        row = session.get(ScheduleBackfill, backfill_id)
        assert row is not None
        row.cursor = row.since
        session.commit()
    sent_before = len(harness.sent)

    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    assert requested_items(harness) == between(events, at(-3 * HOUR), at(-HOUR))
    assert len(chunk_runs(harness)) == 4
    assert len(harness.sent) == sent_before + 3


def test_a_chunk_whose_search_failed_is_carried_out_by_the_next_attempt(
    harness: Harness, events: dict[str, datetime]
) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-2 * HOUR))
    harness.api.fail_next = 1

    failed = advance(harness, backfill_id)
    assert (failed.outcome, failed.chunks_done) == (BackfillOutcome.FAILED, 0)
    assert "search is down" in (the_backfill(harness, backfill_id).message or "")
    [run] = chunk_runs(harness)
    assert run.status == RunStatus.FAILED

    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE
    assert requested_items(harness) == between(events, at(-3 * HOUR), at(-2 * HOUR))
    assert [(run.attempts, run.status) for run in chunk_runs(harness)] == [
        (2, RunStatus.SUBMITTED),
        (1, RunStatus.SUBMITTED),
    ]
    assert the_backfill(harness, backfill_id).message is None


def test_asking_again_for_the_same_range_resumes_the_backfill(harness: Harness, events: dict[str, datetime]) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR))
    advance(harness, backfill_id, budget_s=0.0)
    assert backfill(harness, "win", at(-3 * HOUR), at(-HOUR)) == backfill_id
    assert backfill(harness, "win", at(-3 * HOUR), at(-HOUR), step_s=600) != backfill_id  # another step, another one
    advance(harness, backfill_id)
    assert backfill(harness, "win", at(-3 * HOUR), at(-HOUR)) == backfill_id  # done: found, not started again


def test_a_backfill_of_a_removed_schedule_stops_and_runs_again_when_asked(
    harness: Harness, events: dict[str, datetime]
) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    backfill_id = backfill(harness, "win", at(-3 * HOUR), at(-HOUR))
    with harness.sessions() as session:
        remove_schedule(session, "win", now=harness.clock())
        session.commit()
    assert advance(harness, backfill_id).outcome == BackfillOutcome.STOPPED
    assert the_backfill(harness, backfill_id).status == BackfillStatus.STOPPED
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    assert backfill(harness, "win", at(-3 * HOUR), at(-HOUR)) == backfill_id
    assert advance(harness, backfill_id).outcome == BackfillOutcome.DONE


# --- the request ------------------------------------------------------------------------------------------------


def test_only_window_schedules_can_be_backfilled(harness: Harness) -> None:
    harness.add("hourly", "campaign", every="1h", campaign=CAMPAIGN)
    with pytest.raises(BackfillError, match="'hourly' is a plain schedule: only window schedules"):
        backfill(harness, "hourly", at(-HOUR), NOW)
    with pytest.raises(BackfillError, match="no schedule named 'nope'"):
        backfill(harness, "nope", at(-HOUR), NOW)


def test_a_range_must_be_ordered_past_and_of_bounded_chunks(harness: Harness) -> None:
    harness.add("win", "explorer-window", every="1m", since=NOW.isoformat())
    with pytest.raises(BackfillError, match="must be before --until"):
        backfill(harness, "win", NOW, NOW)
    with pytest.raises(BackfillError, match="is later than 2026-03-01T12:00:00Z"):
        backfill(harness, "win", at(-HOUR), at(1))
    with harness.sessions() as session, pytest.raises(BackfillError, match="settle lag of 60s"):
        request_backfill(session, "win", since=at(-HOUR), until=at(-30), step_s=60, now=NOW, settle_lag_s=60)
    with harness.sessions() as session, pytest.raises(BackfillError, match="the retention cutoff"):
        request_backfill(
            session, "win", since=at(-3 * 86400), until=at(-HOUR), step_s=HOUR, now=NOW, settle_lag_s=0,
            prune_older_than_s=2 * 86400,
        )  # fmt: skip
    with pytest.raises(BackfillError, match="10001 chunks of 1s: at most 10000"):
        backfill(harness, "win", at(-10_001), NOW, step_s=1)


def test_moments_are_iso_or_a_period_ago() -> None:
    assert parse_moment("2026-03-01T10:00:00Z", now=NOW) == at(-2 * HOUR)
    assert parse_moment("2026-03-01T10:00:00.5", now=NOW) == at(-2 * HOUR)
    assert parse_moment("2026-03-01T12:00:00+02:00", now=NOW) == at(-2 * HOUR)
    assert parse_moment("1h30m ago", now=NOW) == at(-5400)
    with pytest.raises(BackfillError, match="cannot read 'yesterday'"):
        parse_moment("yesterday", now=NOW)
    with pytest.raises(BackfillError, match="cannot read '1x ago'"):
        parse_moment("1x ago", now=NOW)
