"""The jobs list of the API: its filters, read from the query string, and keyset paging with an opaque cursor.

Jobs come newest first, ordered by ``(created_at, id)``, both descending. A cursor is the position of the last
job of a page; the next page is what comes strictly after it in that order. Reading a page is an index range
scan (``created_at`` is indexed) however deep the caller goes, and a job created while the caller pages is newer
than every position already handed out: it can appear on no later page, so pages never repeat or skip a job.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from store.models import ImportJob, ImportKind, JobStatus

from .errors import ApiProblem

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "JobFilters", "encode_cursor", "read_page"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_STATUSES = ", ".join(JobStatus)
_KINDS = ", ".join(ImportKind)
_PARAMS = frozenset({"status", "kind", "dataset", "schedule", "created_after", "created_before", "limit", "cursor"})


@dataclass(frozen=True)
class Position:
    created_at: datetime
    job_id: str


@dataclass(frozen=True)
class JobFilters:
    """What the caller asked for; every field optional."""

    statuses: tuple[JobStatus, ...] = ()
    kind: ImportKind | None = None
    dataset_id: str | None = None
    schedule: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: Position | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> JobFilters:
        """Read the query string (each name with all its values).

        :raises ApiProblem: 422 naming every parameter that is unknown or wrong.
        """
        problems: list[dict[str, str]] = []

        def one(name: str) -> str | None:
            values = query.get(name) or []
            if len(values) > 1:
                problems.append({"parameter": name, "message": "given more than once"})
            return values[0] if values else None

        for name in sorted(set(query) - _PARAMS):
            problems.append({"parameter": name, "message": f"unknown parameter (known: {', '.join(sorted(_PARAMS))})"})
        statuses: list[JobStatus] = []
        for value in query.get("status") or []:
            for part in filter(None, value.split(",")):
                try:
                    statuses.append(JobStatus(part))
                except ValueError:
                    problems.append({"parameter": "status", "message": f"{part!r} is not one of {_STATUSES}"})
        kind = None
        kind_text = one("kind")
        if kind_text is not None:
            try:
                kind = ImportKind(kind_text)
            except ValueError:
                problems.append({"parameter": "kind", "message": f"{kind_text!r} is not one of {_KINDS}"})
        after_text, before_text = one("created_after"), one("created_before")
        created_after = _time(after_text, "created_after", problems)
        created_before = _time(before_text, "created_before", problems)
        limit = _limit(one("limit"), problems)
        cursor = one("cursor")
        position = None if cursor is None else _decode_cursor(cursor, problems)
        dataset, schedule = one("dataset"), one("schedule")
        if problems:
            raise ApiProblem(422, "; ".join(f"{p['parameter']}: {p['message']}" for p in problems), details=problems)
        return cls(
            statuses=tuple(dict.fromkeys(statuses)),
            kind=kind,
            dataset_id=dataset,
            schedule=schedule,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            after=position,
        )


def _time(text: str | None, name: str, problems: list[dict[str, str]]) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        problems.append({"parameter": name, "message": f"{text!r} is not an ISO-8601 date and time"})
        return None
    # Without an offset, UTC: like every time this service reads.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _limit(text: str | None, problems: list[dict[str, str]]) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        problems.append({"parameter": "limit", "message": f"must be an integer from 1 to {MAX_LIMIT}"})
        return DEFAULT_LIMIT
    return int(text)


def encode_cursor(job: ImportJob) -> str:
    raw = json.dumps([job.created_at.astimezone(UTC).isoformat(), job.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(text: str, problems: list[dict[str, str]]) -> Position | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created, job_id = json.loads(raw)
        position = Position(datetime.fromisoformat(created), str(job_id))
        if position.created_at.tzinfo is None:
            raise ValueError("naive time")
        return position
    except (binascii.Error, ValueError, TypeError, RecursionError):
        problems.append({"parameter": "cursor", "message": "not a cursor this API handed out (use next_cursor as is)"})
        return None


def read_page(session: Session, filters: JobFilters) -> tuple[list[ImportJob], str | None]:
    """One page of jobs matching ``filters``, and the cursor of the next page (None when this one is the last)."""
    query = select(ImportJob)
    if filters.statuses:
        query = query.where(ImportJob.status.in_(filters.statuses))
    if filters.kind is not None:
        query = query.where(ImportJob.kind == filters.kind)
    if filters.dataset_id is not None:
        query = query.where(ImportJob.dataset_id == filters.dataset_id)
    if filters.schedule is not None:
        # Every job a schedule requests (a retried chunk's too) has the schedule's origin.
        query = query.where(ImportJob.origin == f"schedule:{filters.schedule}")
    if filters.created_after is not None:
        query = query.where(ImportJob.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(ImportJob.created_at < filters.created_before)
    if filters.after is not None:
        at, job_id = filters.after.created_at, filters.after.job_id
        query = query.where(or_(ImportJob.created_at < at, and_(ImportJob.created_at == at, ImportJob.id < job_id)))
    # One row more than the page tells whether there is a next page without a count.
    query = query.order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).limit(filters.limit + 1)
    jobs = list(session.scalars(query))
    if len(jobs) <= filters.limit:
        return jobs, None
    page = jobs[: filters.limit]
    return page, encode_cursor(page[-1])
