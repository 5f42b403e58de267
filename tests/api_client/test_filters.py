"""Explorer search filters for a time window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from api_client import time_window_filter

START = datetime(2025, 10, 7, 20, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def test_window_is_half_open_in_utc() -> None:
    assert time_window_filter(START, END) == {
        "AND": [
            {"field": "created_at", "op": "gte", "value": "2025-10-07T20:00:00Z"},
            {"field": "created_at", "op": "lt", "value": "2025-10-07T21:00:00Z"},
        ]
    }


def test_extra_condition_is_anded() -> None:
    extra = {"field": "model", "op": "eq", "value": "mistral-small"}
    assert time_window_filter(START, END, extra)["AND"][2] == extra


def test_other_time_zones_and_naive_times_become_utc() -> None:
    paris = timezone(timedelta(hours=2))
    result = time_window_filter(datetime(2025, 10, 7, 22, 0, tzinfo=paris), datetime(2025, 10, 7, 21, 30))
    assert [c["value"] for c in result["AND"]] == ["2025-10-07T20:00:00Z", "2025-10-07T21:30:00Z"]


def test_microseconds_are_kept() -> None:
    value = time_window_filter(START + timedelta(microseconds=974000), END)["AND"][0]["value"]
    assert value == "2025-10-07T20:00:00.974000Z"


@pytest.mark.parametrize("end", [START, START - timedelta(seconds=1)])
def test_empty_windows_are_refused(end: datetime) -> None:
    with pytest.raises(ValueError):
        time_window_filter(START, end)
