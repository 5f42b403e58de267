"""The query string of a jobs list (``status``, ``kind``, ``q``, ``cursor``, ``hours``) read into filters, and the
links that page through it keeping them.

Anything a user may type that the list cannot take is a :class:`BadQuery` with a message that names the choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from store.models import ImportKind, JobStatus

from .chart_data import MAX_HOURS
from .dataset_names import ids_named
from .paging import BadCursor, Cursor, JobFilters

__all__ = ["DEFAULT_HOURS", "BadQuery", "ListQuery", "read_query"]

DEFAULT_HOURS = 6.0
# Longer than any id or key the ledger holds (255): a longer search can match nothing.
MAX_SEARCH_CHARS = 255


class BadQuery(ValueError):
    """Raised when a query string holds a value the jobs list cannot take; the message says what it takes."""


@dataclass(frozen=True)
class ListQuery:
    """A jobs list as asked for: its filters, the page (cursor) and the charts' window."""

    status: str
    kind: str
    search: str
    hours: float
    filters: JobFilters
    cursor: Cursor | None

    def link(self, path: str, cursor: str | None = None) -> str:
        """``path`` with this query's filters (and ``cursor``, for a page link); only what is set."""
        params = {"status": self.status, "kind": self.kind, "q": self.search}
        if self.hours != DEFAULT_HOURS:
            params["hours"] = f"{self.hours:g}"
        if cursor is not None:
            params["cursor"] = cursor
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{path}?{query}" if query else path

    @property
    def narrowed(self) -> bool:
        return bool(self.status or self.kind or self.search)


def read_query(params: QueryParams, names: Mapping[str, str], *, dataset_id: str | None = None) -> ListQuery:
    """The list ``params`` ask for (on one dataset's page, ``dataset_id``); a search matches the ``names`` too."""
    status_text = params.get("status") or ""
    kind_text = params.get("kind") or ""
    search = (params.get("q") or "").strip()
    try:
        status = JobStatus(status_text) if status_text else None
        kind = ImportKind(kind_text) if kind_text else None
    except ValueError:
        raise BadQuery(
            f"unknown filter: status must be one of {', '.join(JobStatus)}; kind one of {', '.join(ImportKind)}"
        ) from None
    if len(search) > MAX_SEARCH_CHARS or "\x00" in search:
        raise BadQuery(f"a search is at most {MAX_SEARCH_CHARS} characters, without NUL")
    try:
        hours = float(params.get("hours") or DEFAULT_HOURS)
    except ValueError:
        raise BadQuery(f"hours must be a number of hours, at most {MAX_HOURS}") from None
    if not 0 < hours <= MAX_HOURS:
        raise BadQuery(f"hours must be more than 0 and at most {MAX_HOURS}")
    token = params.get("cursor")
    try:
        cursor = Cursor.decode(token) if token else None
    except BadCursor as exc:
        raise BadQuery(f"{exc}: follow the page links from the first page") from None
    filters = JobFilters(
        status=status,
        kind=kind,
        dataset_id=dataset_id,
        search=search or None,
        search_dataset_ids=ids_named(names, search) if search else (),
    )
    return ListQuery(status_text, kind_text, search, hours, filters, cursor)
