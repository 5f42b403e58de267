"""Fire times: cron and periods, in UTC, the same whatever process computes them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggers.schedules.fire_times import (
    CronExpression,
    InvalidTiming,
    Timing,
    fire_time_iso,
    parse_every,
    parse_fire_time,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("600", 600), (45, 45)],
)
def test_periods_are_read_in_seconds(text: str | int, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "10x", "1h 30", "m10", "367d", "-5s", "1.5h"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(InvalidTiming):
        parse_every(text)


def test_every_is_aligned_to_the_epoch_not_to_the_start() -> None:
    timing = Timing.parse(every="10m")
    # Whatever moment a process starts at, it names the same fires: :00, :10, :20...
    for start in (utc(2026, 3, 1, 12, 0, 0), utc(2026, 3, 1, 12, 3, 17), utc(2026, 3, 1, 12, 9, 59)):
        assert timing.next_after(start) == utc(2026, 3, 1, 12, 10)
    assert timing.next_after(utc(2026, 3, 1, 12, 10)) == utc(2026, 3, 1, 12, 20)  # strictly after
    assert timing.latest_at_or_before(utc(2026, 3, 1, 12, 10)) == utc(2026, 3, 1, 12, 10)
    assert timing.latest_at_or_before(utc(2026, 3, 1, 12, 19, 59, 999999)) == utc(2026, 3, 1, 12, 10)


def test_every_odd_period_counts_from_the_epoch() -> None:
    timing = Timing.parse(every="7s")
    fire = timing.next_after(utc(2026, 3, 1, 12, 0))
    assert int(fire.timestamp()) % 7 == 0
    assert timedelta(0) < fire - utc(2026, 3, 1, 12, 0) <= timedelta(seconds=7)
    assert fire.microsecond == 0


def test_every_one_second_fires_on_each_second() -> None:
    timing = Timing.parse(every="1s")
    moment = utc(2026, 3, 1, 12, 0, 0, 500000)
    assert timing.next_after(moment) == utc(2026, 3, 1, 12, 0, 1)
    assert timing.latest_at_or_before(moment) == utc(2026, 3, 1, 12, 0, 0)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 * * * *", utc(2026, 3, 1, 12, 0), utc(2026, 3, 1, 13, 0)),
        ("0 * * * *", utc(2026, 3, 1, 12, 0, 0, 1), utc(2026, 3, 1, 13, 0)),
        ("*/15 * * * *", utc(2026, 3, 1, 12, 7), utc(2026, 3, 1, 12, 15)),
        ("5/20 * * * *", utc(2026, 3, 1, 12, 26), utc(2026, 3, 1, 12, 45)),
        ("30 9-17/4 * * *", utc(2026, 3, 1, 13, 31), utc(2026, 3, 1, 17, 30)),
        ("0 0 * * mon", utc(2026, 3, 1, 12, 0), utc(2026, 3, 2, 0, 0)),  # 2026-03-01 is a Sunday
        ("0 0 * * 7", utc(2026, 3, 2, 12, 0), utc(2026, 3, 8, 0, 0)),  # 7 is Sunday too
        ("0 0 1 jan,jul *", utc(2026, 3, 1, 12, 0), utc(2026, 7, 1, 0, 0)),
        ("0 0 29 2 *", utc(2026, 3, 1, 12, 0), utc(2028, 2, 29, 0, 0)),
        ("@hourly", utc(2026, 3, 1, 12, 59), utc(2026, 3, 1, 13, 0)),
        ("@daily", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1, 0, 0)),
        ("@weekly", utc(2026, 3, 1, 0, 0), utc(2026, 3, 8, 0, 0)),
        # Both day fields restricted: a day matching either fires (Vixie cron).
        ("0 0 13 * fri", utc(2026, 3, 1, 0, 0), utc(2026, 3, 6, 0, 0)),
        # Only day-of-week restricted (day-of-month is "*"): the weekday alone decides.
        ("0 0 * * fri", utc(2026, 3, 7, 0, 0), utc(2026, 3, 13, 0, 0)),
    ],
)
def test_cron_next_fire(expression: str, after: datetime, expected: datetime) -> None:
    assert Timing.parse(cron=expression).next_after(after) == expected


def test_cron_is_evaluated_in_utc_without_daylight_saving_gaps_or_repeats() -> None:
    # 2026-03-29 (EU) and 2026-03-08 (US) move local clocks; UTC fires stay exactly 24 h apart.
    timing = Timing.parse(cron="30 2 * * *")
    fires = [timing.next_after(utc(2026, 3, 5, 0, 0))]
    for _ in range(40):
        fires.append(timing.next_after(fires[-1]))
    assert all(b - a == timedelta(hours=24) for a, b in itertools.pairwise(fires))
    assert all(fire.hour == 2 and fire.minute == 30 and fire.utcoffset() == timedelta(0) for fire in fires)


def test_aware_non_utc_input_is_converted_not_misread() -> None:
    from datetime import timezone

    paris_summer = timezone(timedelta(hours=2))
    moment = datetime(2026, 7, 1, 14, 5, tzinfo=paris_summer)  # 12:05 UTC
    assert Timing.parse(cron="0 * * * *").next_after(moment) == utc(2026, 7, 1, 13, 0)
    with pytest.raises(ValueError, match="naive"):
        Timing.parse(every="1m").next_after(datetime(2026, 7, 1, 12, 0))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "needs 5 fields"),
        ("60 * * * *", "minute 60 is out of range"),
        ("* 24 * * *", "hour 24 is out of range"),
        ("* * 0 * *", "day-of-month 0 is out of range"),
        ("* * * 13 *", "month 13 is out of range"),
        ("* * * * 8", "day-of-week 8 is out of range"),
        ("*/0 * * * *", "bad step"),
        ("10-5 * * * *", "runs backwards"),
        ("* * * foo *", "'foo' is not a valid month"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(InvalidTiming, match=message):
        CronExpression.parse(expression)


def test_exactly_one_of_cron_and_every() -> None:
    with pytest.raises(InvalidTiming):
        Timing.parse()
    with pytest.raises(InvalidTiming):
        Timing.parse(cron="* * * * *", every="1m")


def test_fire_time_text_round_trips_and_drops_microseconds() -> None:
    moment = utc(2026, 3, 1, 12, 0, 5, 123456)
    assert fire_time_iso(moment) == "2026-03-01T12:00:05Z"
    assert parse_fire_time("2026-03-01T12:00:05Z") == utc(2026, 3, 1, 12, 0, 5)
    assert parse_fire_time("2026-03-01T14:00:05+02:00") == utc(2026, 3, 1, 12, 0, 5)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_fire_time("2026-03-01T12:00:05")


def test_describe() -> None:
    assert Timing.parse(every="90m").describe() == "every 1h30m"
    assert Timing.parse(cron="@hourly").describe() == "cron @hourly"


moments = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))
cron_texts = st.sampled_from(
    ["* * * * *", "*/7 * * * *", "0 */3 * * *", "15 10 * * 1-5", "0 0 1,15 * *", "0 12 * feb sun", "59 23 31 * *"]
)


@settings(max_examples=150, deadline=None)
@given(moment=moments, text=cron_texts)
def test_cron_latest_and_next_bracket_every_moment(moment: datetime, text: str) -> None:
    timing = Timing.parse(cron=text)
    latest = timing.latest_at_or_before(moment)
    upcoming = timing.next_after(moment)
    assert latest is not None and latest <= moment < upcoming
    # Nothing fires strictly between the two, and both are fire times.
    assert timing.next_after(latest) == upcoming
    assert timing.is_fire_time(latest) and timing.is_fire_time(upcoming)


@settings(max_examples=150, deadline=None)
@given(moment=moments, period=st.integers(min_value=1, max_value=90000))
def test_every_latest_and_next_bracket_every_moment(moment: datetime, period: int) -> None:
    timing = Timing.parse(every=period)
    latest = timing.latest_at_or_before(moment)
    upcoming = timing.next_after(moment)
    assert latest is not None and latest <= moment < upcoming
    assert upcoming - latest == timedelta(seconds=period)
    assert int(latest.timestamp()) % period == 0
