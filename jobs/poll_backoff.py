"""When to poll a running job next when its progress says nothing: exponential backoff with jitter.

The policy also holds the knob of the forecast (:mod:`jobs.poll_forecast`), which takes over while progress moves;
:func:`jobs.poll_forecast.next_poll_after` chooses between the two.

Pure functions; the random source is passed in so tests can pin it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["PollPolicy", "UniformSource", "next_poll"]


class UniformSource(Protocol):
    """Anything with ``random.Random.uniform``'s signature."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How poll intervals grow.

    The interval starts at ``initial_interval_s``, is multiplied by ``multiplier`` after each poll that saw no
    movement, never exceeds ``max_interval_s``, and each actual delay is spread by up to ``jitter_ratio`` of
    the interval so jobs submitted together do not stay in lockstep.

    While a RUNNING task's progress moves, the next poll is forecast from its rate instead
    (:func:`jobs.poll_forecast.forecast_poll`): at ``forecast_fraction`` of the time it may still need, within the
    same bounds. A fraction of 0 turns forecasting off: the interval then restarts at ``initial_interval_s``
    whenever progress moves.
    """

    initial_interval_s: float = 1.0
    multiplier: float = 1.5
    max_interval_s: float = 10.0
    jitter_ratio: float = 0.1
    forecast_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.initial_interval_s <= 0:
            raise ValueError(f"initial_interval_s must be > 0, got {self.initial_interval_s}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.max_interval_s < self.initial_interval_s:
            raise ValueError(
                f"max_interval_s ({self.max_interval_s}) must be >= initial_interval_s "
                f"({self.initial_interval_s})"
            )
        if not 0 <= self.jitter_ratio < 1:
            raise ValueError(f"jitter_ratio must be in [0, 1), got {self.jitter_ratio}")
        if not 0 <= self.forecast_fraction <= 1:
            raise ValueError(f"forecast_fraction must be in [0, 1], got {self.forecast_fraction}")

    @property
    def forecasts(self) -> bool:
        """Whether moving progress schedules the next poll by forecast (else the backoff restarts)."""
        return self.forecast_fraction > 0


def next_poll(
    policy: PollPolicy,
    *,
    previous_interval_s: float | None,
    progress_moved: bool,
    now: datetime,
    rng: UniformSource,
) -> tuple[datetime, float]:
    """Return ``(next_poll_at, interval_s)`` for a job just polled at ``now``.

    ``interval_s`` is the backoff before jitter; store it and pass it back as ``previous_interval_s`` next
    time, so jitter never compounds (a forecast's interval is stored the same way: the backoff grows from it).
    With no previous interval (first poll) or when progress moved, the interval restarts at
    ``initial_interval_s``. The jittered delay stays within ``[0, max_interval_s]``.
    """
    if previous_interval_s is None or progress_moved:
        interval_s = policy.initial_interval_s
    else:
        grown_s = max(previous_interval_s, policy.initial_interval_s) * policy.multiplier
        interval_s = min(grown_s, policy.max_interval_s)
    spread = interval_s * policy.jitter_ratio
    delay_s = interval_s + rng.uniform(-spread, spread) if spread > 0 else interval_s
    delay_s = min(max(delay_s, 0.0), policy.max_interval_s)
    return now + timedelta(seconds=delay_s), interval_s
