"""Building explorer search filters (``FilterPayload.filters``, contract §5.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["iso_utc", "time_window_filter"]


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix, as the API writes timestamps; a naive datetime is taken as UTC."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def time_window_filter(start: datetime, end: datetime, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Events created in ``[start, end)``, ANDed with ``extra`` (a condition or a group) when given.

    Half-open, so consecutive windows that share a boundary never return an event twice.
    """
    if _utc(start) >= _utc(end):
        raise ValueError(f"the window is empty: start {start.isoformat()} is not before end {end.isoformat()}")
    conditions: list[dict[str, Any]] = [
        {"field": "created_at", "op": "gte", "value": iso_utc(start)},
        {"field": "created_at", "op": "lt", "value": iso_utc(end)},
    ]
    if extra is not None:
        conditions.append(extra)
    return {"AND": conditions}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
