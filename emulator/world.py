"""The emulator's whole state, kept in memory behind one lock.

Route handlers take ``world.lock`` for the span of their work; nothing in here awaits, so the lock
is only ever held for microseconds. Lazy task progress (`lifecycle`) relies on that lock to make
the record copy of a finished task happen exactly once.
"""

from __future__ import annotations

import heapq
import random
import re
import threading
import uuid
from typing import Any

from .clock import Clock
from .config import Knobs
from .errors import DATASET_NOT_FOUND, DATASET_RECORD_NOT_FOUND, observability_error
from .models import Campaign, Conversation, Dataset, Event, Record, Span, StoredFile, Task

__all__ = ["OWNER_ID", "WORKSPACE_ID", "World", "is_uuid_shaped", "new_id", "slugify"]

OWNER_ID = "emulator-user"
WORKSPACE_ID = "emulator-workspace"

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")
_UUID_SHAPED = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def new_id() -> str:
    return str(uuid.uuid4())


def slugify(name: str) -> str:
    return _SLUG_STRIP.sub("-", name.lower()).strip("-") or "dataset"


def is_uuid_shaped(value: str) -> bool:
    """True for a value the API always reads as a dataset id, never as a slug (3.x path rule)."""
    return _UUID_SHAPED.match(value) is not None


