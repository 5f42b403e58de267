"""The fewest API calls an import needs under a poll policy: the yardstick of the API economy benchmark.

A job of remote duration ``d`` is submitted at 0 (one POST) and polled at ``t1 = initial``, then after each poll at
the interval :func:`jobs.poll_backoff.next_poll` gives (jitter left out: it averages to nothing). It needs every poll
up to and including the first one at or after ``d``. Two readings of the policy:

- as implemented: the interval restarts at ``initial`` whenever the task's progress moved since the last poll. The
  emulator's progress is ``int(elapsed / d * 100)``, as smooth as a real import's can be, so it moves between any
  two polls more than ``d / 100`` apart, and the interval never grows: one poll every ``initial`` seconds.
- pure backoff: progress ignored, the interval grows to the cap (1, 1.5, 2.25, ... 10 s by default).

Per-task polling on the same schedule (what every baseline does) makes exactly these polls, one call each; only
``list_tasks`` grouping can go below them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.poll_backoff import PollPolicy, next_poll

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _NoJitter:
    def uniform(self, a: float, b: float, /) -> float:
        return (a + b) / 2


def emulator_progress(elapsed_s: float, duration_s: float) -> int:
    return min(99, int(elapsed_s / duration_s * 100)) if duration_s > 0 else 0


def poll_times(policy: PollPolicy, duration_s: float, *, progress_resets: bool) -> list[float]:
    """Seconds after the submit at which the schedule polls a task that ends at ``duration_s``."""
    times: list[float] = []
    at_s, interval_s = policy.initial_interval_s, policy.initial_interval_s
    progress = 0
    rng = _NoJitter()
    while True:
        times.append(at_s)
        if at_s >= duration_s:
            return times
        seen = emulator_progress(at_s, duration_s)
        moved = progress_resets and seen != progress
        progress = seen
        due, interval_s = next_poll(
            policy,
            previous_interval_s=interval_s,
            progress_moved=moved,
            now=_EPOCH + timedelta(seconds=at_s),
            rng=rng,
        )
        at_s = (due - _EPOCH).total_seconds()


def minimum_calls(policy: PollPolicy, duration_s: float, *, progress_resets: bool) -> int:
    """Polls the schedule needs for one import of ``duration_s``, plus its submit."""
    return len(poll_times(policy, duration_s, progress_resets=progress_resets)) + 1


def schedule_lag_bound_s(policy: PollPolicy, duration_s: float, *, progress_resets: bool) -> float:
    """How long after its end the schedule's last poll comes (the lag with instant polls)."""
    return poll_times(policy, duration_s, progress_resets=progress_resets)[-1] - duration_s
