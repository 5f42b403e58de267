"""The emulator's stored objects. Times are Unix seconds (floats); wire shapes live in `wire`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Campaign",
    "Conversation",
    "Dataset",
    "Event",
    "PlannedRecord",
    "Record",
    "Span",
    "StoredFile",
    "Task",
]

JsonObject = dict[str, Any]


@dataclass(slots=True)
class Dataset:
    id: str
    name: str
    description: str
    slug: str
    owner_id: str
    workspace_id: str
    created_at: float
    updated_at: float
    deleted_at: float | None = None


@dataclass(slots=True)
class Record:
    id: str
    dataset_id: str
    payload: JsonObject
    properties: JsonObject
    source: str
    created_at: float
    updated_at: float
    # Where the record was copied from ("event:<id>", "file:<id>:<line>", ...); used to skip
    # duplicates on repeated imports. None for records created directly.
    origin: str | None = None


@dataclass(slots=True)
class PlannedRecord:
    """A record an import task will write when it completes."""

    payload: JsonObject
    properties: JsonObject
    source: str
    origin: str | None


@dataclass(slots=True)
class Task:
    """An import task. Its status is not stored: `lifecycle.view` derives it from the clock."""

    id: str
    dataset_id: str
    kind: str
    creator_id: str
    workspace_id: str
    created_at: float
    duration_s: float
    # When the task reaches ``outcome`` (a failure may end before ``created_at + duration_s``).
    end_at: float
    sequence: tuple[str, ...]
    outcome: str
    outcome_message: str | None
    end_progress: int
    plan: list[PlannedRecord]
    requested: int
    settled: bool = False
    result: JsonObject | None = None
    observed_at: float | None = None
    fetch_count: int = 0
    # Origins of the planned records (``event:<id>`` ...), kept after settling empties the plan: what the task
    # imported, for ``GET /_emulator/task-origins``.
    origins: tuple[str, ...] = ()
    # Serialised body once settled, and the constant head of the body while running.
    body_cache: bytes | None = field(default=None, repr=False)
    head_cache: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class Event:
    """A chat-completion event, kept in its wire shape, plus its time for sorting."""

    data: JsonObject
    created_ts: float

    @property
    def event_id(self) -> str:
        return str(self.data["event_id"])


@dataclass(slots=True)
class Campaign:
    id: str
    name: str
    description: str
    max_nb_events: int
    search_params: JsonObject
    judge: JsonObject
    selected_event_ids: list[str]
    owner_id: str
    workspace_id: str
    created_at: float
    updated_at: float
    # Status while running; with ``completes_after_s`` it turns COMPLETED that long after
    # ``started_at`` and its selected events become visible progressively until then.
    status: str
    started_at: float
    completes_after_s: float | None = None
    deleted_at: float | None = None


@dataclass(slots=True)
class Conversation:
    id: str
    created_at: float
    updated_at: float
    # Chat-style messages: {"role": ..., "content": ...} plus any extra keys.
    messages: list[JsonObject]
    model: str | None = None
    agent_id: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    metadata: JsonObject | None = None


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    content: bytes = field(repr=False)
    created_at: int
    purpose: str = "fine-tune"
    sample_type: str = "instruct"
    source: str = "upload"
    mimetype: str | None = None
    visibility: str | None = "workspace"
    expires_at: int | None = None


@dataclass(slots=True)
class Span:
    """A telemetry span, kept in its wire shape (``GetSpan``), plus its start time for sorting and windows."""

    data: JsonObject
    start_ts: float

    @property
    def trace_id(self) -> str:
        return str(self.data["trace_id"])

    @property
    def span_id(self) -> str:
        return str(self.data["span_id"])

    @property
    def key(self) -> tuple[str, str]:
        return (self.trace_id, self.span_id)
