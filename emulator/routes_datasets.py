"""The Datasets endpoints under ``/v1/observability/datasets`` (CONTRACT.md §2, CONTRACT-3x.md §2).

``{dataset_id}`` in a path is the dataset's id or, as in the 3.x API, its workspace-scoped slug (a UUID-shaped
value is always an id). Answers always carry the id.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .config import REMOVED_IMPORT_KINDS
from .errors import DATASET_TASK_NOT_FOUND, observability_error, route_not_found, validation_error
from .import_kinds import start_import
from .lifecycle import initial_view, observe, settle_dataset, view
from .models import Dataset, StoredFile
from .stats import Stats
from .web import (
    Operations,
    json_object,
    json_response,
    name_search_page,
    no_content,
    page_links,
    page_params,
    path_uuid,
    raw_json,
)
from .wire import dataset_json, dumps, page_json, record_json, task_body, task_page_body
from .world import World, new_id

__all__ = ["dataset_routes"]

PREFIX = "/v1/observability/datasets"
# What 3.x create_record accepts as ``source`` (CreateDatasetRecordRequestSource); the default is DIRECT_INPUT.
CREATE_SOURCES = ("DIRECT_INPUT", "TELEMETRY_SPAN")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# (path suffix, import kind), in the SDKs' order.
IMPORT_ROUTES = (
    ("campaign", "campaign"),
    ("explorer", "explorer"),
    ("file", "file"),
    ("playground", "playground"),
    ("dataset", "dataset"),
    ("spans", "spans"),
)


def dataset_routes(world: World, ops: Operations, stats: Stats) -> list[Route]:
    lock = world.lock

    def dataset_of(request: Request) -> Dataset:
        """The live dataset the path names (id or slug); the caller holds the lock."""
        return world.dataset_for_path(request.path_params["dataset_id"])

    async def fetch_task(request: Request) -> Response:
        task_id = path_uuid(request, "task_id")
        with lock:
            dataset_id = dataset_of(request).id
            task = world.tasks.get(task_id)
            if task is None or task.dataset_id != dataset_id:
                raise observability_error(404, DATASET_TASK_NOT_FOUND, f"Task {task_id} not found")
            task.fetch_count += 1
            body = task.body_cache
            if body is None:
                body = task_body(task, observe(world, task, world.now()))
                if task.settled:
                    task.body_cache = body
        return raw_json(body)

    async def list_tasks(request: Request) -> Response:
        page, size = page_params(request)
        with lock:
            dataset_id = dataset_of(request).id
            now = world.now()
            settle_dataset(world, dataset_id, now)
            tasks = world.tasks_by_dataset.get(dataset_id, [])
            count = len(tasks)
            if world.knobs.task_list_order == "oldest":
                chunk = tasks[(page - 1) * size : page * size]
            else:
                # Newest first, so a client looking for a task it may have created finds it on page 1.
                start, stop = count - (page - 1) * size, count - page * size
                chunk = tasks[max(stop, 0) : max(start, 0)][::-1]
            texts = [(task.body_cache or task_body(task, view(task, now))).decode() for task in chunk]
        next_url, previous_url = page_links(request, page, size, count)
        return raw_json(task_page_body(texts, count, next_url, previous_url))

    async def list_datasets(request: Request) -> Response:
        with lock:
            return name_search_page(request, world.datasets.values(), key="datasets", to_json=dataset_json)

    async def create_dataset(request: Request) -> Response:
        body = await json_object(request)
        name, description = body.get("name"), body.get("description")
        if not isinstance(name, str) or not name.strip():
            raise validation_error("body.name: Field required (a non-empty string)")
        if not isinstance(description, str):
            raise validation_error("body.description: Field required (a string)")
        with lock:
            dataset = world.add_dataset(name, description)
            return json_response(dataset_json(dataset), 201)

    async def fetch_dataset(request: Request) -> Response:
        with lock:
            return json_response(dataset_json(dataset_of(request)))

    async def update_dataset(request: Request) -> Response:
        body = await json_object(request)
        name, description = body.get("name"), body.get("description")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise validation_error("body.name: Input should be a non-empty string or null")
        if description is not None and not isinstance(description, str):
            raise validation_error("body.description: Input should be a string or null")
        with lock:
            dataset = dataset_of(request)
            # null means "leave unchanged": Dataset.description may never be null on the wire.
            changed = False
            if name is not None and name != dataset.name:
                dataset.name, changed = name, True
            if description is not None and description != dataset.description:
                dataset.description, changed = description, True
            if changed:
                dataset.updated_at = world.now()
            return json_response(dataset_json(dataset))

    async def delete_dataset(request: Request) -> Response:
        with lock:
            dataset = dataset_of(request)
            dataset.deleted_at = dataset.updated_at = world.now()
        return no_content()

    async def list_records(request: Request) -> Response:
        page, size = page_params(request)
        with lock:
            dataset_id = dataset_of(request).id
            settle_dataset(world, dataset_id, world.now())
            records = world.records_by_dataset.get(dataset_id, [])
            results = [record_json(r) for r in records[(page - 1) * size : page * size]]
            count = len(records)
        next_url, previous_url = page_links(request, page, size, count)
        return json_response({"records": page_json(results, count, next_url, previous_url)})

    async def create_record(request: Request) -> Response:
        body = await json_object(request)
        payload, properties, source = _record_fields(body)
        with lock:
            dataset_id = dataset_of(request).id
            record = world.add_record(dataset_id, payload, properties, source, None)
            return json_response(record_json(record), 201)

    def import_endpoint(kind: str) -> Any:
        async def import_records(request: Request) -> Response:
            body = await json_object(request)
            with lock:
                task = start_import(world, kind, request.path_params["dataset_id"], body)
                stats.count_task(task.dataset_id)
                return raw_json(task_body(task, initial_view(task)), 202)

        return import_records

    async def export_to_jsonl(request: Request) -> Response:
        with lock:
            dataset = dataset_of(request)
            dataset_id = dataset.id
            now = world.now()
            settle_dataset(world, dataset_id, now)
            lines = [
                dumps({"payload": r.payload, "properties": r.properties, "source": r.source})
                for r in world.records_by_dataset.get(dataset_id, [])
            ]
            exported = StoredFile(
                id=new_id(),
                filename=f"{dataset.slug}-export.jsonl",
                content=b"".join(line + b"\n" for line in lines),
                created_at=int(now),
                source="mistral",
                mimetype="application/jsonl",
            )
            world.files[exported.id] = exported
        base = str(request.base_url).rstrip("/")
        return json_response({"file_url": f"{base}/_emulator/exports/{exported.id}.jsonl"})

    def route(path: str, name: str, handler: Any, method: str) -> Route:
        return Route(PREFIX + path, ops.wrap(name, handler), methods=[method], name=name)

    def removable(endpoint: Any) -> Any:
        """A removed kind's route. With the ``removed_import_routes`` knob at "gone" it answers exactly as a path the
        API does not have, whatever the method (before authentication, counters and faults, which only a route the
        API has would apply); otherwise as any POST-only route."""

        async def maybe_gone(request: Request) -> Response:
            if world.knobs.removed_import_routes == "gone":
                problem = route_not_found(request.method, request.url.path)
                return json_response(problem.body, problem.status)
            if request.method != "POST":
                problem = observability_error(405, None, f"Method Not Allowed: {request.method} {request.url.path}")
                return json_response(problem.body, problem.status, {"Allow": "POST"})
            response: Response = await endpoint(request)
            return response

        return maybe_gone

    imports = [
        Route(
            f"{PREFIX}/{{dataset_id}}/imports/from-{suffix}",
            removable(ops.wrap(f"import_from_{kind}", import_endpoint(kind)))
            if kind in REMOVED_IMPORT_KINDS
            else ops.wrap(f"import_from_{kind}", import_endpoint(kind)),
            # A removed kind's route takes every method, to answer any of them as an unknown path when gone.
            methods=ALL_METHODS if kind in REMOVED_IMPORT_KINDS else ["POST"],
            name=f"import_from_{kind}",
        )
        for suffix, kind in IMPORT_ROUTES
    ]
    # fetch_task first: it is the hot path and routes are matched in order.
    return [
        route("/{dataset_id}/tasks/{task_id}", "fetch_task", fetch_task, "GET"),
        route("/{dataset_id}/tasks", "list_tasks", list_tasks, "GET"),
        route("", "list_datasets", list_datasets, "GET"),
        route("", "create_dataset", create_dataset, "POST"),
        route("/{dataset_id}", "fetch_dataset", fetch_dataset, "GET"),
        route("/{dataset_id}", "update_dataset", update_dataset, "PATCH"),
        route("/{dataset_id}", "delete_dataset", delete_dataset, "DELETE"),
        route("/{dataset_id}/records", "list_records", list_records, "GET"),
        route("/{dataset_id}/records", "create_record", create_record, "POST"),
        *imports,
        route("/{dataset_id}/exports/to-jsonl", "export_to_jsonl", export_to_jsonl, "GET"),
    ]


def _record_fields(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    # 3.x: the payload is any JSON object (the 2.5.0 {"messages": [...]} shape is one of them).
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise validation_error("body.payload: Field required (an object)")
    # Required in SDK 2.5.0, optional from 3.x: accept both.
    properties = body.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise validation_error("body.properties: Input should be an object")
    source = body.get("source")
    if source is None:
        source = "DIRECT_INPUT"
    if source not in CREATE_SOURCES:
        raise validation_error(f"body.source: Input should be 'DIRECT_INPUT' or 'TELEMETRY_SPAN', got {source!r}")
    return payload, properties, source
