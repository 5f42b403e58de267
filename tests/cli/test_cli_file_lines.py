"""`dsimport import file --path`: the lines of the file are the API's business, uploaded exactly as written.

In 3.x a record's payload is any JSON object (a record made from a span carries no ``messages``): nothing on this
side may refuse or reshape such lines. Only an empty file is refused before the upload (tests/cli/
test_cli_errors.py). The Files API is an httpx.MockTransport here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import cli.common
from api_client import DatasetsClient
from cli.common import upload_file

# One 2.5.0 conversation line, one free-form 3.x line, one line that is no object at all: the API decides.
LINES = (
    b'{"messages": [{"role": "user", "content": "hi"}]}\n'
    b'{"input": {"question": "2+2?"}, "output": "4", "attributes": {"gen_ai.request.model": "m"}}\n'
    b"[1, 2]\n"
)
UPLOADED = {
    "id": "file-abc",
    "object": "file",
    "bytes": len(LINES),
    "created_at": 1759870561,
    "filename": "spans.jsonl",
    "purpose": "batch",
    "sample_type": "batch_request",
    "source": "upload",
}


def test_any_lines_are_uploaded_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "spans.jsonl").write_bytes(LINES)
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=UPLOADED)

    def client(settings: Any) -> DatasetsClient:
        return DatasetsClient("sk-test", transport=httpx.MockTransport(handle))

    monkeypatch.setattr(cli.common, "api_client", client)
    assert upload_file(None, tmp_path / "spans.jsonl") == "file-abc"  # type: ignore[arg-type]

    [upload] = sent
    assert upload.url.path == "/v1/files"
    assert upload.content.count(LINES) == 1, "the file part holds the bytes as written"
