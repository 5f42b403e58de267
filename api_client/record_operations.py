"""The record operations 3.x added (SDK 3.7.0 ``datasets.records``), under ``/v1/observability/dataset-records``.

Same shape as :mod:`api_client.operations`: each endpoint described once, one request builder per method. A record
is named by its own id here, not through its dataset. Status codes and bodies are the 3.7.0 SDK's: fetch 200 with
a ``DatasetRecord``, judging 200 with a ``JudgeOutput``, the four changes 204 without a body.

Retries: reading, deleting and replacing are safe to repeat and retried as usual (a delete whose answer was lost
answers ``DATASET_RECORD_NOT_FOUND`` the second time). Live judging is not retried by default: each request runs
the judge's model again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .errors import InvalidRequestError
from .models import ConversationPayload, DatasetRecord
from .operations import json_object
from .record_models import JudgeDefinition, JudgeOutput
from .responses import JsonBody, NoBody, summarize_validation_error
from .spec import Endpoint, RequestSpec

__all__ = [
    "BULK_DELETE_RECORDS",
    "DELETE_RECORD",
    "FETCH_RECORD",
    "JUDGE_RECORD",
    "UPDATE_RECORD_PAYLOAD",
    "UPDATE_RECORD_PROPERTIES",
    "bulk_delete_records",
    "delete_record",
    "fetch_record",
    "judge_record",
    "update_record_payload",
    "update_record_properties",
]

_RECORDS = "/v1/observability/dataset-records"
_RECORD = _RECORDS + "/{dataset_record_id}"

FETCH_RECORD: Final = Endpoint("fetch_record", "GET", _RECORD, 200, JsonBody(TypeAdapter(DatasetRecord)))
DELETE_RECORD: Final = Endpoint("delete_record", "DELETE", _RECORD, 204, NoBody())
# A POST that only deletes: sending it again leaves the same records deleted.
BULK_DELETE_RECORDS: Final = Endpoint("bulk_delete_records", "POST", _RECORDS + "/bulk-delete", 204, NoBody())
UPDATE_RECORD_PAYLOAD: Final = Endpoint("update_record_payload", "PUT", _RECORD + "/payload", 204, NoBody())
UPDATE_RECORD_PROPERTIES: Final = Endpoint("update_record_properties", "PUT", _RECORD + "/properties", 204, NoBody())
JUDGE_RECORD: Final = Endpoint(
    "judge_record", "POST", _RECORD + "/live-judging", 200, JsonBody(TypeAdapter(JudgeOutput)), creates=True
)


def fetch_record(dataset_record_id: str) -> RequestSpec[DatasetRecord]:
    """One record by its id."""
    return FETCH_RECORD.request({"dataset_record_id": dataset_record_id})


def delete_record(dataset_record_id: str) -> RequestSpec[None]:
    """Delete one record (204, no body)."""
    return DELETE_RECORD.request({"dataset_record_id": dataset_record_id})


def bulk_delete_records(dataset_record_ids: Iterable[str]) -> RequestSpec[None]:
    """Delete records by id, from any datasets (204, no body)."""
    # A lone string is iterable too: without this check "r1" would become ["r", "1"].
    if isinstance(dataset_record_ids, str | bytes) or not isinstance(dataset_record_ids, Iterable):
        raise InvalidRequestError(
            f"bulk_delete_records: dataset_record_ids must be a list of strings, got {dataset_record_ids!r}"
        )
    ids = list(dataset_record_ids)
    if not all(isinstance(item, str) and item for item in ids):
        raise InvalidRequestError(f"bulk_delete_records: dataset_record_ids must hold non-empty strings, got {ids!r}")
    return BULK_DELETE_RECORDS.request(json_body={"dataset_record_ids": ids})


def update_record_payload(
    dataset_record_id: str, payload: Mapping[str, Any] | ConversationPayload
) -> RequestSpec[None]:
    """Replace a record's payload with ``payload``, any JSON object (204, no body)."""
    body = {"payload": json_object("update_record_payload", "payload", payload)}
    return UPDATE_RECORD_PAYLOAD.request({"dataset_record_id": dataset_record_id}, json_body=body)


def update_record_properties(dataset_record_id: str, properties: Mapping[str, Any]) -> RequestSpec[None]:
    """Replace a record's properties with ``properties``, a JSON object (204, no body)."""
    body = {"properties": json_object("update_record_properties", "properties", properties)}
    return UPDATE_RECORD_PROPERTIES.request({"dataset_record_id": dataset_record_id}, json_body=body)


def judge_record(
    dataset_record_id: str, judge_definition: JudgeDefinition | Mapping[str, Any]
) -> RequestSpec[JudgeOutput]:
    """Run a judge on one record now and return its verdict (200). Not retried by default: a retry runs the judge
    again."""
    try:
        definition = (
            judge_definition
            if isinstance(judge_definition, JudgeDefinition)
            else JudgeDefinition.model_validate(judge_definition)
        )
    except PydanticValidationError as exc:
        raise InvalidRequestError(f"judge_record: invalid judge_definition: {summarize_validation_error(exc)}") from exc
    body = {"judge_definition": definition.model_dump(mode="json")}
    return JUDGE_RECORD.request({"dataset_record_id": dataset_record_id}, json_body=body)
