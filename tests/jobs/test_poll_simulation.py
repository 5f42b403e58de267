"""Imports followed through jobs.transitions on a simulated poller: progress linear over the import, polls on a tick.

The same answers a poll round would write: accepted at 0 with progress 0, then RUNNING with the whole percent done
(as the emulator and the API truncate it), then COMPLETED once the import's time is up. Rounds run on the poller's
1 s tick, observe a little after it (the time the answer is stamped with) and write a little later still, so a job due
between two ticks waits for the next one, as in the service. With the shipped policy, forecasting must
cost far fewer polls than restarting the backoff at every movement, and still see each end within 2 s.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from api_client import DatasetImportTask
from jobs import transitions
from jobs.poll_backoff import PollPolicy
from jobs.transitions import Observation, apply_observation
from store.models import ImportJob, ImportKind, JobStatus

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TICK_S = 1.0  # DSIMPORT_POLL_TICK_S's default
OBSERVED_AFTER_TICK_S = 0.1  # the round claims and the API answers
WRITTEN_AFTER_TICK_S = 0.4  # the answer is written (the transition's ``now``)
SHIPPED = PollPolicy()  # worker.settings' defaults (tests/worker/test_settings.py checks they agree)
FORECAST_OFF = PollPolicy(forecast_fraction=0.0)  # the schedule before forecasting
DURATIONS_S = [3.0, 5.0, 7.5, 12.0, 17.5, 23.0, 30.0, 60.0, 180.0]


@dataclass(frozen=True)
class Followed:
    polls: int
    lag_s: float


def remote(status: str, progress: int) -> DatasetImportTask:
    return DatasetImportTask.model_validate(
        {
            "id": "task-1", "created_at": START.isoformat(), "updated_at": START.isoformat(), "deleted_at": None,
            "creator_id": "u", "dataset_id": "ds-1", "workspace_id": "w", "status": status, "progress": progress,
        }
    )  # fmt: skip


def follow(policy: PollPolicy, duration_s: float, *, phase_s: float, rng: random.Random) -> Followed:
    """Follow one import of ``duration_s`` to its end; the poller's ticks fall at ``phase_s`` + k x TICK_S."""
    job = ImportJob(
        id="job-1", kind=ImportKind.EXPLORER, dataset_id="ds-1", params={}, idempotency_key="k", origin="test",
        status=JobStatus.SUBMITTING, attempts=1, poll_count=0, deadline_at=START + timedelta(hours=1),
        created_at=START, updated_at=START,
    )  # fmt: skip
    assert transitions.accepted(job, remote("RUNNING", 0), now=START, policy=policy, message="accepted") is None
    for _ in range(10_000):
        assert job.next_poll_at is not None
        due_s = (job.next_poll_at - START).total_seconds()
        tick_s = phase_s + max(0, math.ceil((due_s - phase_s) / TICK_S)) * TICK_S
        observed_s = tick_s + OBSERVED_AFTER_TICK_S
        written_s = tick_s + WRITTEN_AFTER_TICK_S
        done = observed_s >= duration_s
        answer = remote("COMPLETED", 100) if done else remote("RUNNING", min(99, int(observed_s / duration_s * 100)))
        applied = apply_observation(
            job,
            Observation(task=answer, at=START + timedelta(seconds=observed_s)),
            now=START + timedelta(seconds=written_s),
            policy=policy,
            rng=rng,
            stuck_after_s=600.0,
        )
        if done:
            assert applied.finished
            return Followed(polls=job.poll_count, lag_s=written_s - duration_s)
    raise AssertionError("the import was never seen to end")


def follow_many(policy: PollPolicy, seed: int) -> list[tuple[float, Followed]]:
    rng = random.Random(seed)
    return [
        (duration_s, follow(policy, duration_s, phase_s=rng.uniform(0, TICK_S), rng=rng))
        for duration_s in DURATIONS_S
        for _ in range(5)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forecasting_sees_every_end_within_two_seconds(seed: int) -> None:
    for duration_s, followed in follow_many(SHIPPED, seed):
        assert 0 <= followed.lag_s <= 2.0, (duration_s, followed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forecasting_polls_a_steady_import_a_few_times_against_one_poll_a_second(seed: int) -> None:
    forecast = follow_many(SHIPPED, seed)
    before = follow_many(FORECAST_OFF, seed)
    for duration_s, followed in forecast:
        # The polls on the way (the cap apart, less the jitter), plus the first poll, the one near the end and at
        # most two more to see the end.
        shortest_cap_s = SHIPPED.max_interval_s * (1 - SHIPPED.jitter_ratio)
        assert followed.polls <= math.ceil(duration_s / shortest_cap_s) + 3, (duration_s, followed)
    forecast_polls = sum(f.polls for _, f in forecast)
    before_polls = sum(f.polls for _, f in before)
    assert forecast_polls * 3 <= before_polls, (forecast_polls, before_polls)
    # The lag is not bought with polls: it stays about what one poll a second gave.
    forecast_worst = max(f.lag_s for _, f in forecast)
    before_worst = max(f.lag_s for _, f in before)
    assert forecast_worst <= before_worst + 0.5, (forecast_worst, before_worst)


def test_imports_of_5_to_30_s_average_under_four_polls() -> None:
    # What bench/economy.py measures for imports on datasets of their own (plus one submit each), here without the
    # noise of a real worker: a 10 s cap needs about three polls on average over 5-30 s imports whatever the
    # forecast, and forecasting should not pay much more than that.
    rng = random.Random(7)
    runs = [follow(SHIPPED, rng.uniform(5, 30), phase_s=rng.uniform(0, TICK_S), rng=rng) for _ in range(300)]
    mean_polls = sum(f.polls for f in runs) / len(runs)
    lags = sorted(f.lag_s for f in runs)
    assert mean_polls <= 3.6, mean_polls
    assert lags[int(len(lags) * 0.99)] <= 1.5, lags[-5:]
