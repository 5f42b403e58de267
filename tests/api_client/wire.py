"""What a request looks like on the wire, for comparing this client's requests with the official SDK's."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from api_client import DatasetsClient

from .harness import Wire, answer

KEY = "sk-test"
# A path prefix too: the SDK keeps it, and so must we.
SERVER_URL = "http://127.0.0.1:9/prefix"

WireView = tuple[str, str, str | None, bytes, str, str]


def wire_view(request: httpx.Request) -> WireView:
    """What must match: method, target, content type, body, auth and accept headers (multipart boundary masked)."""
    content_type = request.headers.get("content-type")
    body = request.content
    boundary = re.search(r"boundary=([\w-]+)", content_type or "")
    if boundary:
        body = body.replace(boundary.group(1).encode(), b"BOUNDARY")
        content_type = content_type.replace(boundary.group(1), "BOUNDARY") if content_type else None
    return (
        request.method,
        request.url.raw_path.decode(),
        content_type,
        body,
        request.headers.get("authorization", ""),
        request.headers.get("accept", ""),
    )


def our_request(call: Callable[[DatasetsClient], Any], status: int, reply: Any) -> httpx.Request:
    """The request ``call`` sends through our client, answered with ``status`` and ``reply``."""
    wire = Wire(answer(status, reply))
    with DatasetsClient(KEY, base_url=SERVER_URL, transport=httpx.MockTransport(wire.handle)) as client:
        call(client)
    return wire.last
