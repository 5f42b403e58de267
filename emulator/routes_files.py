"""Files (CONTRACT.md §5.4): upload, fetch, delete, content; and the unauthenticated export
download that stands for a presigned URL."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import http_validation_error, plain_error
from .models import StoredFile
from .web import Operations, json_response, page_params
from .wire import file_json
from .world import World

__all__ = ["file_routes"]

FILES = "/v1/files"
# Large enough for test fixtures and benchmarks; the real limit is 512 MB.
MAX_PART_BYTES = 64 * 1024 * 1024


def file_routes(world: World, ops: Operations) -> list[Route]:
    lock = world.lock

    def find(request: Request) -> StoredFile:
        file_id = request.path_params["file_id"]
        stored = world.files.get(file_id)
        if stored is None:
            raise plain_error(404, f"File {file_id} not found")
        return stored

    async def upload_file(request: Request) -> Response:
        async with request.form(max_part_size=MAX_PART_BYTES) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise http_validation_error(["body", "file"], "Field required", "missing")
            content = await upload.read()
            purpose = form.get("purpose")
            visibility = form.get("visibility")
            expiry = form.get("expiry")
            filename = upload.filename or "upload"
            mimetype = upload.content_type
        purpose_text = purpose if isinstance(purpose, str) and purpose else "fine-tune"
        expires_hours: int | None = None
        if isinstance(expiry, str) and expiry:
            try:
                expires_hours = int(expiry)
            except ValueError:
                raise http_validation_error(["body", "expiry"], "Input should be a valid integer") from None
        with lock:
            now = int(world.now())
            stored = StoredFile(
                id=str(uuid.uuid4()),
                filename=filename,
                content=content,
                created_at=now,
                purpose=purpose_text,
                sample_type="batch_request" if purpose_text == "batch" else "instruct",
                mimetype=mimetype,
                visibility=visibility if isinstance(visibility, str) and visibility else "workspace",
                expires_at=None if expires_hours is None else now + expires_hours * 3600,
            )
            world.files[stored.id] = stored
            return json_response(file_json(stored))

    async def list_files(request: Request) -> Response:
        page, size = page_params(request, default_size=100, max_size=10_000, first_page=0, fastapi_style=True)
        with lock:
            items = sorted(reversed(world.files.values()), key=lambda f: f.created_at, reverse=True)
            data = [file_json(f) for f in items[page * size : (page + 1) * size]]
        return json_response({"data": data, "object": "list", "total": len(items)})

    async def fetch_file(request: Request) -> Response:
        with lock:
            return json_response(file_json(find(request), with_deleted=True))

    async def delete_file(request: Request) -> Response:
        with lock:
            stored = find(request)
            del world.files[stored.id]
        return json_response({"id": stored.id, "object": "file", "deleted": True})

    async def download_file(request: Request) -> Response:
        with lock:
            stored = find(request)
        return Response(stored.content, media_type="application/octet-stream")

    async def file_url(request: Request) -> Response:
        with lock:
            stored = find(request)
        base = str(request.base_url).rstrip("/")
        return json_response({"url": f"{base}/_emulator/exports/{stored.id}.jsonl"})

    async def download_export(request: Request) -> Response:
        file_id = str(request.path_params["file_id"])
        with lock:
            stored = world.files.get(file_id)
        if stored is None:
            return json_response({"detail": "Not Found"}, 404)
        return Response(stored.content, media_type="application/jsonl")

    def route(path: str, name: str, handler: Any, method: str, *, auth: bool = True) -> Route:
        return Route(path, ops.wrap(name, handler, auth=auth), methods=[method], name=name)

    return [
        route(FILES, "upload_file", upload_file, "POST"),
        route(FILES, "list_files", list_files, "GET"),
        route(FILES + "/{file_id}", "fetch_file", fetch_file, "GET"),
        route(FILES + "/{file_id}", "delete_file", delete_file, "DELETE"),
        route(FILES + "/{file_id}/content", "download_file", download_file, "GET"),
        route(FILES + "/{file_id}/url", "get_file_url", file_url, "GET"),
        route("/_emulator/exports/{file_id}.jsonl", "download_export", download_export, "GET", auth=False),
    ]
