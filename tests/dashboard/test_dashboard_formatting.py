"""How ages and times read on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.formatting import age, duration, timestamp

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m 00s"), (185, "3m 05s"), (7800, "2h 10m"), (3 * 86400 + 4 * 3600, "3d 4h"),
     (-5, "0s")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_age_past_future_and_missing() -> None:
    assert age(NOW - timedelta(seconds=42), NOW) == "42s"
    assert age(NOW + timedelta(minutes=2), NOW) == "in 2m 00s"
    assert age(None, NOW) == ""


def test_timestamp_is_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert timestamp(datetime(2026, 3, 1, 13, 0, tzinfo=paris)) == "2026-03-01 12:00:00 UTC"
    assert timestamp(None) == ""
