"""The API client facing answers that break the contract, over a real loopback socket and a scripted transport.

tests/api_client already covers malformed JSON and wrong content types through ``httpx.MockTransport``
(test_responses) and a body cut off by the peer over a socket (test_loopback). Here the same answers, and the ones
only a socket can produce (a gzip body that is not gzip, broken chunked encoding, a status line that is not HTTP,
no answer at all) plus JSON nested thousands deep or holding a 5,000-digit integer, are written raw on a real socket
to both clients. Whatever comes back, the client raises its own error types: never a bare pydantic, JSON, httpx or
recursion error. A Hypothesis test then throws arbitrary bytes and arbitrary JSON at every operation.
"""

# The answers are a table: one per line reads better than lines folded at 120 characters.
# ruff: noqa: E501

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_client import (
    ApiError,
    AsyncDatasetsClient,
    DatasetsClient,
    NotFoundError,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
TASK = "1713cde2-dea1-410d-851e-8cea964ffa14"
KEY = "sk-badinput-client-key-0001"
FOREIGN = (pydantic.ValidationError, json.JSONDecodeError, httpx.HTTPError, RecursionError, TypeError, KeyError)


def _response(status: str, body: bytes, headers: dict[str, str] | None = None, *, length: bool = True) -> bytes:
    head = [f"HTTP/1.1 {status}"]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value}")
    if length:
        head.append(f"Content-Length: {len(body)}")
    head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b'{"id": ' + b"9" * 5000 + b"}"

# (name, raw bytes written on the socket, expected error class, expected reason for UnexpectedResponseError)
ANSWERS: list[tuple[str, bytes, type[ApiError], str | None]] = [
    ("malformed JSON", _response("200 OK", b'{"id": "1713cde2', JSON), UnexpectedResponseError, "json"),
    ("HTML with a JSON content type", _response("200 OK", b"<html>oops</html>", JSON), UnexpectedResponseError, "json"),
    ("JSON sent as text/html", _response("200 OK", b"{}", {"Content-Type": "text/html"}), UnexpectedResponseError, "content_type"),
    ("no content type", _response("200 OK", b"{}"), UnexpectedResponseError, "content_type"),
    ("JSON of the wrong shape", _response("200 OK", b'{"id": 3, "status": []}', JSON), UnexpectedResponseError, "model"),
    ("a JSON array", _response("200 OK", b"[1, 2]", JSON), UnexpectedResponseError, "model"),
    ("arrays nested 100,000 deep", _response("200 OK", DEEP, JSON), UnexpectedResponseError, "json"),
    ("an integer of 5,000 digits", _response("200 OK", HUGE_INT, JSON), UnexpectedResponseError, "json"),
    ("not UTF-8", _response("200 OK", b'{"id": "\xff\xfe"}', JSON), UnexpectedResponseError, "json"),
    ("a truncated body", _response("200 OK", b'{"id": "1713', JSON, length=False).replace(b"Connection", b"Content-Length: 4000\r\nConnection"), UnexpectedResponseError, "incomplete_body"),
    ("gzip that is not gzip", _response("200 OK", b"definitely not gzip", {**JSON, "Content-Encoding": "gzip"}), UnexpectedResponseError, "decoding"),
    ("broken chunked encoding", _response("200 OK", b"zz\r\n{}\r\n0\r\n\r\n", {**JSON, "Transfer-Encoding": "chunked"}, length=False), UnexpectedResponseError, None),
    ("a chunked body cut off", _response("200 OK", b"40\r\n{\"id\": ", {**JSON, "Transfer-Encoding": "chunked"}, length=False), UnexpectedResponseError, None),
    ("a status line that is not HTTP", b"SMTP ready\r\n\r\n", TransportError, None),
    ("no answer at all", b"", TransportError, None),
    ("a 500 nested 100,000 deep", _response("500 Internal Server Error", DEEP, JSON), ServerError, None),
    ("a 500 of malformed JSON", _response("500 Internal Server Error", b'{"detail": ', JSON), ServerError, None),
    ("a 404 in HTML", _response("404 Not Found", b"<h1>nope</h1>", {"Content-Type": "text/html"}), NotFoundError, None),
    ("a 422 whose detail has odd locations", _response("422 Unprocessable Entity", b'{"detail": [{"loc": 5, "msg": 1}, {"loc": null}]}', JSON), ValidationError, None),
    ("a 422 whose detail is a number", _response("422 Unprocessable Entity", b'{"detail": 12}', JSON), ValidationError, None),
    ("a 422 with an integer of 5,000 digits", _response("422 Unprocessable Entity", HUGE_INT, JSON), ValidationError, None),
    ("a 299 status", _response("299 Odd", b"{}", JSON), UnexpectedResponseError, "status"),
]


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    answer = b""


