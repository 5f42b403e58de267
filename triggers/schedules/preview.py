"""What a window schedule's fire would import now, without importing: ``dsimport schedules preview NAME``.

The preview walks the same path as a fire up to the point where a fire would write anything: the window from the
watermark to ``now`` less the settle lag (:func:`~triggers.schedules.kinds.window_of`), the same search, each item
once, the same sample (:mod:`triggers.schedules.sampling`) and the same check against the items this schedule has
already imported. It reads the ledger and the API's search, and never creates a job, a run or an import.
Failed chunks a fire would retry first are not part of the preview: they are the schedule's past, shown by
``schedules show``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from import_kinds import spec_of
from import_kinds.item_keys import origin_key
from jobs.skip_existing import held_now
from store.models import ScheduleKind
from store.schedules import get_schedule, imported_item_ids
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.kinds import ScheduleSnapshot, search_explorer_window, window_of
from triggers.schedules.sampling import sample
from triggers.schedules.spans_window import search_spans_window

__all__ = ["FIRST_IDS", "PreviewError", "SchedulePreview", "preview_schedule"]

FIRST_IDS = 10
"""How many of the ids a fire would import the preview lists."""

_SEARCHES: dict[ScheduleKind, Callable[[DatasetsClient, ScheduleSnapshot, tuple[datetime, datetime]], Sequence[Any]]]
_SEARCHES = {
    ScheduleKind.EXPLORER_WINDOW: search_explorer_window,
    ScheduleKind.SPANS_WINDOW: search_spans_window,
}


class PreviewError(ValueError):
    """Raised when a schedule cannot be previewed: unknown, removed, finished, or not a window schedule."""


@dataclass(frozen=True)
class SchedulePreview:
    """What a fire now would do with the items it finds."""

    schedule: str
    kind: str
    window_start: str
    window_end: str
    sample_rate: float | None
    offered: int
    """Distinct items the search found in the window."""
    sampled_out: int
    already_imported: int
    """Items of the sample this schedule imported before (a fire skips them)."""
    duplicates: int | None
    """Items the target dataset holds already, which the fire's jobs would leave out (None: ``skip_existing`` off)."""
    to_import: int
    first_ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview_schedule(
    session_factory: sessionmaker[Session],
    client_factory: Callable[[], DatasetsClient],
    name: str,
    *,
    now: datetime,
    settle_lag_s: float,
    first: int = FIRST_IDS,
    index_max_age_s: float = 600.0,
) -> SchedulePreview:
    """What the fire of window schedule ``name`` at ``now`` would import. Reads only.

    :raises PreviewError: the schedule cannot be previewed.
    """
    with session_factory() as session:
        row = get_schedule(session, name)
        if row is None or row.removed_at is not None:
            raise PreviewError(f"no schedule named {name!r}")
        if row.finished_at is not None:
            raise PreviewError(f"schedule {name} is finished: {row.finished_reason}")
        schedule = ScheduleSnapshot.of(row)
    search = _SEARCHES.get(schedule.kind)
    if search is None:
        kinds = ", ".join(str(kind) for kind in _SEARCHES)
        raise PreviewError(
            f"schedule {name} is {schedule.kind}: a preview shows what a window schedule ({kinds}) would import"
        )
    # A fire's time is whole seconds; so is the preview's, so both search the same window.
    start, end = window_of(schedule, now.astimezone(UTC).replace(microsecond=0), settle_lag_s)
    found: Sequence[Any] = []
    if end > start:
        with client_factory() as client:
            found = search(client, schedule, (start, end))
    item_field = spec_of(schedule.import_kind).item_field
    assert item_field is not None
    by_key: dict[str, Any] = {}
    for item in found:
        by_key.setdefault(item_field.shape.item_key(item), item)
    keys = list(by_key)
    kept, sampled_out = sample(keys, schedule.sample_rate)
    with session_factory() as session:
        already = imported_item_ids(session, schedule.id, kept)
    new = [key for key in kept if key not in already]
    duplicates: int | None = None
    if schedule.skip_existing:
        origins = {key: origin_key(str(schedule.import_kind), by_key[key]) for key in new}
        wanted = [origin for origin in origins.values() if origin is not None]
        with client_factory() as client:
            held = held_now(
                session_factory, client, schedule.dataset_id, wanted, now=now, max_age_s=index_max_age_s
            ) if wanted else set()  # fmt: skip
        new = [key for key in new if origins[key] not in held]
        duplicates = len(origins) - len(new)
    return SchedulePreview(
        schedule=schedule.name,
        kind=str(schedule.kind),
        window_start=fire_time_iso(start),
        window_end=fire_time_iso(end),
        sample_rate=schedule.sample_rate,
        offered=len(keys),
        sampled_out=sampled_out,
        already_imported=len(already),
        duplicates=duplicates,
        to_import=len(new),
        first_ids=new[:first],
    )
