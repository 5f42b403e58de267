"""The poll forecast (jobs.poll_forecast): the earliest end two progress observations allow, and the poll it sets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.poll_backoff import PollPolicy
from jobs.poll_forecast import (
    ProgressPoint,
    ProgressTrack,
    fastest_rate,
    forecast_poll,
    has_stalled,
    least_remaining_s,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NO_JITTER = PollPolicy(initial_interval_s=1.0, multiplier=1.5, max_interval_s=10.0, jitter_ratio=0.0)


class Extreme:
    """A random source that always answers the low (or high) end of the range, and records what it was asked."""

    def __init__(self, high: bool) -> None:
        self.high = high
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float, /) -> float:
        self.calls.append((a, b))
        return b if self.high else a


def point(progress: int, seconds: float) -> ProgressPoint:
    return ProgressPoint(progress, NOW + timedelta(seconds=seconds))


def delay_s(policy: PollPolicy, remaining_s: float, rng: object = None) -> tuple[float, float]:
    when, interval = forecast_poll(policy, remaining_s, now=NOW, rng=rng or random.Random(0))  # type: ignore[arg-type]
    return (when - NOW).total_seconds(), interval


# --- the estimate ---------------------------------------------------------------------------------------------------


def earliest_finish_s(previous: ProgressPoint, current: ProgressPoint) -> float | None:
    rate = fastest_rate(previous, current)
    return None if rate is None else least_remaining_s(current.progress, rate)


def test_the_estimate_is_the_earliest_end_whole_percents_allow() -> None:
    # 10 % at 0 s and 30 % at 4 s: the rate is below 21 points in 4 s, and more than 69 points remain.
    assert fastest_rate(point(10, 0), point(30, 4)) == pytest.approx(21 / 4)
    assert earliest_finish_s(point(10, 0), point(30, 4)) == pytest.approx(69 / (21 / 4))


def test_a_long_baseline_gives_an_estimate_close_to_the_true_end() -> None:
    # 5 % per second, observed at 2 s and 12 s: the true end is 8 s after the second observation.
    estimate = earliest_finish_s(point(10, 2), point(60, 12))
    assert estimate is not None and 7.5 < estimate <= 8.0


@pytest.mark.parametrize("progress", [99, 100])
def test_nothing_left_to_do_means_due_now(progress: int) -> None:
    assert earliest_finish_s(point(90, 0), point(progress, 2)) == 0.0


@pytest.mark.parametrize(
    ("previous", "current"),
    [
        (point(40, 0), point(40, 5)),  # has not moved
        (point(40, 0), point(30, 5)),  # went backwards
        (point(40, 5), point(50, 5)),  # no time between the two
        (point(40, 6), point(50, 5)),  # clocks out of order
        (point(40, 0), point(150, 5)),  # not a percentage
        (point(-5, 0), point(10, 5)),  # not a percentage
    ],
)
def test_no_rate_from_two_points_that_do_not_show_one(previous: ProgressPoint, current: ProgressPoint) -> None:
    assert fastest_rate(previous, current) is None


@given(
    duration_s=st.floats(min_value=2.0, max_value=3600.0),
    first=st.floats(min_value=0.0, max_value=0.98),
    second=st.floats(min_value=0.0, max_value=0.99),
    third=st.floats(min_value=0.0, max_value=1.0),
)
def test_with_linear_progress_the_estimate_is_never_after_the_true_end(
    duration_s: float, first: float, second: float, third: float
) -> None:
    # The API truncates to whole percents, as the emulator does: wherever the two observations fall, the forecast
    # is on or before the end, so a poll placed there never adds lag; and so is the forecast at any later
    # observation that still reads the second value (a poll that came early).
    t1, t2 = sorted((first * duration_s, second * duration_s))
    p1, p2 = int(t1 / duration_s * 100), int(t2 / duration_s * 100)
    rate = fastest_rate(point(p1, t1), point(p2, t2))
    if p2 <= p1 or t2 <= t1:
        assert rate is None
        return
    assert rate is not None
    assert t2 + least_remaining_s(p2, rate) <= duration_s * (1 + 1e-9)
    t3 = t2 + third * (min(duration_s, (p2 + 1) / 100 * duration_s) - t2)  # still reads p2
    assert t3 + least_remaining_s(p2, rate) <= duration_s * (1 + 1e-9)


def test_a_value_held_longer_than_the_rate_allows_has_stalled() -> None:
    # 2 points a second: a value is left within half a second at that rate; held past three times that, it stalled.
    held = point(99, 0)
    assert not has_stalled(held, 2.0, NOW + timedelta(seconds=1.5))
    assert has_stalled(held, 2.0, NOW + timedelta(seconds=1.6))


# --- what a job keeps -----------------------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_the_track_keeps_the_first_sighting_of_a_value_and_the_rate_between_values() -> None:
    track = ProgressTrack(0, at(0)).after(10, at(2))
    assert track == ProgressTrack(10, at(2), 11 / 2)
    assert track.after(10, at(3)) == track, "seen again: first sighting and rate kept"
    assert track.after(None, at(4)) == track, "an unknown reading changes nothing"
    assert track.after(30, at(4)) == ProgressTrack(30, at(4), 21 / 2)


def test_the_track_forgets_the_rate_when_progress_goes_back_and_starts_one_where_it_had_no_sighting() -> None:
    assert ProgressTrack(40, at(0), 5.0).after(30, at(2)) == ProgressTrack(30, at(2), None)
    assert ProgressTrack(None).after(10, at(1)) == ProgressTrack(10, at(1), None)
    assert ProgressTrack(10, None).after(10, at(1)) == ProgressTrack(10, at(1), None)
    assert ProgressTrack(10, None).after(20, at(1)) == ProgressTrack(20, at(1), None)


# --- the poll it sets -----------------------------------------------------------------------------------------------


def test_an_end_due_within_the_initial_interval_is_polled_at_the_estimate_but_not_at_once() -> None:
    assert delay_s(NO_JITTER, 0.7) == (pytest.approx(0.7), pytest.approx(0.7))
    assert delay_s(NO_JITTER, 0.2) == (0.5, 0.5)
    assert delay_s(NO_JITTER, 0.0) == (0.5, 0.5)


def test_an_end_within_the_cap_is_polled_at_the_estimate_by_default() -> None:
    assert delay_s(NO_JITTER, 6.5) == (6.5, 6.5)


def test_a_far_end_is_polled_at_the_cap() -> None:
    assert delay_s(NO_JITTER, 95.0) == (10.0, 10.0)


def test_the_fraction_polls_on_the_way_and_never_below_the_initial_interval() -> None:
    half = PollPolicy(initial_interval_s=1.0, max_interval_s=10.0, jitter_ratio=0.0, forecast_fraction=0.5)
    assert delay_s(half, 8.0) == (4.0, 4.0)
    assert delay_s(half, 40.0) == (10.0, 10.0)
    # 1.6 s away is beyond the initial interval: half of it would be below, so the initial interval it is.
    assert delay_s(half, 1.6) == (1.0, 1.0)
    # Within the initial interval the estimate itself, whatever the fraction.
    assert delay_s(half, 0.8) == (pytest.approx(0.8), pytest.approx(0.8))


def test_jitter_only_ever_polls_earlier_by_at_most_the_ratio_of_the_cap() -> None:
    policy = PollPolicy(jitter_ratio=0.2)
    late, interval = delay_s(policy, 30.0, Extreme(high=False))
    early, same_interval = delay_s(policy, 30.0, Extreme(high=True))
    assert interval == same_interval == policy.max_interval_s
    assert late == pytest.approx(interval)
    assert early == pytest.approx(interval * 0.8)


def test_jitter_spreads_jobs_polled_at_the_cap() -> None:
    rng = random.Random(3)
    delays = {round(delay_s(PollPolicy(), 60.0, rng)[0], 6) for _ in range(20)}
    assert len(delays) == 20
    assert all(10.0 * 0.9 <= d <= 10.0 for d in delays)


@pytest.mark.parametrize("remaining_s", [0.6, 4.0, 9.9])
def test_a_poll_aimed_at_the_end_is_not_jittered(remaining_s: float) -> None:
    rng = Extreme(high=True)
    assert delay_s(PollPolicy(jitter_ratio=0.5), remaining_s, rng) == (remaining_s, remaining_s)
    assert rng.calls == []


@given(remaining_s=st.floats(min_value=0.0, max_value=1e6), fraction=st.floats(min_value=0.01, max_value=1.0))
def test_the_delay_stays_within_zero_and_the_cap_and_never_after_the_estimate(
    remaining_s: float, fraction: float
) -> None:
    policy = PollPolicy(forecast_fraction=fraction)
    delay, interval = delay_s(policy, remaining_s, random.Random(0))
    # Within a microsecond: a timedelta's resolution.
    assert 0.0 <= delay <= interval + 1e-6
    assert interval <= policy.max_interval_s
    assert interval <= max(remaining_s, policy.initial_interval_s)
