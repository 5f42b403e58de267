"""Record operations under ``/v1/observability/dataset-records`` (SDK ``datasets.records``; CONTRACT-3x.md §4).

A record is named by its id alone. Records of tasks that have ended are written first (settled), so a record an
import produced can be fetched as soon as its task is over, read or not.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import validation_error
from .judging import judge_record, parse_judge_definition
from .lifecycle import settle_all
from .models import Record
from .web import Operations, json_object, json_response, no_content, path_uuid, require_str_list
from .wire import record_json
from .world import World

__all__ = ["RECORDS", "record_routes"]

RECORDS = "/v1/observability/dataset-records"


def record_routes(world: World, ops: Operations) -> list[Route]:
    lock = world.lock

    def record_of(request: Request) -> Record:
        """The live record the path names; the caller holds the lock."""
        record_id = path_uuid(request, "dataset_record_id")
        settle_all(world, world.now())
        return world.live_record(record_id)

    async def fetch_record(request: Request) -> Response:
        with lock:
            return json_response(record_json(record_of(request)))

    async def delete_record(request: Request) -> Response:
        with lock:
            world.remove_records([record_of(request)])
        return no_content()

    async def bulk_delete_records(request: Request) -> Response:
        body = await json_object(request)
        record_ids = require_str_list(body, "dataset_record_ids", uuid_format=True)
        with lock:
            settle_all(world, world.now())
            # Ids that name no live record are passed over: a repeated request (an SDK retry) still succeeds.
            found = [world.records[i] for i in dict.fromkeys(record_ids) if i in world.records]
            live = [r for r in found if _dataset_is_live(world, r)]
            world.remove_records(live)
        return no_content()

    async def update_payload(request: Request) -> Response:
        body = await json_object(request)
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise validation_error("body.payload: Field required (an object)")
        with lock:
            record = record_of(request)
            record.payload = payload
            record.updated_at = world.now()
        return no_content()

    async def update_properties(request: Request) -> Response:
        body = await json_object(request)
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise validation_error("body.properties: Field required (an object)")
        with lock:
            record = record_of(request)
            # PUT replaces: keys left out are gone.
            record.properties = properties
            record.updated_at = world.now()
        return no_content()

    async def judge(request: Request) -> Response:
        body = await json_object(request)
        definition = parse_judge_definition(body)
        with lock:
            record = record_of(request)
            return json_response(judge_record(definition, record))

    def route(path: str, name: str, handler: Any, method: str) -> Route:
        return Route(RECORDS + path, ops.wrap(name, handler), methods=[method], name=name)

    # bulk-delete before /{id}: a POST to /bulk-delete must not be read as a record id.
    return [
        route("/bulk-delete", "bulk_delete_records", bulk_delete_records, "POST"),
        route("/{dataset_record_id}", "fetch_record", fetch_record, "GET"),
        route("/{dataset_record_id}", "delete_record", delete_record, "DELETE"),
        route("/{dataset_record_id}/payload", "update_record_payload", update_payload, "PUT"),
        route("/{dataset_record_id}/properties", "update_record_properties", update_properties, "PUT"),
        route("/{dataset_record_id}/live-judging", "judge_record", judge, "POST"),
    ]


def _dataset_is_live(world: World, record: Record) -> bool:
    dataset = world.datasets.get(record.dataset_id)
    return dataset is not None and dataset.deleted_at is None
