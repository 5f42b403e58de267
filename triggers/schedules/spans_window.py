"""A spans-window fire: the telemetry spans found in ``[watermark, fire time - settle lag)``, imported in chunks.

The 3.x counterpart of explorer-window. The spans search (``POST /v1/observability/spans/search``) takes the window
as its ``from`` and ``to`` and the schedule's search expression, and answers page after page (``cursor``). Every
span found is one item, recorded under its ``trace_id:span_id``; the items this schedule already imported are
dropped and the rest requested in chunks of ``chunk_size``, each chunk one spans import carrying the schedule's
mapping contract, key ``schedule:NAME:FIRE_TIME:INDEX``. Everything else is explorer-window's, through
:func:`~triggers.schedules.kinds.import_new_items`: the jobs, the imported items and the watermark move in one
transaction (or nothing is recorded and the next fire searches the same window again), failed chunks of earlier
fires are retried first (with the mapping contract of the job that failed), and the settle lag leaves time for a
span to become searchable.

Which timestamp of a span the search compares with ``from`` and ``to``, and whether the bounds are inclusive, the
API does not say. Consecutive windows share their boundary, and the imported items keep a span found by two of
them to one import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api_client import DatasetsClient
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.kinds import (
    FireContext,
    FireReport,
    RunRef,
    ScheduleRunError,
    ScheduleSnapshot,
    import_new_items,
    window_of,
)

__all__ = ["SPANS_PAGE_SIZE", "run_spans_window", "search_spans_window", "walk_spans"]

SPANS_PAGE_SIZE = 100
"""Spans asked for per search request."""


def search_spans_window(
    client: DatasetsClient, schedule: ScheduleSnapshot, window: tuple[datetime, datetime]
) -> list[dict[str, Any]]:
    """The spans found in ``window`` by the schedule's search, as span references, every page walked."""
    start, end = window
    return walk_spans(client, schedule.params.get("search"), start, end)


def walk_spans(
    client: DatasetsClient, search: str | None, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """The spans ``search`` finds between ``start`` and ``end`` (either open when None), as span references, every
    page walked.

    :raises ScheduleRunError: the search handed out a cursor twice.
    """
    found: list[dict[str, Any]] = []
    seen_cursors: set[str] = set()
    cursor: str | None = None
    while True:
        page = client.search_spans(search, from_=start, to=end, page_size=SPANS_PAGE_SIZE, cursor=cursor)
        found.extend({"trace_id": span.trace_id, "span_id": span.span_id} for span in page.results)
        if not page.results or not page.cursor:
            return found
        if page.cursor in seen_cursors:
            # A server that hands out a cursor twice would be walked forever; nothing is recorded.
            raise ScheduleRunError(f"the spans search returned cursor {page.cursor!r} twice")
        seen_cursors.add(page.cursor)
        cursor = page.cursor


def run_spans_window(ctx: FireContext, schedule: ScheduleSnapshot, run: RunRef) -> FireReport:
    start, end = window_of(schedule, run.fire_time, ctx.settle_lag_s)
    if end <= start:
        # Nothing to search yet, but failed chunks of earlier fires are still retried.
        message = f"window ending {fire_time_iso(end)} already covered up to {fire_time_iso(start)}"
        return import_new_items(ctx, schedule, run, [], chunk_size=1, window=None, note=message)
    with ctx.client_factory() as client:
        found = search_spans_window(client, schedule, (start, end))
    return import_new_items(
        ctx,
        schedule,
        run,
        found,
        chunk_size=int(schedule.params["chunk_size"]),
        window=(start, end),
        fixed_params={"mapping_contract": schedule.params["mapping_contract"]},
    )
