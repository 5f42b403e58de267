"""Emulator-only routes under ``/_emulator`` (no auth, not counted in stats).

- ``GET  /_emulator/health`` -> ``{"status": "ok", "now": ISO, "counts": {...}}``
- ``POST /_emulator/seed`` fixture (see `emulator.seed`) -> ``{"ids": {kind: [id, ...]}, "counts": {...}}``
- ``POST /_emulator/reset`` ``{"reseed"?: true}`` -> ``{"counts": {...}}``
- ``POST /_emulator/save`` ``{"path"?: str}`` -> ``{"saved": path}`` (400 without --state or path)
- ``GET|POST /_emulator/config`` partial knobs (see `emulator.config.Knobs`) -> all knobs
- ``POST /_emulator/clock`` ``{"advance_s"?: float, "frozen"?: bool}`` -> ``{"now", "now_ts", "frozen"}``
- ``DELETE /_emulator/tasks/{task_id}`` -> 204 (404 if unknown)
- ``POST /_emulator/tasks`` ``{"dataset_id", "count", "kind"?}`` -> ``{"ids": [...]}``: tasks of another user
  (``creator_id`` ``emulator-other-client``, nothing to import, not counted in ``tasks_created``), to crowd a
  dataset's task list
- ``GET /_emulator/task-origins`` -> ``{"tasks": {task_id: {"dataset_id", "kind", "origins": [...], "requested"}}}``:
  what each task imports (``event:<id>``, ``conversation:<id>``, ...), to tie a task to its request without the
  client's help, and how many items it was asked for: ``requested`` less the origins is what the API skipped when
  it planned the task (unavailable span references, campaign events deleted since their selection)
- ``GET /_emulator/inventory[?datasets=ID,ID]`` -> ``{"now", "records": {dataset_id: [{"id", "origin",
  "created_at"}]}, "events": {event_id: {"created_at", "extra_fields"}}}``: what the world holds (records of
  finished tasks written first), so a checker can count the records in a dataset by origin (an item imported twice
  is two records while ``dedupe_imports`` is off) and tell which events a time window and filter cover
- ``GET /_emulator/stats[?tasks=false]``, ``POST /_emulator/stats/reset``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .clock import EmulatorClock, iso
from .config import ConfigError
from .errors import DATASET_TASK_NOT_FOUND, ApiProblem, observability_error, validation_error
from .lifecycle import create_task, settle_all
from .runtime import Emulator
from .seed import SeedError, apply_seed
from .web import Handler, canonical_uuid, json_response, no_content
from .wire import dumps

__all__ = ["admin_routes"]

ADMIN = "/_emulator"
# The creator of tasks started through POST /_emulator/tasks: another user of the workspace.
FOREIGN_CREATOR_ID = "emulator-other-client"


async def _optional_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise validation_error("Request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise validation_error("Request body must be a JSON object")
    return body


def _guarded(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiProblem as problem:
            return json_response(problem.body, problem.status, problem.headers)

    return endpoint


def admin_routes(emulator: Emulator) -> list[Route]:
    world = emulator.world

    async def health(_: Request) -> Response:
        with world.lock:
            return json_response({"status": "ok", "now": iso(world.now()), "counts": world.counts()})

    async def seed(request: Request) -> Response:
        try:
            ids = apply_seed(world, await _optional_object(request))
        except SeedError as exc:
            raise validation_error(str(exc)) from exc
        with world.lock:
            return json_response({"ids": ids, "counts": world.counts()})

    async def reset(request: Request) -> Response:
        body = await _optional_object(request)
        emulator.reset(reseed=body.get("reseed", True) is not False)
        with world.lock:
            return json_response({"counts": world.counts()})

    async def save(request: Request) -> Response:
        body = await _optional_object(request)
        path = body.get("path")
        if path is not None and not isinstance(path, str):
            raise validation_error("body.path: Input should be a string")
        saved = emulator.save(Path(path) if path else None)
        if saved is None:
            raise observability_error(400, None, "No state file: start with --state FILE or pass a path")
        return json_response({"saved": str(saved)})

    async def get_config(_: Request) -> Response:
        with world.lock:
            return json_response(world.knobs.to_json())

    async def set_config(request: Request) -> Response:
        patch = await _optional_object(request)
        with world.lock:
            try:
                knobs = world.knobs.updated(patch)
            except ConfigError as exc:
                raise validation_error(str(exc)) from exc
            world.set_knobs(knobs)
            return json_response(knobs.to_json())

    async def clock(request: Request) -> Response:
        body = await _optional_object(request)
        source = emulator.clock
        if not isinstance(source, EmulatorClock):
            raise observability_error(400, None, "This emulator runs on a clock that cannot be moved")
        advance, frozen = body.get("advance_s"), body.get("frozen")
        if advance is not None and (isinstance(advance, bool) or not isinstance(advance, int | float)):
            raise validation_error("body.advance_s: Input should be a number")
        if frozen is not None and not isinstance(frozen, bool):
            raise validation_error("body.frozen: Input should be a boolean")
        if frozen is True:
            source.freeze()
        elif frozen is False:
            source.unfreeze()
        if advance is not None:
            source.advance(float(advance))
        now = source.now()
        return json_response({"now": iso(now), "now_ts": now, "frozen": source.frozen})

    async def delete_task(request: Request) -> Response:
        task_id = canonical_uuid(request.path_params["task_id"]) or request.path_params["task_id"]
        with world.lock:
            if not world.remove_task(task_id):
                raise observability_error(404, DATASET_TASK_NOT_FOUND, f"Task {task_id} not found")
        return no_content()

    async def add_foreign_tasks(request: Request) -> Response:
        body = await _optional_object(request)
        dataset_id, count, kind = body.get("dataset_id"), body.get("count"), body.get("kind", "explorer")
        if not isinstance(dataset_id, str):
            raise validation_error("body.dataset_id: Input should be a string")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise validation_error("body.count: Input should be an integer in 1..10000")
        if not isinstance(kind, str):
            raise validation_error("body.kind: Input should be a string")
        with world.lock:
            world.live_dataset(dataset_id)
            tasks = [create_task(world, dataset_id=dataset_id, kind=kind, plan=[], requested=0) for _ in range(count)]
            for task in tasks:
                task.creator_id = FOREIGN_CREATOR_ID  # before any read caches the task's body
        return json_response({"ids": [task.id for task in tasks]})

    async def task_origins(_: Request) -> Response:
        with world.lock:
            tasks = {
                task.id: {
                    "dataset_id": task.dataset_id,
                    "kind": task.kind,
                    "origins": list(task.origins),
                    "requested": task.requested,
                }
                for task in world.tasks.values()
            }
        return Response(dumps({"tasks": tasks}), media_type="application/json")

    async def inventory(request: Request) -> Response:
        wanted = request.query_params.get("datasets")
        chosen = {part for part in wanted.split(",") if part} if wanted else None
        with world.lock:
            now = world.now()
            settle_all(world, now)
            records = {
                dataset_id: [
                    {"id": record.id, "origin": record.origin, "created_at": iso(record.created_at)} for record in held
                ]
                for dataset_id, held in world.records_by_dataset.items()
                if (chosen is None or dataset_id in chosen)
                and (dataset := world.datasets.get(dataset_id)) is not None
                and dataset.deleted_at is None
            }
            events = {
                event.event_id: {"created_at": iso(event.created_ts), "extra_fields": event.data["extra_fields"]}
                for event in world.events.values()
            }
            body = {"now": iso(now), "records": records, "events": events}
        return Response(dumps(body), media_type="application/json")

    async def stats(request: Request) -> Response:
        include_tasks = request.query_params.get("tasks", "true").lower() not in ("0", "false", "no")
        snapshot = emulator.stats.snapshot(world, include_tasks=include_tasks)
        return Response(dumps(snapshot), media_type="application/json")

    async def reset_stats(_: Request) -> Response:
        emulator.stats.reset(world)
        return json_response({"reset": True})

    def route(path: str, handler: Handler, method: str, name: str) -> Route:
        return Route(ADMIN + path, _guarded(handler), methods=[method], name=f"admin_{name}")

    return [
        route("/health", health, "GET", "health"),
        route("/seed", seed, "POST", "seed"),
        route("/reset", reset, "POST", "reset"),
        route("/save", save, "POST", "save"),
        route("/config", get_config, "GET", "get_config"),
        route("/config", set_config, "POST", "set_config"),
        route("/clock", clock, "POST", "clock"),
        route("/tasks/{task_id}", delete_task, "DELETE", "delete_task"),
        route("/tasks", add_foreign_tasks, "POST", "add_foreign_tasks"),
        route("/task-origins", task_origins, "GET", "task_origins"),
        route("/inventory", inventory, "GET", "inventory"),
        route("/stats", stats, "GET", "stats"),
        route("/stats/reset", reset_stats, "POST", "reset_stats"),
    ]
