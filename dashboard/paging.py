"""Pages of jobs, newest first, by keyset on ``(created_at, id)``: a deep page costs what the first one does.

A page is read from where the previous one stopped (its last row's key), never by ``OFFSET``, so the database
reads an index range of ``limit + 1`` rows however far back the page is; the indexes are
``ix_import_jobs_created_at_id`` and its status and dataset twins (migration 0010). Jobs written while a user pages
(at the newest end) neither shift nor repeat the older pages.

The cursor the page links carry is opaque to the user: the URL-safe base64 of the direction and the key of the row
it continues from. A cursor that does not decode is a :class:`BadCursor`, which the page turns into a 400.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.models import ImportJob, ImportKind, JobStatus

__all__ = ["BadCursor", "Cursor", "JobFilters", "JobPage", "read_page"]

Direction = Literal["older", "newer"]


class BadCursor(ValueError):
    """Raised when a cursor from a URL does not decode to a direction and a row key."""


@dataclass(frozen=True)
class Cursor:
    """Continue ``direction`` from the row keyed ``(created_at, job_id)`` (that row excluded)."""

    direction: Direction
    created_at: datetime
    job_id: str

    def encode(self) -> str:
        text = f"{self.direction}|{self.created_at.isoformat()}|{self.job_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            direction, moment, job_id = text.split("|")
            created_at = datetime.fromisoformat(moment)
            uuid.UUID(job_id)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadCursor(f"not a page cursor: {token[:80]!r}") from exc
        if direction not in ("older", "newer") or created_at.tzinfo is None:
            raise BadCursor(f"not a page cursor: {token[:80]!r}")
        return cls("older" if direction == "older" else "newer", created_at, job_id)


@dataclass(frozen=True)
class JobFilters:
    """What the jobs list is narrowed to. ``search`` matches a job id exactly, an idempotency key exactly or by
    prefix, a dataset id exactly, or one of ``search_dataset_ids`` (the datasets whose name matched it)."""

    status: JobStatus | None = None
    kind: ImportKind | None = None
    dataset_id: str | None = None
    search: str | None = None
    search_dataset_ids: Collection[str] = field(default_factory=tuple)

    def conditions(self, dialect: str = "sqlite") -> list[ColumnElement[bool]]:
        """The WHERE terms, for the database ``dialect`` (the key prefix is matched the way its index can serve)."""
        conditions: list[ColumnElement[bool]] = []
        if self.status is not None:
            conditions.append(ImportJob.status == self.status)
        if self.kind is not None:
            conditions.append(ImportJob.kind == self.kind)
        if self.dataset_id is not None:
            conditions.append(ImportJob.dataset_id == self.dataset_id)
        if self.search:
            matches: list[ColumnElement[bool]] = [
                ImportJob.id == self.search,
                ImportJob.idempotency_key == self.search,
                ImportJob.dataset_id == self.search,
            ]
            # A whole UUID is an id (or a key typed whole): on PostgreSQL, where the prefix reads every key, it is
            # looked up by the indexes alone.
            if dialect == "sqlite" or not _is_uuid(self.search):
                matches.append(_key_prefix(self.search, dialect))
            if self.search_dataset_ids:
                matches.append(ImportJob.dataset_id.in_(sorted(self.search_dataset_ids)))
            conditions.append(or_(*matches))
        return conditions


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _key_prefix(prefix: str, dialect: str) -> ColumnElement[bool]:
    """Idempotency keys that start with ``prefix``.

    On SQLite a range (``prefix <= key < prefix with its last character incremented``): exact under its binary
    collation, and the unique index on the key serves it, where LIKE (case-insensitive there) would scan the table.
    On PostgreSQL LIKE, which is right under any collation (a range is not, under a locale that ignores
    punctuation); it reads the keys of the table, which a search can afford and a page does not do.
    """
    if dialect == "sqlite":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if ord(prefix[-1]) < 0x10FFFF else None
        lower_bound = ImportJob.idempotency_key >= prefix
        return lower_bound if upper is None else and_(lower_bound, ImportJob.idempotency_key < upper)
    return ImportJob.idempotency_key.startswith(prefix, autoescape=True)


@dataclass(frozen=True)
class JobPage:
    """One page of jobs, newest first, with the cursors of the pages on either side (None at either end)."""

    jobs: list[ImportJob]
    older: str | None
    newer: str | None


def _key() -> ColumnElement[tuple[datetime, str]]:
    return tuple_(ImportJob.created_at, ImportJob.id)


def page_query(
    filters: JobFilters, cursor: Cursor | None, limit: int, *, dialect: str = "sqlite"
) -> Select[ImportJob]:
    """The SELECT for one page (``limit + 1`` rows: the extra one says whether there is a page beyond)."""
    query = select(ImportJob).where(and_(True, *filters.conditions(dialect)))
    if cursor is not None and cursor.direction == "newer":
        query = query.where(_key() > tuple_(cursor.created_at, cursor.job_id))
        return query.order_by(ImportJob.created_at.asc(), ImportJob.id.asc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(_key() < tuple_(cursor.created_at, cursor.job_id))
    return query.order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).limit(limit + 1)


def read_page(session: Session, filters: JobFilters, cursor: Cursor | None, *, limit: int) -> JobPage:
    """The page ``cursor`` points to (the newest page without one)."""
    dialect = session.get_bind().dialect.name
    rows = list(session.scalars(page_query(filters, cursor, limit, dialect=dialect)))
    beyond = len(rows) > limit
    rows = rows[:limit]
    if cursor is not None and cursor.direction == "newer":
        if not beyond:
            # Paged back to the newest end: show the newest page whole, not the few rows left above the cursor.
            return read_page(session, filters, None, limit=limit)
        rows.reverse()
        has_newer, has_older = True, True
    else:
        has_newer, has_older = cursor is not None, beyond
    if not rows:
        # Past the oldest row (the rows after it were deleted): only the way back.
        newer = None if cursor is None else Cursor("newer", cursor.created_at, cursor.job_id).encode()
        return JobPage([], None, newer)
    older = Cursor("older", rows[-1].created_at, rows[-1].id).encode() if has_older else None
    newer = Cursor("newer", rows[0].created_at, rows[0].id).encode() if has_newer else None
    return JobPage(rows, older, newer)
