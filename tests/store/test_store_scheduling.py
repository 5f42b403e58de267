"""Poll scheduling: backoff grows while nothing moves, resets when progress moves, is capped and jittered."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.poll_backoff import PollPolicy, UniformSource, next_poll

from .conftest import NOW

NO_JITTER = PollPolicy(initial_interval_s=1.0, multiplier=1.5, max_interval_s=10.0, jitter_ratio=0.0)


class Extreme:
    """A random source that always answers the low (or high) end of the range."""

    def __init__(self, high: bool) -> None:
        self.high = high
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float, /) -> float:
        self.calls.append((a, b))
        return b if self.high else a


def delay_s(policy: PollPolicy, previous: float | None, moved: bool, rng: UniformSource) -> tuple[float, float]:
    when, interval = next_poll(policy, previous_interval_s=previous, progress_moved=moved, now=NOW, rng=rng)
    return (when - NOW).total_seconds(), interval


def test_defaults_are_the_documented_ones() -> None:
    assert PollPolicy() == PollPolicy(
        initial_interval_s=1.0, multiplier=1.5, max_interval_s=10.0, jitter_ratio=0.1, forecast_fraction=1.0
    )
    assert PollPolicy().forecasts


def test_backoff_grows_geometrically_while_nothing_moves_and_stops_at_the_cap() -> None:
    rng = random.Random(0)
    intervals = []
    previous: float | None = None
    for _ in range(10):
        delay, previous = delay_s(NO_JITTER, previous, False, rng)
        assert delay == pytest.approx(previous)
        intervals.append(previous)
    assert intervals[:6] == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375])
    assert intervals[6:] == [10.0, 10.0, 10.0, 10.0]


def test_backoff_resets_to_the_initial_interval_when_progress_moves() -> None:
    delay, interval = delay_s(NO_JITTER, 10.0, True, random.Random(0))
    assert (delay, interval) == (1.0, 1.0)
    _, grown = delay_s(NO_JITTER, interval, False, random.Random(0))
    assert grown == 1.5


def test_a_stored_interval_below_the_initial_one_still_grows_from_the_initial_one() -> None:
    _, interval = delay_s(NO_JITTER, 0.01, False, random.Random(0))
    assert interval == 1.5


def test_jitter_spreads_the_delay_by_the_ratio_but_returns_the_unjittered_interval() -> None:
    policy = PollPolicy(initial_interval_s=2.0, multiplier=2.0, max_interval_s=100.0, jitter_ratio=0.25)
    low = Extreme(high=False)
    high = Extreme(high=True)
    assert delay_s(policy, 2.0, False, low) == (3.0, 4.0)
    assert delay_s(policy, 2.0, False, high) == (5.0, 4.0)
    assert low.calls == [(-1.0, 1.0)]


def test_jitter_never_goes_above_the_cap() -> None:
    policy = PollPolicy(initial_interval_s=1.0, multiplier=2.0, max_interval_s=10.0, jitter_ratio=0.5)
    delay, interval = delay_s(policy, 10.0, False, Extreme(high=True))
    assert (delay, interval) == (10.0, 10.0)
    delay, _ = delay_s(policy, 10.0, False, Extreme(high=False))
    assert delay == 5.0


def test_same_seed_same_schedule() -> None:
    policy = PollPolicy()
    assert next_poll(policy, previous_interval_s=3.0, progress_moved=False, now=NOW, rng=random.Random(7)) == (
        next_poll(policy, previous_interval_s=3.0, progress_moved=False, now=NOW, rng=random.Random(7))
    )


@given(
    initial=st.floats(min_value=0.01, max_value=60),
    multiplier=st.floats(min_value=1.0, max_value=5.0),
    extra=st.floats(min_value=0.0, max_value=600),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    previous=st.none() | st.floats(min_value=0.0, max_value=10_000),
    moved=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_never_negative_and_never_above_the_cap(
    initial: float, multiplier: float, extra: float, jitter: float, previous: float | None, moved: bool, seed: int
) -> None:
    policy = PollPolicy(initial_interval_s=initial, multiplier=multiplier, max_interval_s=initial + extra,
                        jitter_ratio=jitter)  # fmt: skip
    when, interval = next_poll(policy, previous_interval_s=previous, progress_moved=moved, now=NOW,
                               rng=random.Random(seed))  # fmt: skip
    assert NOW <= when <= NOW + timedelta(seconds=policy.max_interval_s)
    assert policy.initial_interval_s <= interval <= policy.max_interval_s
    if previous is None or moved:
        assert interval == policy.initial_interval_s
    spread = interval * jitter
    assert (when - NOW).total_seconds() >= interval - spread - 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_interval_s": 0}, "initial_interval_s must be > 0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"initial_interval_s": 5, "max_interval_s": 2}, r"max_interval_s \(2\) must be >= initial_interval_s"),
        ({"jitter_ratio": 1.0}, r"jitter_ratio must be in \[0, 1\)"),
        ({"jitter_ratio": -0.1}, r"jitter_ratio must be in \[0, 1\)"),
        ({"forecast_fraction": 1.01}, r"forecast_fraction must be in \[0, 1\]"),
        ({"forecast_fraction": -0.5}, r"forecast_fraction must be in \[0, 1\]"),
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PollPolicy(**kwargs)
