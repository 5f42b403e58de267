"""How times and durations read on the page."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["age", "duration", "timestamp"]


def duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 10m``, ``3d 4h``: two units at most."""
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was (``in 5s`` for a moment still ahead); empty for None."""
    if moment is None:
        return ""
    delta = (now - moment).total_seconds()
    return duration(delta) if delta >= 0 else f"in {duration(-delta)}"


def timestamp(moment: datetime | None) -> str:
    """``2026-01-02 03:04:05 UTC``; empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
