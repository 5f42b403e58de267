"""The fewest API calls an import needs under a poll policy: the yardstick of the API economy benchmark.

A job of remote duration ``d`` is submitted at 0 (one POST, progress 0 at that moment) and polled at
``t1 = initial``, then whenever :func:`jobs.poll_forecast.next_poll_after` (the rule the service follows) says, with
no poll tick and the random source answering the middle of each jitter range. It needs every poll up to and
including the first one at or after ``d``. The task's progress is the emulator's, ``int(elapsed / d * 100)``
capped at 99 until the end, as smooth as a real import's can be. Three readings of the policy:

- ``forecast`` (as implemented): while progress moves, the next poll goes when its rate says the import can end at
  the earliest, at most the cap away; a few polls per import, and one about its end.
- ``restart`` (before the forecast; the policy with ``forecast_fraction=0``): the interval restarts at ``initial``
  whenever progress moved since the last poll. The emulator's progress moves between any two polls more than
  ``d / 100`` apart, so the interval never grows: one poll every ``initial`` seconds.
- ``backoff``: progress ignored, the interval grows to the cap (1, 1.5, 2.25, ... 10 s by default).

Per-task polling on the same schedule (what every baseline does) makes exactly these polls, one call each; only
``list_tasks`` grouping can go below them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Literal

from jobs.poll_backoff import PollPolicy
from jobs.poll_forecast import ProgressTrack, next_poll_after

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

Reading = Literal["forecast", "restart", "backoff"]


class _MidJitter:
    def uniform(self, a: float, b: float, /) -> float:
        return (a + b) / 2


def emulator_progress(elapsed_s: float, duration_s: float) -> int:
    return min(99, int(elapsed_s / duration_s * 100)) if duration_s > 0 else 0


def poll_times(policy: PollPolicy, duration_s: float, *, reading: Reading = "forecast") -> list[float]:
    """Seconds after the submit at which the schedule polls a task that ends at ``duration_s``."""
    if reading == "restart":
        policy = dataclasses.replace(policy, forecast_fraction=0.0)
    times: list[float] = []
    at_s, interval_s = policy.initial_interval_s, policy.initial_interval_s
    track = ProgressTrack(0, _EPOCH)
    rng = _MidJitter()
    while True:
        times.append(at_s)
        if at_s >= duration_s:
            return times
        at = _EPOCH + timedelta(seconds=at_s)
        seen = None if reading == "backoff" else emulator_progress(at_s, duration_s)
        due, interval_s = next_poll_after(
            policy,
            track,
            seen=seen,
            running=True,
            previous_interval_s=interval_s,
            seen_at=at,
            now=at,
            rng=rng,
        )
        track = track.after(seen, at)
        at_s = (due - _EPOCH).total_seconds()


def minimum_calls(policy: PollPolicy, duration_s: float, *, reading: Reading = "forecast") -> int:
    """Polls the schedule needs for one import of ``duration_s``, plus its submit."""
    return len(poll_times(policy, duration_s, reading=reading)) + 1


def schedule_lag_bound_s(policy: PollPolicy, duration_s: float, *, reading: Reading = "forecast") -> float:
    """How long after its end the schedule's last poll comes (the lag with instant polls)."""
    return poll_times(policy, duration_s, reading=reading)[-1] - duration_s
