"""How far a window schedule's watermark trails the clock, and whether that is past the alert threshold.

A window schedule imports ``[watermark, fire time - settle lag)`` and then moves its watermark, so ``now -
watermark`` is how old the newest item it may still be missing is: a schedule that stopped firing, or whose fires
fail, shows it growing. Other schedule kinds keep no watermark and have no lag.
"""

from __future__ import annotations

from datetime import datetime

from store.models import WINDOW_SCHEDULE_KINDS, Schedule

__all__ = ["is_lagging", "watermark_lag_s"]


def watermark_lag_s(schedule: Schedule, now: datetime) -> float | None:
    """Seconds from the watermark to ``now`` (never negative); None for a schedule that keeps no watermark, has none
    yet, or no longer fires (finished or removed: its lag would only grow, and alert forever)."""
    if schedule.kind not in WINDOW_SCHEDULE_KINDS or schedule.watermark is None:
        return None
    if schedule.finished_at is not None or schedule.removed_at is not None:
        return None
    return max(0.0, (now - schedule.watermark).total_seconds())


def is_lagging(lag_s: float | None, alert_after_s: float) -> bool:
    """True when a lag is known and past the threshold (a threshold of 0 turns the alert off)."""
    return lag_s is not None and alert_after_s > 0 and lag_s > alert_after_s
