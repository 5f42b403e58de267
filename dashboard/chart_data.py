"""What the two charts show, aggregated by the database per time bucket (never row by row in Python).

- **Imports finished**: jobs whose ``finished_at`` falls in each bucket, by how they ended: COMPLETED, FAILED, and
  every other ending (refused, lost, expired, cancelled, timed out, terminated) together.
- **Detection lag**: for jobs whose remote task ended (``remote_ended_at``, the API's ``updated_at`` when the task
  was first seen terminal), ``finished_at - remote_ended_at``: how long after the task ended the ledger recorded
  it. That is mostly the wait for the next poll, plus the poll's own round trip and the write. Jobs that ended
  without a remote ending (refused, lost, expired, cancelled locally) have none and are left out. The two times
  come from two clocks (the API's and ours), so a skew between them shifts every value by the skew; a negative
  lag is shown as is, not hidden. Per bucket (by ``finished_at``): the median (the lower middle value) and the
  maximum.

Both read the ``finished_at`` index for the window (and the dataset filter, when there is one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Float, SQLColumnExpression, and_, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.models import ImportJob, JobStatus

__all__ = [
    "MAX_BUCKETS",
    "MAX_HOURS",
    "ChartWindow",
    "LagBucket",
    "OutcomeBucket",
    "chart_window",
    "detection_lag",
    "finished_per_bucket",
]

MAX_HOURS = 7 * 24
# The bars stay readable: past this many minutes a bucket holds several.
MAX_BUCKETS = 360


@dataclass(frozen=True)
class ChartWindow:
    """``[start, end)`` cut in buckets of ``bucket_s`` seconds; ``start`` is on a bucket boundary."""

    start: datetime
    end: datetime
    bucket_s: int

    def starts(self) -> list[datetime]:
        count = math.ceil((self.end - self.start).total_seconds() / self.bucket_s)
        return [self.start + timedelta(seconds=i * self.bucket_s) for i in range(count)]


def chart_window(now: datetime, hours: float) -> ChartWindow:
    """The last ``hours`` up to ``now``, in one-minute buckets, or wider ones (whole minutes) for a long window."""
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be more than 0 and at most {MAX_HOURS}, got {hours}")
    minutes = math.ceil(hours * 60 / MAX_BUCKETS)
    bucket_s = 60 * minutes
    end_epoch = (int(now.timestamp()) // bucket_s + 1) * bucket_s
    start_epoch = end_epoch - math.ceil(hours * 3600 / bucket_s) * bucket_s
    return ChartWindow(datetime.fromtimestamp(start_epoch, UTC), datetime.fromtimestamp(end_epoch, UTC), bucket_s)


@dataclass(frozen=True)
class OutcomeBucket:
    start: datetime
    completed: int = 0
    failed: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.completed + self.failed + self.other


@dataclass(frozen=True)
class LagBucket:
    start: datetime
    count: int
    median_s: float
    max_s: float


def _epoch_s(session: Session, column: SQLColumnExpression[datetime | None]) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def _seconds_between(
    session: Session, later: SQLColumnExpression[datetime | None], earlier: SQLColumnExpression[datetime | None]
) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.extract("epoch", later - earlier), Float)


def _bucket(session: Session, window: ChartWindow) -> ColumnElement[int]:
    # Floor division of the whole seconds: the bucket's first second.
    return (_epoch_s(session, ImportJob.finished_at) // window.bucket_s) * window.bucket_s


def _in_window(window: ChartWindow, dataset_id: str | None) -> list[ColumnElement[bool]]:
    conditions = [ImportJob.finished_at >= window.start, ImportJob.finished_at < window.end]
    if dataset_id is not None:
        conditions.append(ImportJob.dataset_id == dataset_id)
    return conditions


def finished_per_bucket(session: Session, window: ChartWindow, *, dataset_id: str | None = None) -> list[OutcomeBucket]:
    """Every bucket of ``window`` (empty ones too), with how many jobs ended in it, by outcome."""
    bucket = _bucket(session, window).label("bucket")
    query = (
        select(bucket, ImportJob.status, func.count())
        .where(*_in_window(window, dataset_id))
        .group_by(bucket, ImportJob.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for epoch, status, count in session.execute(query):
        group = "completed" if status == JobStatus.COMPLETED else "failed" if status == JobStatus.FAILED else "other"
        slot = counts.setdefault(int(epoch), {})
        slot[group] = slot.get(group, 0) + int(count)
    return [OutcomeBucket(start, **counts.get(int(start.timestamp()), {})) for start in window.starts()]


def detection_lag(session: Session, window: ChartWindow, *, dataset_id: str | None = None) -> list[LagBucket]:
    """The buckets of ``window`` in which jobs with a remote ending finished, with their lag's median and max."""
    # Each row's bucket and lag computed once (inner), then ranked within its bucket (window functions work on
    # both backends; neither has a median aggregate in common).
    lags = (
        select(
            _bucket(session, window).label("bucket"),
            _seconds_between(session, ImportJob.finished_at, ImportJob.remote_ended_at).label("lag"),
        )
        .where(and_(*_in_window(window, dataset_id), ImportJob.remote_ended_at.is_not(None)))
        .subquery()
    )
    ranked = select(
        lags.c.bucket,
        lags.c.lag,
        func.row_number().over(partition_by=lags.c.bucket, order_by=lags.c.lag).label("rank"),
        func.count().over(partition_by=lags.c.bucket).label("n"),
    ).subquery()
    query = (
        select(
            ranked.c.bucket,
            func.max(ranked.c.n),
            func.max(case((ranked.c.rank == (ranked.c.n + 1) // 2, ranked.c.lag))),
            func.max(ranked.c.lag),
        )
        .group_by(ranked.c.bucket)
        .order_by(ranked.c.bucket)
    )
    return [
        LagBucket(datetime.fromtimestamp(int(epoch), UTC), int(n), float(median), float(longest))
        for epoch, n, median, longest in session.execute(query)
    ]
