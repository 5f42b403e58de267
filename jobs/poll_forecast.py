"""When to poll a job next after an answer: when its progress rate says it can end, else by backoff.

:func:`next_poll_after` is the whole rule (:mod:`jobs.transitions` writes what it decides on the job; the benchmark's
baselines and schedule minimum call it too). The backoff alone restarted at the initial interval whenever progress
moved, so a steadily progressing import was polled every second of its life; the forecast polls it a few times, and
about when it ends. The backoff (:func:`jobs.poll_backoff.next_poll`) still decides when progress gives no rate:
unknown, not moved yet, gone backwards or stalled, a remote status other than RUNNING, or a ``forecast_fraction``
of 0.

The forecast is the *earliest* end two observations allow for progress that grows linearly (``p1`` first seen at
``t1``, ``p2`` seen at ``t2``, in whole percents): the true progress lies in ``[p1, p1 + 1)`` and ``[p2, p2 + 1)``,
so the rate is below ``(p2 - p1 + 1) / (t2 - t1)`` and more than ``99 - p2`` points remain. A poll aimed there lands
on or before the end, not after it: early costs one more poll a moment later, late would cost detection lag. A
poll that came early sees the same value again; the rate still holds until the value has been held
``STALL_FACTOR`` times as long as the rate needs per point (near the end the job is polled each round meanwhile),
after which the import is taken to have slowed down and the backoff decides.

The delay is the remaining time scaled by ``forecast_fraction``, within ``[initial_interval_s, max_interval_s]``;
an end expected within the initial interval is polled at the estimate (not sooner than ``SOONEST_FRACTION`` of the
initial interval), so the last poll is not a full interval late. Jitter spreads the polls made at the cap, where
imports started together would stay in step, and only ever moves them earlier; a poll aimed at an end is not
jittered (each import's end is its own, and earlier would mostly cost one more poll).

Pure functions; the random source is passed in so tests can pin it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs.poll_backoff import PollPolicy, UniformSource, next_poll

__all__ = [
    "COMPLETE",
    "SOONEST_FRACTION",
    "STALL_FACTOR",
    "ProgressPoint",
    "ProgressTrack",
    "fastest_rate",
    "forecast_poll",
    "has_stalled",
    "least_remaining_s",
    "next_poll_after",
]

# Progress is read as a percentage: the API leaves its units undocumented, and a value above this says it is not.
COMPLETE = 100
# A value held this many times longer than the measured rate needs per point means the import slowed down: its
# rate no longer says when it ends. Three keeps an import at 99 % polled each round through its last point even
# when the rate was overestimated, and hands a stuck one to the backoff after a few of its points' worth of time.
STALL_FACTOR = 3.0
# An end expected any moment is polled this share of the initial interval after the answer, not at once: with the
# default 1 s tick that is still the next round, and a job is never polled back to back by rounds that follow each
# other without waiting for the tick (full batches) while it sits at 99 %.
SOONEST_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class ProgressPoint:
    """A progress value and when it was observed (for a value seen before: when it was first seen)."""

    progress: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ProgressTrack:
    """What the forecast keeps of a task's progress: the last value, when it was first seen, the fastest rate.

    ``rate`` is the most points per second the last two distinct values allow (:func:`fastest_rate`), None until
    two values show one or after progress went backwards.
    """

    progress: int | None = None
    since: datetime | None = None
    rate: float | None = None

    def after(self, seen: int | None, at: datetime) -> ProgressTrack:
        """The track once an answer read ``seen`` at ``at`` (an unknown reading changes nothing)."""
        if seen is None:
            return self
        if seen == self.progress:
            return self if self.since is not None else ProgressTrack(seen, at, self.rate)
        rate = None
        if self.progress is not None and self.since is not None:
            rate = fastest_rate(ProgressPoint(self.progress, self.since), ProgressPoint(seen, at))
        return ProgressTrack(seen, at, rate)


def next_poll_after(
    policy: PollPolicy,
    before: ProgressTrack,
    *,
    seen: int | None,
    running: bool,
    previous_interval_s: float | None,
    seen_at: datetime,
    now: datetime,
    rng: UniformSource,
) -> tuple[datetime, float]:
    """Return ``(next_poll_at, interval_s)`` after an answer that read progress ``seen`` at ``seen_at``.

    ``before`` is the track as it was before this answer, ``running`` whether the remote status is RUNNING,
    ``now`` when the answer is written (the backoff counts from there; a forecast counts from ``seen_at``, when
    the task was that far). ``interval_s`` is what to pass back as ``previous_interval_s`` next time.
    """
    moved = seen is not None and seen != before.progress
    if policy.forecasts and running and seen is not None:
        after = before.after(seen, seen_at)
        if after.rate is not None and after.since is not None:
            # A value seen again still follows the rate, until it has been held too long for it.
            if moved or not has_stalled(ProgressPoint(seen, after.since), after.rate, seen_at):
                return forecast_poll(policy, least_remaining_s(seen, after.rate), now=seen_at, rng=rng)
    return next_poll(policy, previous_interval_s=previous_interval_s, progress_moved=moved, now=now, rng=rng)


def fastest_rate(previous: ProgressPoint, current: ProgressPoint) -> float | None:
    """The most points per second the import can have progressed at between two observations.

    None when they give no rate: progress did not grow (the same value, or it went backwards), time did not pass,
    or a value is outside 0..100 (then it is not a percentage and nothing can be predicted from it).
    """
    elapsed_s = (current.at - previous.at).total_seconds()
    if elapsed_s <= 0 or not 0 <= previous.progress < current.progress <= COMPLETE:
        return None
    return (current.progress - previous.progress + 1) / elapsed_s


def least_remaining_s(progress: int, rate: float) -> float:
    """The least time an import whose progress reads ``progress`` now may still need, at ``rate`` at most."""
    return max(0, COMPLETE - 1 - progress) / rate


def has_stalled(since: ProgressPoint, rate: float, now: datetime) -> bool:
    """True when ``since.progress``, first seen at ``since.at``, has been held too long for ``rate`` to hold."""
    return (now - since.at).total_seconds() > STALL_FACTOR / rate


def forecast_poll(
    policy: PollPolicy, remaining_s: float, *, now: datetime, rng: UniformSource
) -> tuple[datetime, float]:
    """Return ``(next_poll_at, interval_s)`` for an import that may end ``remaining_s`` after ``now``.

    ``interval_s`` is the delay before jitter (stored as the job's last interval, so the backoff grows from it if
    the import stalls). An end due within the initial interval is polled at the estimate, but not sooner than
    ``SOONEST_FRACTION`` of the initial interval; otherwise the delay is
    ``remaining_s x forecast_fraction`` within ``[initial_interval_s, max_interval_s]``. When the cap is what
    decided, jitter takes up to ``jitter_ratio`` of it off (never adds: later could be after the end).
    """
    if remaining_s <= policy.initial_interval_s:
        interval_s = max(remaining_s, policy.initial_interval_s * SOONEST_FRACTION)
    else:
        scaled_s = remaining_s * policy.forecast_fraction
        interval_s = min(max(scaled_s, policy.initial_interval_s), policy.max_interval_s)
    delay_s = interval_s
    if remaining_s * policy.forecast_fraction > policy.max_interval_s and policy.jitter_ratio > 0:
        delay_s = interval_s * (1 - rng.uniform(0, policy.jitter_ratio))
    return now + timedelta(seconds=delay_s), interval_s
