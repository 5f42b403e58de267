"""Against a real socket on loopback: cut-off bodies, refused connections, timeouts, connection reuse, and
the real transport's logs."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api_client import (
    AsyncDatasetsClient,
    DatasetsClient,
    RetryPolicy,
    TransportError,
    UnexpectedResponseError,
)

from . import samples as s
from .harness import API_KEY

D = s.DATASET_ID
Behaviour = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    behaviour: Behaviour
    release: threading.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.behaviour(self)


def send_json(handler: BaseHTTPRequestHandler, body: Any, status: int = 200) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], _Server]]:
    servers: list[_Server] = []

    def start(behaviour: Behaviour) -> _Server:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.behaviour = behaviour
        server.release = threading.Event()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _run(mode: str, base_url: str, call: Callable[[Any], Any], **kwargs: Any) -> Any:
    if mode == "sync":
        with DatasetsClient(API_KEY, base_url=base_url, **kwargs) as client:
            return call(client)

    async def run() -> Any:
        async with AsyncDatasetsClient(API_KEY, base_url=base_url, **kwargs) as client:
            return await call(client)

    return asyncio.run(run())


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_a_body_cut_off_by_the_peer(serve: Callable[[Behaviour], _Server], mode: str) -> None:
    def cut(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "400")
        handler.end_headers()
        handler.wfile.write(b'{"id": "1713cde2-dea1')
        handler.close_connection = True

    base_url = serve(cut).url
    with pytest.raises(UnexpectedResponseError) as caught:
        _run(mode, base_url, lambda c: c.fetch_task(D, s.TASK_ID), retry=RetryPolicy.none())
    assert caught.value.reason == "incomplete_body"
    assert caught.value.status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_connection_never_reached_the_server(mode: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        _run(mode, f"http://127.0.0.1:{port}", lambda c: c.import_from_file(D, "file-abc"))
    assert caught.value.may_have_reached_server is False


@pytest.mark.parametrize("mode", MODES)
def test_a_read_timeout_may_have_reached_the_server(serve: Callable[[Behaviour], _Server], mode: str) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        assert isinstance(handler.server, _Server)
        handler.server.release.wait(5)

    base_url = serve(hang).url
    with pytest.raises(TransportError) as caught:
        _run(mode, base_url, lambda c: c.fetch_dataset(D), timeout_s=0.2, retry=RetryPolicy.none())
    assert caught.value.may_have_reached_server is True
    assert "ReadTimeout" in str(caught.value)


def test_async_client_reuses_connections_within_its_limit(serve: Callable[[Behaviour], _Server]) -> None:
    def ok(handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, s.task())

    server = serve(ok)

    async def many(client: AsyncDatasetsClient) -> list[Any]:
        first = [await client.fetch_task(D, s.TASK_ID) for _ in range(5)]
        rest = await asyncio.gather(*(client.fetch_task(D, s.TASK_ID) for _ in range(12)))
        return first + list(rest)

    tasks = _run("async", server.url, many, max_connections=3)
    assert len(tasks) == 17
    # Sequential calls share one kept-alive connection; concurrent ones never open more than the limit.
    assert 1 <= server.connections <= 3


def test_real_transport_logs_do_not_show_the_key(
    serve: Callable[[Behaviour], _Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def ok(handler: BaseHTTPRequestHandler) -> None:
        assert handler.headers["Authorization"] == f"Bearer {API_KEY}"
        send_json(handler, s.dataset())

    base_url = serve(ok).url
    _run("sync", base_url, lambda c: c.fetch_dataset(D))
    _run("async", base_url, lambda c: c.fetch_dataset(D))
    assert f"GET /v1/observability/datasets/{D} -> 200" in caplog.text
    assert API_KEY not in caplog.text
