"""The Datasets API's objects (contract §3, §7), as the mistralai SDKs validate them: 2.5.0 and today's 3.x.

Responses ignore unknown keys, so a newer server still parses; required keys stay required, including the nullable
``deleted_at``. What 3.x added is modelled as optional so that 2.5.0 answers parse too (``Dataset.slug``,
``DatasetImportTask.result``). ``status`` and ``source`` are open enums: typed as plain ``str`` so a value this
client has never heard of is kept rather than rejected; the known values are listed in :class:`TaskStatuses` and
:class:`RecordSources`.

A record's ``payload`` was a ``ConversationPayload`` (chat ``messages``) in 2.5.0 and is a free-form JSON object in
3.x (a record made from a span carries no ``messages``): see :data:`RecordPayload`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "TERMINAL_TASK_STATUSES",
    "ConversationPayload",
    "CreateRecordSource",
    "Dataset",
    "DatasetImportResult",
    "DatasetImportTask",
    "DatasetPreview",
    "DatasetRecord",
    "ExportDatasetResponse",
    "Page",
    "RecordPayload",
    "RecordSource",
    "RecordSources",
    "ResponseModel",
    "TaskStatus",
    "TaskStatuses",
    "is_terminal",
]

TaskStatus: TypeAlias = str
RecordSource: TypeAlias = str


class TaskStatuses(StrEnum):
    """The ``BaseTaskStatus`` values known in 2.5.0 (Temporal workflow states); the server may send others."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    TIMED_OUT = "TIMED_OUT"
    UNKNOWN = "UNKNOWN"


# CONTINUED_AS_NEW, UNKNOWN and unknown strings are not here: the task may still be working, keep polling.
TERMINAL_TASK_STATUSES: Final[frozenset[str]] = frozenset(
    {"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"}
)


def is_terminal(status: str) -> bool:
    """True when a task in ``status`` will not change any more."""
    return str(status) in TERMINAL_TASK_STATUSES


class RecordSources(StrEnum):
    """Known ``source`` values of a record: 2.5.0's ``ConversationSource`` and 3.x's ``DatasetRecordSource``, which
    adds ``TELEMETRY_SPAN``. Both SDKs keep an unknown value (``UnrecognizedStr``), and so does this client."""

    EXPLORER = "EXPLORER"
    UPLOADED_FILE = "UPLOADED_FILE"
    DIRECT_INPUT = "DIRECT_INPUT"
    PLAYGROUND = "PLAYGROUND"
    TELEMETRY_SPAN = "TELEMETRY_SPAN"


# What a caller may declare when it creates a record (3.x ``CreateDatasetRecordRequestSource``, a closed set; the
# server takes DIRECT_INPUT when none is sent, as 2.5.0 always did).
CreateRecordSource: TypeAlias = Literal["DIRECT_INPUT", "TELEMETRY_SPAN"]


class ResponseModel(BaseModel):
    """Base of every response object: immutable, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Dataset(ResponseModel):
    """A dataset (``Dataset`` from create, ``DatasetPreview`` from fetch/update/list: the same fields)."""

    id: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    description: str
    owner_id: str
    workspace_id: str
    # The dataset's workspace-scoped slug, which 3.x takes wherever a dataset id goes (see api_client.dataset_refs).
    # Required from 3.x on, absent in 2.5.0.
    slug: str | None = None


DatasetPreview: TypeAlias = Dataset


class ConversationPayload(BaseModel):
    """The 2.5.0 shape of a record's content: chat messages, plus any extra top-level keys, which are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    messages: list[dict[str, Any]]


# 3.x: "Caller-authored input object stored on a dataset record", any JSON object. A payload of the 2.5.0 shape
# (``messages``, a list of objects) is read as a ConversationPayload, so it stays typed; any other object is kept
# as a plain dict, exactly as the server sent it. Tried in that order: a plain dict would accept everything.
RecordPayload: TypeAlias = Annotated[ConversationPayload | dict[str, Any], Field(union_mode="left_to_right")]


class DatasetRecord(ResponseModel):
    """One record of a dataset."""

    id: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    dataset_id: str
    payload: RecordPayload
    properties: dict[str, Any]
    source: RecordSource

    def payload_dict(self) -> dict[str, Any]:
        """The payload as a plain JSON object, whichever shape it has (a ConversationPayload is dumped)."""
        if isinstance(self.payload, ConversationPayload):
            return self.payload.model_dump(mode="json")
        return dict(self.payload)


class DatasetImportResult(ResponseModel):
    """Counts of a completed import (sent from 3.x on)."""

    requested_record_count: int
    imported_record_count: int
    skipped_record_count: int


class DatasetImportTask(ResponseModel):
    """A remote import task, polled until its status is terminal."""

    id: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    creator_id: str
    dataset_id: str
    workspace_id: str
    status: TaskStatus
    # Units undocumented; None means unknown, not zero.
    progress: int | None = None
    message: str | None = None
    result: DatasetImportResult | None = None

    @property
    def is_terminal(self) -> bool:
        """True when the task will not change any more."""
        return is_terminal(self.status)


ItemT = TypeVar("ItemT")


class Page(ResponseModel, Generic[ItemT]):
    """One page of a list (``PaginatedResult*``). ``count`` is the total over all pages."""

    count: int
    results: list[ItemT] = Field(default_factory=list)
    # Format undocumented (URL or token): only its presence is meaningful.
    next: str | None = None
    previous: str | None = None

    @field_validator("results", mode="before")
    @classmethod
    def _null_results_are_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ExportDatasetResponse(ResponseModel):
    """Where to download a dataset's JSONL export (a presigned URL)."""

    file_url: str
