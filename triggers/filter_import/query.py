"""What a searched import asks for (:class:`FilterQuery`), the idempotency key it derives from that, and the search.

The key's base is a hash of everything that decides which items the import takes and how they are sent: the import
kind, the target, the filter, the time window, the sample rate and the body's fixed fields (a spans import's
mapping contract). The same command run again derives the same base; any change to what it asks derives another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api_client import DatasetsClient
from api_client.filters import iso_utc
from import_kinds import ImportKind, Resolver, spec_of
from triggers.schedules.kinds import ScheduleRunError
from triggers.schedules.spans_window import walk_spans

__all__ = ["FilterQuery", "SearchError", "search_items"]


class SearchError(RuntimeError):
    """Raised when the search cannot be walked to its end (a spans search that repeats its cursor)."""


@dataclass(frozen=True)
class FilterQuery:
    """One searched import: what to search, in which window, at which sample rate, into which dataset."""

    kind: ImportKind
    dataset_id: str
    search: Any
    """An explorer filter (a checked condition or AND/OR group) or a spans search expression."""
    since: datetime | None = None
    until: datetime | None = None
    sample_rate: float | None = None
    fixed_params: dict[str, Any] = field(default_factory=dict)
    """The body's fields other than its items, the same in every chunk (a spans import's mapping contract)."""

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and _utc(self.since) >= _utc(self.until):
            raise ValueError(
                f"the window is empty: since {iso_utc(self.since)} is not before until {iso_utc(self.until)}"
            )

    @property
    def resolver(self) -> Resolver:
        option = spec_of(self.kind).search_option
        if option is None or option.resolver is None:
            raise ValueError(f"a {self.kind} import takes no search")
        return option.resolver

    def key_base(self) -> str:
        """``filter:KIND:HASH``: the idempotency key base of this query's chunks (each ``BASE:N``)."""
        asked = {
            "kind": str(self.kind),
            "dataset": self.dataset_id,
            "search": self.search,
            "since": None if self.since is None else iso_utc(self.since),
            "until": None if self.until is None else iso_utc(self.until),
            "sample": self.sample_rate,
            "fixed": self.fixed_params,
        }
        text = json.dumps(asked, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return f"filter:{self.kind}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]}"


def search_items(client: DatasetsClient, query: FilterQuery) -> list[Any]:
    """The items ``query`` finds now, as the import kind's item field holds them (event ids, span references).

    :raises SearchError: the search could not be walked to its end.
    :raises api_client.ApiError: the API refused or failed the search.
    """
    if query.resolver is Resolver.SEARCH_EVENTS:
        return list(client.search_event_ids(_event_filter(query)))
    try:
        return walk_spans(client, query.search, query.since, query.until)
    except ScheduleRunError as exc:
        raise SearchError(str(exc)) from None


def _event_filter(query: FilterQuery) -> dict[str, Any]:
    """The filter ANDed with the window's bounds (``created_at``, half-open like a window schedule's)."""
    bounds = [
        {"field": "created_at", "op": op, "value": iso_utc(moment)}
        for op, moment in (("gte", query.since), ("lt", query.until))
        if moment is not None
    ]
    if not bounds:
        return dict(query.search)
    return {"AND": [*bounds, query.search]}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
