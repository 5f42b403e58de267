"""The OpenAPI 3.1 document of the API, served at ``/api/v1/openapi.json``: built from the answer models and the
queue message's JSON Schema, so that it describes what the handlers actually send and accept.

It is served without a token: it holds no data, and clients and validators fetch it before they have one.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from triggers.messages.message_model import json_schema as message_schema

from .errors import CODES
from .job_pages import MAX_LIMIT
from .models import (
    ErrorAnswer,
    ImportAnswer,
    JobDetailOut,
    JobOut,
    JobPage,
    RunNowAnswer,
    ScheduleCreate,
    ScheduleList,
    ScheduleOut,
)

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_MODELS: list[type[BaseModel]] = [
    ErrorAnswer, ImportAnswer, JobDetailOut, JobOut, JobPage, RunNowAnswer, ScheduleList, ScheduleOut,
]  # fmt: skip

_DESCRIPTION = """\
Request imports, follow and cancel jobs, and manage beat schedules of a dsimport service.

Every call takes a bearer token (`Authorization: Bearer dsi_...`), created with
`dsimport tokens create NAME [--scope read|write]`; `write` includes `read`. Every error has one shape
(`ErrorAnswer`): `{"error": {"status", "code", "message", "details"}}`; a 401 carries `WWW-Authenticate: Bearer`.

