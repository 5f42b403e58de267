"""When to poll a running job next: exponential backoff with jitter, reset when the import moves.

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
    """

    initial_interval_s: float = 1.0
    multiplier: float = 1.5
    max_interval_s: float = 10.0
    jitter_ratio: float = 0.1

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
    time, so jitter never compounds. With no previous interval (first poll) or when progress moved, the
    interval restarts at ``initial_interval_s``. The jittered delay stays within ``[0, max_interval_s]``.
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
