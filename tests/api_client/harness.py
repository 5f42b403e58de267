"""A scripted server behind httpx.MockTransport, and one way to drive either client from a sync test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from api_client import AsyncDatasetsClient, DatasetsClient

API_KEY = "sk-test-DO-NOT-LEAK-1234"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def answer(status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON answer (or an empty one when ``body`` is None)."""
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def raw(status: int, content: bytes, content_type: str | None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.Response(status, content=content, headers=headers)


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that stops half-way, as when the peer closes the connection early."""

    _PART = b'{"id": "1713cde2", "created_'

    def __iter__(self) -> Iterator[bytes]:
        yield self._PART
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._PART
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def cut_off() -> Callable[[httpx.Request], httpx.Response]:
    """A 200 JSON answer whose body is cut off mid-way (a fresh stream for each request)."""
    return lambda request: httpx.Response(200, headers={"content-type": "application/json"}, stream=_CutStream())


class Wire:
    """Answers requests in order (the last answer repeats) and records every request."""

    def __init__(self, *answers: Answer) -> None:
        if not answers:
            raise ValueError("a Wire needs at least one answer")
        self._answers = list(answers)
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        current = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(current, Exception):
            raise current
        if isinstance(current, httpx.Response):
            # A response object is used once by a client; hand out a copy so an answer can repeat.
            return httpx.Response(current.status_code, headers=current.headers, content=current.content)
        return current(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def json_body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class FakeTime:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Harness:
    """Runs a client method against a Wire, with the sync or the async client."""

    def __init__(self, mode: str, wire: Wire, time: FakeTime, client_kwargs: dict[str, Any]) -> None:
        self.mode = mode
        self.wire = wire
        self.time = time
        self.client_kwargs = client_kwargs

    def sync_client(self) -> DatasetsClient:
        return DatasetsClient(
            self.client_kwargs.get("api_key", API_KEY),
            transport=httpx.MockTransport(self.wire.handle),
            sleep=self.time.sleep,
            clock=self.time.clock,
            **{k: v for k, v in self.client_kwargs.items() if k != "api_key"},
        )

    def async_client(self) -> AsyncDatasetsClient:
        return AsyncDatasetsClient(
            self.client_kwargs.get("api_key", API_KEY),
            transport=httpx.MockTransport(self.wire.handle),
            sleep=self.time.asleep,
            clock=self.time.clock,
            **{k: v for k, v in self.client_kwargs.items() if k != "api_key"},
        )

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            with self.sync_client() as client:
                return getattr(client, method)(*args, **kwargs)

        async def run() -> Any:
            async with self.async_client() as client:
                return await getattr(client, method)(*args, **kwargs)

        return asyncio.run(run())

    def collect(self, method: str, /, *args: Any, **kwargs: Any) -> list[Any]:
        if self.mode == "sync":
            with self.sync_client() as client:
                return list(getattr(client, method)(*args, **kwargs))

        async def run() -> list[Any]:
            async with self.async_client() as client:
                return [item async for item in getattr(client, method)(*args, **kwargs)]

        return asyncio.run(run())


MakeHarness = Callable[..., Harness]
