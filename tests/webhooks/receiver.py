"""A real HTTP receiver of webhooks on a loopback socket, answering by a script, recording what it was sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float = field(default_factory=time.time)
    delayed_s: float = 0.0


@dataclass(frozen=True)
class Reply:
    """What the receiver answers one request with: a status, after an optional pause (a pause past the sender's
    timeout plays a receiver that never answers)."""

    status: int = 200
    delay_s: float = 0.0


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Called with the request's number (from 0); the default answers 200 at once.
    plan: Callable[[int], Reply] = lambda _n: Reply()
    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0

    def wait_for(self, n: int, timeout_s: float) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received)} requests, not {n}, in {timeout_s} s")


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                number = state.count
                state.count += 1
            reply = state.plan(number)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            with state.lock:
                state.received.append(
                    Received(self.path, dict(self.headers.items()), body, reply.status, delayed_s=reply.delay_s)
                )
            try:
                self.send_response(reply.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
