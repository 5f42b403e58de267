"""What a searched import would request now (:func:`plan_filter_import`), and requesting it
(:func:`request_filter_import`).

No double: a chunk's idempotency key is ``BASE:N``, ``BASE`` derived from the query
(:meth:`~triggers.filter_import.query.FilterQuery.key_base`) or given by the user (``--key``). Before anything is
requested, the items held by the jobs already under ``BASE:`` are left out, and the new chunks are numbered after
theirs. The same command run again (after a crash, a lost answer, or later, when an open window has found more)
requests only the items no earlier run requested, whatever became of those earlier jobs: an item whose job failed is
shown, not requested again (``dsimport jobs show`` tells what happened to it). Every chunk of one run is written
in one transaction: a run that fails before its commit has requested nothing.

Two runs of one command at the same moment may both number a chunk ``N``: the second finds the first's job under
that key and requests nothing for those items; it says so (:attr:`FilterImportRequested.taken`), and a third run
requests what the second could not.

The plan reads the ledger and the API's search only; it is also the dry run (``--dry-run``), so the preview shows
exactly what the request would do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from api_client.filters import iso_utc
from import_kinds import ImportKindSpec, spec_of
from jobs.request_import import ImportRequest, check_idempotency_key, request_imports
from store.jobs import jobs_with_key_prefix
from triggers.schedules.sampling import sample

from .query import FilterQuery, search_items

__all__ = [
    "FIRST_IDS",
    "DuplicateCheck",
    "FilterImportError",
    "FilterImportPlan",
    "FilterImportPreview",
    "FilterImportRequested",
    "plan_filter_import",
    "request_filter_import",
]

FIRST_IDS = 10
"""How many of the ids an import would request the preview lists."""

DuplicateCheck = Callable[[str, Mapping[str, Any]], Collection[str]]
"""Given the target dataset and the items by their keys, the keys whose item the target holds already (they are
left out): :func:`jobs.skip_existing.held_now` behind ``--skip-existing``."""


class FilterImportError(ValueError):
    """Raised when a searched import cannot be planned as asked (a key too long for its chunks' numbers)."""


@dataclass(frozen=True)
class FilterImportPreview:
    """What the import would request now, in the words of ``schedules preview``."""

    kind: str
    dataset_id: str
    search: Any
    since: str | None
    until: str | None
    sample_rate: float | None
    key: str
    """The idempotency key base: the chunks are ``KEY:0``, ``KEY:1``, ..."""
    offered: int
    """Distinct items the search found."""
    sampled_out: int
    already_requested: int
    """Items of the sample an earlier run of this command requested (left out)."""
    earlier_jobs: int
    duplicates: int | None
    """Items of the sample the target holds already (left out); None when not checked."""
    to_import: int
    chunk_size: int
    chunks: int
    first_ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FilterImportPlan:
    query: FilterQuery
    preview: FilterImportPreview
    items: list[Any]
    """The items to request, in the order found."""
    next_chunk: int
    """The number of the first new chunk (after those of earlier runs)."""


@dataclass(frozen=True)
class FilterImportRequested:
    job_ids: list[str]
    """One per chunk, in order (a taken chunk's job is the earlier run's)."""
    taken: list[str]
    """Chunk keys another run of the command wrote first: their items were not requested by this run."""


def plan_filter_import(
    session_factory: sessionmaker[Session],
    client_factory: Callable[[], DatasetsClient],
    query: FilterQuery,
    *,
    chunk_size: int,
    key: str | None = None,
    duplicates: DuplicateCheck | None = None,
    first: int = FIRST_IDS,
) -> FilterImportPlan:
    """Search, take each item once, sample, leave out what earlier runs requested (and, with ``duplicates``, what
    the target holds). Reads only.

    :raises FilterImportError: ``key`` leaves no room for the chunks' numbers.
    :raises triggers.filter_import.query.SearchError: the search could not be walked to its end.
    :raises api_client.ApiError: the API refused or failed the search.
    """
    base = key if key is not None else query.key_base()
    _check_key(f"{base}:{10**6}")
    spec = spec_of(query.kind)
    item_key = _item_key(spec)
    with client_factory() as client:
        found = search_items(client, query)
    by_key: dict[str, Any] = {}
    for item in found:
        by_key.setdefault(item_key(item), item)
    kept, sampled_out = sample(list(by_key), query.sample_rate)
    with session_factory() as session:
        earlier = jobs_with_key_prefix(session, f"{base}:")
        requested = {item_key(item) for job in earlier for item in spec.items_of(job.params)}
        next_chunk = 1 + max((_chunk_number(job.idempotency_key, base) for job in earlier), default=-1)
    fresh = [item for item in kept if item not in requested]
    held: Collection[str] = ()
    if duplicates is not None and fresh:
        held = duplicates(query.dataset_id, {item: by_key[item] for item in fresh})
    new = [item for item in fresh if item not in held]
    preview = FilterImportPreview(
        kind=str(query.kind),
        dataset_id=query.dataset_id,
        search=query.search,
        since=None if query.since is None else iso_utc(query.since),
        until=None if query.until is None else iso_utc(query.until),
        sample_rate=query.sample_rate,
        key=base,
        offered=len(by_key),
        sampled_out=sampled_out,
        already_requested=len(kept) - len(fresh),
        earlier_jobs=len(earlier),
        duplicates=None if duplicates is None else len(fresh) - len(new),
        to_import=len(new),
        chunk_size=chunk_size,
        chunks=math.ceil(len(new) / chunk_size),
        first_ids=new[:first],
    )
    return FilterImportPlan(query, preview, [by_key[item] for item in new], next_chunk)


def request_filter_import(
    session_factory: sessionmaker[Session],
    plan: FilterImportPlan,
    *,
    origin: str,
    now: datetime,
    deadline_s: float,
    send: Callable[[list[str]], None],
    skip_existing: bool = False,
) -> FilterImportRequested:
    """Request the plan's items, ``chunk_size`` per job, in one transaction; then send the jobs to submit.

    :raises jobs.request_import.InvalidImportRequest: a chunk is not a valid import (nothing is written).
    """
    spec = spec_of(plan.query.kind)
    size = plan.preview.chunk_size
    requests = [
        ImportRequest(
            kind=plan.query.kind,
            dataset_id=plan.query.dataset_id,
            params=spec.with_items(plan.query.fixed_params, plan.items[start : start + size]),
            origin=origin,
            idempotency_key=f"{plan.preview.key}:{plan.next_chunk + index}",
            skip_existing=skip_existing,
        )
        for index, start in enumerate(range(0, len(plan.items), size))
    ]
    if not requests:
        return FilterImportRequested([], [])
    results = request_imports(session_factory, requests, now=now, deadline_s=deadline_s, send=send)
    taken = [str(request.idempotency_key) for request, result in zip(requests, results, strict=True)
             if not result.created]  # fmt: skip
    return FilterImportRequested([result.job_id for result in results], taken)


def _item_key(spec: ImportKindSpec) -> Callable[[Any], str]:
    item_field = spec.item_field
    if item_field is None:
        raise ValueError(f"a {spec.name} import has no list of items")
    return item_field.shape.item_key


def _chunk_number(key: str, base: str) -> int:
    """N of ``BASE:N``; -1 for a key under the base that is not a chunk's (a user's own key of that shape)."""
    number = key[len(base) + 1 :]
    return int(number) if number.isdigit() else -1


def _check_key(key: str) -> None:
    try:
        check_idempotency_key(key)
    except ValueError as exc:
        raise FilterImportError(f"{exc} (with the chunk number a searched import adds)") from None