class World:
    """Datasets, records, tasks and the import sources (campaigns, events, conversations, files, spans)."""

    def __init__(self, *, clock: Clock, knobs: Knobs | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.knobs = knobs.copy() if knobs is not None else Knobs()
        self.rng = random.Random(self.knobs.random_seed)
        self.datasets: dict[str, Dataset] = {}
        self.records: dict[str, Record] = {}
        self.records_by_dataset: dict[str, list[Record]] = {}
        self.origins_by_dataset: dict[str, set[str]] = {}
        self.tasks: dict[str, Task] = {}
        self.tasks_by_dataset: dict[str, list[Task]] = {}
        # Per dataset, a heap of (end time, task id) for tasks that have not been settled yet.
        self.due: dict[str, list[tuple[float, str]]] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.events: dict[str, Event] = {}
        self.conversations: dict[str, Conversation] = {}
        self.files: dict[str, StoredFile] = {}
        # Telemetry spans by (trace_id, span_id); a trace is the spans sharing a trace_id.
        self.spans: dict[tuple[str, str], Span] = {}

    def now(self) -> float:
        return self.clock()

    def set_knobs(self, knobs: Knobs) -> None:
        if knobs.random_seed is not None and knobs.random_seed != self.knobs.random_seed:
            self.rng.seed(knobs.random_seed)
        self.knobs = knobs

    def clear(self) -> None:
        for store in (
            self.datasets,
            self.records,
            self.records_by_dataset,
            self.origins_by_dataset,
            self.tasks,
            self.tasks_by_dataset,
            self.due,
            self.campaigns,
            self.events,
            self.conversations,
            self.files,
            self.spans,
        ):
            store.clear()

    def counts(self) -> dict[str, int]:
        return {
            "datasets": sum(1 for d in self.datasets.values() if d.deleted_at is None),
            "records": len(self.records),
            "tasks": len(self.tasks),
            "campaigns": sum(1 for c in self.campaigns.values() if c.deleted_at is None),
            "events": len(self.events),
            "conversations": len(self.conversations),
            "files": len(self.files),
            "spans": len(self.spans),
        }

    # Datasets and records -------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        description: str,
        *,
        dataset_id: str | None = None,
        created_at: float | None = None,
        slug: str | None = None,
    ) -> Dataset:
        now = self.now() if created_at is None else created_at
        dataset = Dataset(
            id=dataset_id or new_id(),
            name=name,
            description=description,
            slug=slug or self._unique_slug(name),
            owner_id=OWNER_ID,
            workspace_id=WORKSPACE_ID,
            created_at=now,
            updated_at=now,
        )
        self.datasets[dataset.id] = dataset
        self.records_by_dataset.setdefault(dataset.id, [])
        self.origins_by_dataset.setdefault(dataset.id, set())
        self.tasks_by_dataset.setdefault(dataset.id, [])
        return dataset

    def _unique_slug(self, name: str) -> str:
        base = slugify(name)
        if is_uuid_shaped(base):
            # A UUID-shaped slug could never be used in a path: such values are always read as ids.
            base = f"{base}-dataset"
        taken = {d.slug for d in self.datasets.values() if d.deleted_at is None}
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        return slug

    def dataset_for_path(self, value: str) -> Dataset:
        """The live dataset a path's ``{dataset_id}`` names: a UUID-shaped value is an id, anything else a slug.

        Either way an unknown or deleted dataset is a 404 DATASET_NOT_FOUND problem.
        """
        if is_uuid_shaped(value):
            return self.live_dataset(str(uuid.UUID(value)))
        dataset = self.dataset_by_slug(value)
        if dataset is None:
            raise observability_error(404, DATASET_NOT_FOUND, f"Dataset {value} not found")
        return dataset

    def dataset_by_slug(self, slug: str) -> Dataset | None:
        """The live dataset with this slug (slugs are unique among the workspace's live datasets)."""
        for dataset in self.datasets.values():
            if dataset.slug == slug and dataset.deleted_at is None:
                return dataset
        return None

    def live_dataset(self, dataset_id: str) -> Dataset:
        """The dataset, or a 404 DATASET_NOT_FOUND problem if it is unknown or soft-deleted."""
        dataset = self.datasets.get(dataset_id)
        if dataset is None or dataset.deleted_at is not None:
            raise observability_error(404, DATASET_NOT_FOUND, f"Dataset {dataset_id} not found")
        return dataset

    def add_record(
        self,
        dataset_id: str,
        payload: dict[str, Any],
        properties: dict[str, Any],
        source: str,
        origin: str | None,
        *,
        record_id: str | None = None,
        created_at: float | None = None,
    ) -> Record:
        now = self.now() if created_at is None else created_at
        record = Record(
            id=record_id or new_id(),
            dataset_id=dataset_id,
            payload=payload,
            properties=properties,
            source=source,
            created_at=now,
            updated_at=now,
            origin=origin,
        )
        self.records[record.id] = record
        self.records_by_dataset.setdefault(dataset_id, []).append(record)
        if origin is not None:
            self.origins_by_dataset.setdefault(dataset_id, set()).add(origin)
        return record

    def live_record(self, record_id: str) -> Record:
        """The record, or a 404 DATASET_RECORD_NOT_FOUND problem if it is unknown or its dataset is deleted."""
        record = self.records.get(record_id)
        dataset = None if record is None else self.datasets.get(record.dataset_id)
        if record is None or dataset is None or dataset.deleted_at is not None:
            raise observability_error(404, DATASET_RECORD_NOT_FOUND, f"Dataset record {record_id} not found")
        return record

    def remove_records(self, records: list[Record]) -> None:
        """Forget records; an origin no remaining record has is freed, so importing that source again adds it back."""
        gone_by_dataset: dict[str, set[str]] = {}
        for record in records:
            if self.records.pop(record.id, None) is not None:
                gone_by_dataset.setdefault(record.dataset_id, set()).add(record.id)
        for dataset_id, gone in gone_by_dataset.items():
            kept = [r for r in self.records_by_dataset.get(dataset_id, []) if r.id not in gone]
            self.records_by_dataset[dataset_id] = kept
            self.origins_by_dataset[dataset_id] = {r.origin for r in kept if r.origin is not None}

    # Tasks ---------------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.tasks_by_dataset.setdefault(task.dataset_id, []).append(task)
        if not task.settled:
            heapq.heappush(self.due.setdefault(task.dataset_id, []), (task.end_at, task.id))

    def remove_task(self, task_id: str) -> bool:
        """Forget a task (its heap entry is skipped lazily when popped)."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return False
        siblings = self.tasks_by_dataset.get(task.dataset_id, [])
        self.tasks_by_dataset[task.dataset_id] = [t for t in siblings if t.id != task_id]
        return True
