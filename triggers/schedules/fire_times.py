"""When a schedule fires: cron expressions and fixed periods, in UTC, computed the same way by every process.

A fire time is a pure function of the schedule's timing and a moment, never of when a process started, so two beat
processes (or one restarted) name the same fires and the idempotency key built from a fire time dedupes them:

- ``every``: multiples of the period since the Unix epoch (``every 10m`` fires at :00, :10, :20, … whatever the
  start time), at whole seconds.
- ``cron``: the standard five fields (minute hour day-of-month month day-of-week), evaluated in UTC, so there is
  no daylight-saving gap or repeat. Day-of-month and day-of-week follow Vixie cron: when both are restricted, a
  day matching either fires. Names (``jan``, ``mon``), ranges, lists, steps and the ``@hourly`` family work.

No third-party cron library: the search below is short, and owning it keeps the fire times stable across
upgrades.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = ["CronExpression", "InvalidTiming", "Timing", "fire_time_iso", "parse_every", "parse_fire_time"]

# Longest gap searched for the next (or previous) cron match: covers Feb 29 every four years, twice over.
_SEARCH_DAYS = 8 * 366
MAX_EVERY_S = 366 * 86400

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: i for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_DAYS = {name: i for i, name in enumerate("sun mon tue wed thu fri sat".split())}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EVERY_RE = re.compile(r"(\d+)\s*([smhdw])")


class InvalidTiming(ValueError):
    """Raised when a cron expression or a period cannot be parsed, or can never fire."""


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: fire times are computed on aware datetimes")
    return moment.astimezone(UTC)


def fire_time_iso(moment: datetime) -> str:
    """The canonical text of a fire time (``2026-01-01T12:00:00Z``): part of idempotency keys, so never change it."""
    return _utc(moment).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_fire_time(text: str) -> datetime:
    """Read a fire time written by :func:`fire_time_iso` (any ISO-8601 with an offset is accepted)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 fire time: {text!r}") from exc
    if moment.tzinfo is None:
        raise ValueError(f"fire time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def parse_every(text: str | int) -> int:
    """A period in whole seconds from ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` or a number of seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        raw = str(text).strip().lower()
        if raw.isdigit():
            seconds = int(raw)
        else:
            parts = _EVERY_RE.findall(raw)
            if not parts or _EVERY_RE.sub("", raw).strip():
                raise InvalidTiming(f"cannot read period {text!r}: use e.g. 30s, 10m, 1h30m, 1d")
            seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    if not 1 <= seconds <= MAX_EVERY_S:
        raise InvalidTiming(f"period {text!r} must be between 1 second and 366 days")
    return seconds


@dataclass(frozen=True)
class CronExpression:
    """A parsed five-field cron expression; times are UTC."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        source = " ".join(text.split())
        expanded = _ALIASES.get(source.lower(), source)
        fields = expanded.split(" ")
        if len(fields) != 5:
            raise InvalidTiming(
                f"cron expression {text!r} needs 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(fields)}"
            )
        minute, hour, day, month, weekday = fields
        # 7 is Sunday too.
        weekdays = {d % 7 for d in _field(weekday, 0, 7, _DAYS, "day-of-week")}
        expression = cls(
            text=source,
            minutes=tuple(sorted(_field(minute, 0, 59, {}, "minute"))),
            hours=tuple(sorted(_field(hour, 0, 23, {}, "hour"))),
            days=frozenset(_field(day, 1, 31, {}, "day-of-month")),
            months=frozenset(_field(month, 1, 12, _MONTHS, "month")),
            weekdays=frozenset(weekdays),
            days_restricted=not day.startswith("*"),
            weekdays_restricted=not weekday.startswith("*"),
        )
        expression.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # raises when it never matches
        return expression

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        start = _utc(moment).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self.matches_day(day):
                for hour in self.hours:
                    if day == start.date() and hour < start.hour:
                        continue
                    for minute in self.minutes:
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise InvalidTiming(f"cron expression {self.text!r} never fires")

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before ``moment`` (None if there is none in the searched years)."""
        end = _utc(moment).replace(second=0, microsecond=0)
        day = end.date()
        for _ in range(_SEARCH_DAYS):
            if self.matches_day(day):
                for hour in reversed(self.hours):
                    if day == end.date() and hour > end.hour:
                        continue
                    for minute in reversed(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate <= end:
                            return candidate
            day -= timedelta(days=1)
        return None


def _field(text: str, low: int, high: int, names: dict[str, int], what: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        values |= _item(item.lower(), low, high, names, what)
    return values


def _item(item: str, low: int, high: int, names: dict[str, int], what: str) -> set[int]:
    base, _, step_text = item.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise InvalidTiming(f"bad step {step_text!r} in the {what} field")
        step = int(step_text)
    if base == "*":
        first, last = low, high
    elif "-" in base:
        start_text, _, end_text = base.partition("-")
        first, last = _value(start_text, low, high, names, what), _value(end_text, low, high, names, what)
        if first > last:
            raise InvalidTiming(f"range {base!r} in the {what} field runs backwards")
    else:
        first = _value(base, low, high, names, what)
        # "5/15" means from 5 to the end in steps of 15, as in Vixie cron.
        last = high if step_text else first
    return set(range(first, last + 1, step))


def _value(text: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise InvalidTiming(f"{text!r} is not a valid {what}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidTiming(f"{what} {value} is out of range {low}-{high}")
    return value


@dataclass(frozen=True)
class Timing:
    """A schedule's timing: exactly one of a cron expression and a period in seconds."""

    cron: CronExpression | None = None
    every_s: int | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_s is None):
            raise InvalidTiming("give exactly one of a cron expression and a period")

    @classmethod
    def parse(cls, *, cron: str | None = None, every: str | int | None = None) -> Timing:
        if (cron is None) == (every is None):
            raise InvalidTiming("give exactly one of cron and every")
        if cron is not None:
            return cls(cron=CronExpression.parse(cron))
        assert every is not None
        return cls(every_s=parse_every(every))

    @property
    def cron_text(self) -> str | None:
        return None if self.cron is None else self.cron.text

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron.text}"
        return f"every {_period_text(self.every_s or 0)}"

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        if self.cron is not None:
            return self.cron.next_after(moment)
        period = self.every_s or 1
        seconds = int(_utc(moment).timestamp() // 1)
        return datetime.fromtimestamp((seconds // period + 1) * period, UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before ``moment``."""
        if self.cron is not None:
            return self.cron.latest_at_or_before(moment)
        period = self.every_s or 1
        seconds = int(_utc(moment).timestamp() // 1)
        return datetime.fromtimestamp(seconds // period * period, UTC)

    def is_fire_time(self, moment: datetime) -> bool:
        return self.latest_at_or_before(moment) == _utc(moment)


def _period_text(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
