"""The plan and request of a searched import, on both ledgers, with a fake search: the filter and window sent, each
item once, the duplicates hook, chunk numbering after earlier runs, a chunk another run wrote first, a key too long.
The command line end to end is tests/cli/test_cli_filter_import.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from import_kinds import ImportKind
from jobs.request_import import request_import
from triggers.filter_import import (
    FilterImportError,
    FilterQuery,
    plan_filter_import,
    request_filter_import,
)

TARGET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEAM_A = {"field": "extra_fields.team", "op": "eq", "value": "a"}


@dataclass
class FakeSearch:
    ids: list[str]
    filters: list[Any] = field(default_factory=list)

    def __call__(self) -> FakeSearch:
        return self

    def __enter__(self) -> FakeSearch:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def search_event_ids(self, filters: Any) -> list[str]:
        self.filters.append(filters)
        return list(self.ids)


def _plan(sessions: sessionmaker[Session], search: FakeSearch, query: FilterQuery, **kwargs: Any) -> Any:
    return plan_filter_import(sessions, search, query, chunk_size=2, **kwargs)  # type: ignore[arg-type]


def _request(sessions: sessionmaker[Session], plan: Any) -> Any:
    return request_filter_import(sessions, plan, origin="cli", now=NOW, deadline_s=600, send=lambda ids: None)


def test_the_window_is_anded_with_the_filter_and_each_item_is_taken_once(
    session_factory: sessionmaker[Session],
) -> None:
    search = FakeSearch(["e1", "e2", "e1", "e3"])
    since = datetime(2026, 2, 1, tzinfo=UTC)
    query = FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A, since=since)
    plan = _plan(session_factory, search, query)
    assert search.filters == [{"AND": [{"field": "created_at", "op": "gte", "value": "2026-02-01T00:00:00Z"}, TEAM_A]}]
    assert (plan.preview.offered, plan.preview.to_import, plan.preview.chunks) == (3, 3, 2)
    assert plan.preview.duplicates is None
    # Without a window the filter goes alone; the key differs with what is asked.
    plain = FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A)
    _plan(session_factory, search, plain)
    assert search.filters[-1] == TEAM_A
    assert (
        plain.key_base() != query.key_base() == FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A, since=since).key_base()
    )


def test_duplicates_the_target_holds_are_left_out_and_counted(session_factory: sessionmaker[Session]) -> None:
    asked: list[tuple[str, list[str]]] = []

    def held(dataset_id: str, keys: Mapping[str, Any]) -> set[str]:
        asked.append((dataset_id, list(keys)))
        return {"e2"}

    plan = _plan(session_factory, FakeSearch(["e1", "e2", "e3"]), FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A),
                 duplicates=held)  # fmt: skip
    assert asked == [(TARGET, ["e1", "e2", "e3"])]
    assert (plan.preview.duplicates, plan.preview.to_import, plan.items) == (1, 2, ["e1", "e3"])


def test_a_rerun_requests_only_what_no_earlier_run_did_under_the_next_numbers(
    session_factory: sessionmaker[Session],
) -> None:
    query = FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A)
    first = _request(session_factory, _plan(session_factory, FakeSearch(["e1", "e2", "e3"]), query))
    assert len(first.job_ids) == 2 and first.taken == []
    again = _plan(session_factory, FakeSearch(["e1", "e2", "e3", "e4"]), query)
    assert (again.preview.already_requested, again.preview.earlier_jobs, again.items, again.next_chunk) == (
        3, 2, ["e4"], 2
    )  # fmt: skip
    second = _request(session_factory, again)
    assert len(second.job_ids) == 1
    assert _plan(session_factory, FakeSearch(["e1", "e4"]), query).items == []


def test_a_chunk_another_run_wrote_first_is_reported_taken(session_factory: sessionmaker[Session]) -> None:
    query = FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A)
    plan = _plan(session_factory, FakeSearch(["e1", "e2", "e3"]), query)
    # Between this run's plan and its request, another run of the command wrote chunk 0.
    request_import(session_factory, kind=ImportKind.EXPLORER, dataset_id=TARGET,
                   params={"completion_event_ids": ["e1", "e2"]}, origin="cli", now=NOW, deadline_s=600,
                   send=lambda job_id: None, idempotency_key=f"{query.key_base()}:0")  # fmt: skip
    requested = _request(session_factory, plan)
    assert requested.taken == [f"{query.key_base()}:0"] and len(requested.job_ids) == 2


def test_a_key_without_room_for_the_chunk_numbers_is_refused(session_factory: sessionmaker[Session]) -> None:
    query = FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A)
    with pytest.raises(FilterImportError, match="the limit is 255"):
        _plan(session_factory, FakeSearch(["e1"]), query, key="k" * 250)
    with pytest.raises(ValueError, match="the window is empty"):
        FilterQuery(ImportKind.EXPLORER, TARGET, TEAM_A, since=NOW, until=NOW)