A new import is written to the ledger (PENDING) and handed to a worker at once when the server was started with
the broker (`dsimport dashboard`, `dsimport up`); otherwise the recovery sweep sends it within
`DSIMPORT_STALE_PENDING_S`.
"""


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    # 401 and 500 can answer any call; the others are listed where they can happen.
    wanted = sorted({401, 500, *statuses})
    return {str(status): {"$ref": f"#/components/responses/{CODES[status]}"} for status in wanted}


def _operation(
    operation_id: str,
    summary: str,
    scope: str,
    answers: dict[str, Any],
    errors: tuple[int, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"bearer": [scope]}],
        "responses": {**answers, **(_errors(403, *errors) if scope == "write" else _errors(*errors))},
        **extra,
    }


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema, **extra}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _message_components() -> tuple[dict[str, Any], dict[str, Any]]:
    """The queue message's published schema as a component, and the components it refers to."""
    text = json.dumps(message_schema()).replace('"#/$defs/', '"#/components/schemas/')
    schema = json.loads(text)
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return schema, defs


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once: it depends on the code only)."""
    _, top = models_json_schema([(model, "serialization") for model in _MODELS], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    # A request body is described as it is read (validation), the answers as they are written (serialization).
    _, read_top = models_json_schema([(ScheduleCreate, "validation")], ref_template=_REF)
    schemas.update(read_top.get("$defs", {}))
    message, message_defs = _message_components()
    schemas.update(message_defs)
    schemas["ImportRequest"] = message
    job_id, name = _path("job_id"), _path("name")
    responses = {
        CODES[status]: _json(_ref(ErrorAnswer), f"{status}: {CODES[status].replace('_', ' ')}") for status in CODES
    }
    responses["unauthorized"]["headers"] = {
        "WWW-Authenticate": {"description": "Bearer realm=\"dsimport\"", "schema": {"type": "string"}}
    }
    paths = {
        "/imports": {
            "post": _operation(
                "createImport",
                "Request an import (the queue message's body)",
                "write",
                {
                    "202": _json(_ref(ImportAnswer), "A new job was written; `created` is true."),
                    "200": _json(_ref(ImportAnswer), "The key was used before for the same request: its job."),
                },
                (409, 413, 422, 503),
                description=(
                    "The body is the queue message (schemas/import-request.schema.json, component "
                    "`ImportRequest`), read exactly as the stream reads it. Its `id` is the idempotency key and "
                    "may come in the `Idempotency-Key` header instead (both given: they must be equal). A request "
                    "repeated with the same key answers 200 with the first job; the same key with another "
                    "request answers 409. A message sent to the stream with the same id is the same import. "
                    "An invalid request answers 422 and is not kept as a dead letter."
                ),
                parameters=[
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "The request's id, when the body leaves `id` out.",
                        "schema": {"type": "string", "pattern": "^[!-~]+$", "maxLength": 200},
                    }
                ],
                requestBody={"required": True, "content": {"application/json": {"schema": _ref_name("ImportRequest")}}},
            )
        },
        "/jobs": {
            "get": _operation(
                "listJobs",
                "List jobs, newest first, a page at a time",
                "read",
                {"200": _json(_ref(JobPage), "One page; pass `next_cursor` as `cursor` for the next.")},
                (422,),
                parameters=[
                    _query("status", "Only these statuses (repeat it, or comma-separated).", {"type": "string"}),
                    _query("kind", "Only this import kind.", {"type": "string"}),
                    _query("dataset", "Only jobs importing into this dataset id.", {"type": "string"}),
                    _query("schedule", "Only jobs requested by this schedule.", {"type": "string"}),
                    _query("created_after", "Created strictly after (ISO-8601).", {"type": "string"}),
                    _query("created_before", "Created strictly before (ISO-8601).", {"type": "string"}),
                    _query("limit", "Jobs per page.", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
                    _query("cursor", "The `next_cursor` of the previous page.", {"type": "string"}),
                ],
            )
        },
        "/jobs/{job_id}": {
            "get": _operation(
                "getJob",
                "One job with its history",
                "read",
                {"200": _json(_ref(JobDetailOut), "The job and its status changes, oldest first.")},
                (404,),
                parameters=[job_id],
            )
        },
        "/jobs/{job_id}/cancel": {
            "post": _operation(
                "cancelJob",
                "Stop tracking a job (CANCELLED_LOCALLY; a remote import that started keeps running)",
                "write",
                {"200": _json(_ref(JobOut), "The cancelled job.")},
                (404, 409),
                parameters=[job_id],
            )
        },
        "/schedules": {
            "get": _operation(
                "listSchedules",
                "List schedules (as `dsimport schedules list --json`)",
                "read",
                {"200": _json(_ref(ScheduleList), "Every schedule not removed, by name.")},
            ),
            "post": _operation(
                "createSchedule",
                "Create a schedule (the keys of a schedules-file table, plus its name)",
                "write",
                {"201": _json(_ref(ScheduleOut), "The new schedule.")},
                (409, 413, 422),
                requestBody={"required": True, "content": {"application/json": {"schema": _ref(ScheduleCreate)}}},
            ),
        },
        "/schedules/{name}": {
            "delete": _operation(
                "deleteSchedule",
                "Remove a schedule, keeping its history (`?forget=true` deletes the history too)",
                "write",
                {"204": {"description": "Removed."}},
                (404, 409, 422),
                parameters=[name, _query("forget", "Delete its history and item list too.", {"type": "boolean"})],
            )
        },
        "/schedules/{name}/pause": {
            "post": _operation(
                "pauseSchedule", "Pause a schedule", "write", {"200": _json(_ref(ScheduleOut), "The schedule.")},
                (404,), parameters=[name],
            )
        },
        "/schedules/{name}/resume": {
            "post": _operation(
                "resumeSchedule", "Resume a schedule (missed fires are not caught up)", "write",
                {"200": _json(_ref(ScheduleOut), "The schedule.")}, (404,), parameters=[name],
            )
        },
        "/schedules/{name}/run-now": {
            "post": _operation(
                "runScheduleNow",
                "Fire a schedule now (a paused one too), through a worker",
                "write",
                {"202": _json(_ref(RunNowAnswer), "The fire was sent.")},
                (404, 409, 503),
                parameters=[name],
            )
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document (no token needed)",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "dsimport API", "version": "1", "description": _DESCRIPTION},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `dsimport tokens create`."}
            },
        },
    }


def _ref_name(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}