class _Handler(socketserver.BaseRequestHandler):
    server: _RawServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return
            received += chunk
        if self.server.answer:
            sock.sendall(self.server.answer)
        sock.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module")
def server() -> Iterator[_RawServer]:
    raw = _RawServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=raw.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield raw
    raw.shutdown()
    raw.server_close()


def _url(server: _RawServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _call_sync(base_url: str) -> Any:
    with DatasetsClient(KEY, base_url=base_url, retry=RetryPolicy.none(), timeout_s=5) as client:
        return client.fetch_task(DATASET, TASK)


def _call_async(base_url: str) -> Any:
    async def run() -> Any:
        async with AsyncDatasetsClient(KEY, base_url=base_url, retry=RetryPolicy.none(), timeout_s=5) as client:
            return await client.fetch_task(DATASET, TASK)

    return asyncio.run(run())


@pytest.mark.parametrize("call", [_call_sync, _call_async], ids=["sync", "async"])
@pytest.mark.parametrize(("name", "raw", "error", "reason"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_a_broken_answer_on_a_real_socket_raises_the_clients_own_error(
    server: _RawServer, call: Any, name: str, raw: bytes, error: type[ApiError], reason: str | None
) -> None:
    server.answer = raw
    with pytest.raises(ApiError) as caught:
        call(_url(server))
    assert type(caught.value) is error or isinstance(caught.value, error), f"{name}: {caught.value!r}"
    assert not isinstance(caught.value, FOREIGN)
    if reason is not None:
        assert isinstance(caught.value, UnexpectedResponseError) and caught.value.reason == reason
    text = str(caught.value)
    assert "\n" not in text and KEY not in text and KEY not in repr(caught.value)
    assert len(text) < 2000


# --- any bytes, any JSON: through every JSON operation -----------------------------------------------------------

OPERATIONS: list[tuple[str, tuple[Any, ...]]] = [
    ("fetch_task", (DATASET, TASK)),
    ("list_tasks", (DATASET,)),
    ("fetch_dataset", (DATASET,)),
    ("list_datasets", ()),
    ("list_records", (DATASET,)),
    ("import_from_campaign", (DATASET, TASK)),
    ("import_from_explorer", (DATASET, ["evt-1"])),
    ("export_to_jsonl", (DATASET,)),
    ("fetch_campaign", (TASK,)),
    ("fetch_event", ("evt-1",)),
    ("fetch_conversation", ("conv_1",)),
    ("search_event_ids", ({"field": "a", "op": "eq", "value": 1},)),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth),
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 404, 409, 422, 429, 500, 502, 503])
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "", "text/html"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.sampled_from(OPERATIONS), status=statuses, content_type=content_types, body=bodies)
def test_any_answer_is_a_value_or_an_api_error(
    operation: tuple[str, tuple[Any, ...]], status: int, content_type: str, body: bytes
) -> None:
    name, args = operation
    headers = {"content-type": content_type} if content_type else {}
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers))
    with DatasetsClient(KEY, transport=transport, retry=RetryPolicy.none()) as client:
        try:
            getattr(client, name)(*args)
        except ApiError as exc:
            assert not isinstance(exc, FOREIGN)
            assert "\n" not in str(exc)
