"""The Datasets endpoints (contract §1-2, §8), each described once, and one request builder per public method.

A builder checks its arguments and returns a :class:`RequestSpec`; it performs no I/O. The clients expose each
builder as a method of the same name and signature (see :mod:`api_client.binding`), so the docstrings here are
the methods' docstrings.

Every ``dataset_id`` is a dataset's UUID or, from 3.x on, its workspace-scoped slug (see
:mod:`api_client.dataset_refs`): any non-empty string is sent, percent-encoded, and the API decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias, get_args

from pydantic import TypeAdapter

from import_kinds import BodyError, ImportKindName, ImportKindSpec, spec_of

from .errors import InvalidRequestError
from .models import (
    ConversationPayload,
    CreateRecordSource,
    Dataset,
    DatasetImportTask,
    DatasetRecord,
    ExportDatasetResponse,
    Page,
)
from .pagination import PageWalk
from .responses import JsonBody, NoBody, RawBody
from .spec import UNSET, Endpoint, RequestSpec, Unset

__all__ = [
    "CREATE_DATASET",
    "CREATE_RECORD",
    "DELETE_DATASET",
    "DOWNLOAD_EXPORT",
    "EXPORT_TO_JSONL",
    "FETCH_DATASET",
    "FETCH_TASK",
    "IMPORT_BODY_FIELDS",
    "IMPORT_ENDPOINTS",
    "IMPORT_KINDS",
    "LIST_DATASETS",
    "LIST_RECORDS",
    "LIST_TASKS",
    "UPDATE_DATASET",
    "ImportKind",
    "create_dataset",
    "create_record",
    "delete_dataset",
    "download_export_from",
    "export_to_jsonl",
    "fetch_dataset",
    "fetch_task",
    "import_from_campaign",
    "import_from_dataset_records",
    "import_from_explorer",
    "import_from_file",
    "import_from_playground",
    "iter_datasets",
    "iter_records",
    "iter_tasks",
    "json_object",
    "list_datasets",
    "list_records",
    "list_tasks",
    "page_query",
    "start_import",
    "update_dataset",
]

# The import kinds and their bodies are described once, in the import_kinds package.
ImportKind: TypeAlias = ImportKindName
IMPORT_KINDS: Final[tuple[ImportKind, ...]] = get_args(ImportKindName)

# The body fields of each import request.
IMPORT_BODY_FIELDS: Final[dict[ImportKind, tuple[str, ...]]] = {
    kind: spec_of(kind).field_names for kind in IMPORT_KINDS
}

_DATASETS = "/v1/observability/datasets"
_DATASET = _DATASETS + "/{dataset_id}"

_DATASET_BODY = JsonBody(TypeAdapter(Dataset))
_TASK_BODY = JsonBody(TypeAdapter(DatasetImportTask))

LIST_DATASETS: Final = Endpoint(
    "list_datasets", "GET", _DATASETS, 200, JsonBody(TypeAdapter(Page[Dataset]), key="datasets")
)
CREATE_DATASET: Final = Endpoint("create_dataset", "POST", _DATASETS, 201, _DATASET_BODY, creates=True)
FETCH_DATASET: Final = Endpoint("fetch_dataset", "GET", _DATASET, 200, _DATASET_BODY)
DELETE_DATASET: Final = Endpoint("delete_dataset", "DELETE", _DATASET, 204, NoBody())
UPDATE_DATASET: Final = Endpoint("update_dataset", "PATCH", _DATASET, 200, _DATASET_BODY)
LIST_RECORDS: Final = Endpoint(
    "list_records", "GET", _DATASET + "/records", 200, JsonBody(TypeAdapter(Page[DatasetRecord]), key="records")
)
CREATE_RECORD: Final = Endpoint(
    "create_record", "POST", _DATASET + "/records", 201, JsonBody(TypeAdapter(DatasetRecord)), creates=True
)
IMPORT_ENDPOINTS: Final[dict[ImportKind, Endpoint[DatasetImportTask]]] = {
    kind: Endpoint(spec.operation, "POST", f"{_DATASET}/imports/{spec.route}", 202, _TASK_BODY, creates=True)
    for kind, spec in ((kind, spec_of(kind)) for kind in IMPORT_KINDS)
}
EXPORT_TO_JSONL: Final = Endpoint(
    "export_to_jsonl", "GET", _DATASET + "/exports/to-jsonl", 200, JsonBody(TypeAdapter(ExportDatasetResponse))
)
# The export's file_url is presigned: a plain GET, and the API key must not travel to wherever it points.
DOWNLOAD_EXPORT: Final = Endpoint("download_export", "GET", "{url}", 200, RawBody(), authenticated=False)
FETCH_TASK: Final = Endpoint("fetch_task", "GET", _DATASET + "/tasks/{task_id}", 200, _TASK_BODY)
LIST_TASKS: Final = Endpoint(
    "list_tasks", "GET", _DATASET + "/tasks", 200, JsonBody(TypeAdapter(Page[DatasetImportTask]), key="tasks")
)


def page_query(page: int, page_size: int, **extra: str | None) -> tuple[tuple[str, str], ...]:
    """``page_size`` then ``page`` (the SDK's order, both always sent), then the extra params that are set."""
    for name, value in (("page", page), ("page_size", page_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequestError(f"{name} must be an int, got {value!r}")
    query = [("page_size", str(page_size)), ("page", str(page))]
    query.extend((name, value) for name, value in extra.items() if value is not None)
    return tuple(query)


def list_datasets(page: int = 1, page_size: int = 50, q: str | None = None) -> RequestSpec[Page[Dataset]]:
    """One page of datasets (1-based ``page``); ``q`` filters them (server-defined match, sent only when set)."""
    return LIST_DATASETS.request(query=page_query(page, page_size, q=q))


def iter_datasets(q: str | None = None, page_size: int = 100) -> PageWalk[Dataset]:
    """Every dataset, page after page."""
    return PageWalk(lambda page: list_datasets(page, page_size, q), page_size)


def create_dataset(name: str, description: str) -> RequestSpec[Dataset]:
    """Create a dataset (201). Not retried by default: a retry could create a second dataset."""
    return CREATE_DATASET.request(json_body={"name": name, "description": description})


def fetch_dataset(dataset_id: str) -> RequestSpec[Dataset]:
    """One dataset by id."""
    return FETCH_DATASET.request({"dataset_id": dataset_id})


def update_dataset(
    dataset_id: str, *, name: str | Unset | None = UNSET, description: str | Unset | None = UNSET
) -> RequestSpec[Dataset]:
    """Change a dataset; only the fields given are sent, and ``None`` is sent as ``null``."""
    body: dict[str, str | None] = {}
    if name is not UNSET:
        body["name"] = name
    if description is not UNSET:
        body["description"] = description
    return UPDATE_DATASET.request({"dataset_id": dataset_id}, json_body=body)


def delete_dataset(dataset_id: str) -> RequestSpec[None]:
    """Delete a dataset (204, no body)."""
    return DELETE_DATASET.request({"dataset_id": dataset_id})


def list_records(dataset_id: str, page: int = 1, page_size: int = 50) -> RequestSpec[Page[DatasetRecord]]:
    """One page of a dataset's records (1-based ``page``)."""
    return LIST_RECORDS.request({"dataset_id": dataset_id}, query=page_query(page, page_size))


def iter_records(dataset_id: str, page_size: int = 100) -> PageWalk[DatasetRecord]:
    """Every record of a dataset, page after page."""
    return PageWalk(lambda page: list_records(dataset_id, page, page_size), page_size)


def create_record(
    dataset_id: str,
    payload: Mapping[str, Any] | ConversationPayload,
    properties: Mapping[str, Any] | None = None,
    *,
    source: CreateRecordSource | None = None,
) -> RequestSpec[DatasetRecord]:
    """Add one record (201). ``payload`` is any JSON object (3.x; a 2.5.0 ``ConversationPayload`` too);
    ``properties`` is sent when given (3.x made it optional; a 2.5.0 server requires it, ``{}`` will do);
    ``source`` (``"DIRECT_INPUT"`` or ``"TELEMETRY_SPAN"``) is sent when given, the server takes DIRECT_INPUT
    otherwise. Not retried by default: a retry could add the record twice.
    """
    body: dict[str, Any] = {"payload": json_object("create_record", "payload", payload)}
    if properties is not None:
        body["properties"] = json_object("create_record", "properties", properties)
    if source is not None:
        if source not in get_args(CreateRecordSource):
            raise InvalidRequestError(
                f"create_record: source must be one of {get_args(CreateRecordSource)}, got {source!r}"
            )
        body["source"] = source
    return CREATE_RECORD.request({"dataset_id": dataset_id}, json_body=body)


def json_object(operation: str, name: str, value: Any) -> dict[str, Any]:
    """``value`` as a JSON object body field: a mapping with string keys (a ConversationPayload is dumped)."""
    if isinstance(value, ConversationPayload):
        return value.model_dump(mode="json")
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{operation}: {name} must be a JSON object (a mapping), got {type(value).__name__}")
    if not all(isinstance(key, str) for key in value):
        raise InvalidRequestError(f"{operation}: the keys of {name} must be strings")
    return dict(value)


def start_import(dataset_id: str, kind: ImportKind | str, params: Mapping[str, Any]) -> RequestSpec[DatasetImportTask]:
    """Start an import of ``kind`` (202); ``params`` holds exactly the body fields of that kind
    (see ``IMPORT_BODY_FIELDS``). Not retried by default: see :class:`~api_client.retry.RetryPolicy`.
    """
    known_kind, spec = _import_kind(kind)
    try:
        body = spec.check(params)
    except BodyError as exc:
        raise InvalidRequestError(f"start_import: {exc}") from None
    return IMPORT_ENDPOINTS[known_kind].request({"dataset_id": dataset_id}, json_body=body)


def import_from_campaign(dataset_id: str, campaign_id: str) -> RequestSpec[DatasetImportTask]:
    """Import the events a campaign selected."""
    return start_import(dataset_id, "campaign", {"campaign_id": campaign_id})


def import_from_explorer(dataset_id: str, completion_event_ids: Iterable[str]) -> RequestSpec[DatasetImportTask]:
    """Import chat completion events by ``event_id``."""
    return start_import(dataset_id, "explorer", {"completion_event_ids": completion_event_ids})


def import_from_file(dataset_id: str, file_id: str) -> RequestSpec[DatasetImportTask]:
    """Import the lines of an uploaded JSONL file."""
    return start_import(dataset_id, "file", {"file_id": file_id})


def import_from_playground(dataset_id: str, conversation_ids: Iterable[str]) -> RequestSpec[DatasetImportTask]:
    """Import playground conversations."""
    return start_import(dataset_id, "playground", {"conversation_ids": conversation_ids})


def import_from_dataset_records(
    dataset_id: str, dataset_record_ids: Iterable[str]
) -> RequestSpec[DatasetImportTask]:
    """Copy records from other datasets into this one."""
    return start_import(dataset_id, "dataset", {"dataset_record_ids": dataset_record_ids})


def export_to_jsonl(dataset_id: str) -> RequestSpec[ExportDatasetResponse]:
    """Export a dataset; the answer holds a presigned ``file_url``."""
    return EXPORT_TO_JSONL.request({"dataset_id": dataset_id})


def download_export_from(file_url: str) -> RequestSpec[bytes]:
    """A plain GET of an export's presigned URL, without the API key."""
    return DOWNLOAD_EXPORT.request_to_url(file_url)


def fetch_task(dataset_id: str, task_id: str) -> RequestSpec[DatasetImportTask]:
    """One import task."""
    return FETCH_TASK.request({"dataset_id": dataset_id, "task_id": task_id})


def list_tasks(dataset_id: str, page: int = 1, page_size: int = 50) -> RequestSpec[Page[DatasetImportTask]]:
    """One page of a dataset's import tasks (1-based ``page``)."""
    return LIST_TASKS.request({"dataset_id": dataset_id}, query=page_query(page, page_size))


def iter_tasks(dataset_id: str, page_size: int = 100) -> PageWalk[DatasetImportTask]:
    """Every import task of a dataset, page after page."""
    return PageWalk(lambda page: list_tasks(dataset_id, page, page_size), page_size)


def _import_kind(kind: str) -> tuple[ImportKind, ImportKindSpec]:
    # Accepts any str equal to a kind, e.g. a StrEnum member read from a database.
    for known in IMPORT_KINDS:
        if kind == known:
            return known, spec_of(known)
    raise InvalidRequestError(f"start_import: unknown import kind {kind!r}; expected one of {IMPORT_KINDS}")
