"""Injected latency and error answers, configured per route name through the knobs.

A ``reset`` fault needs the server's help: an ASGI application cannot reach its request's socket. The server that
runs the app installs a :data:`ConnectionCloser` (``EmulatorServer`` and the command line install
:func:`uvicorn_closer`); without one, a reset fault answers with its status instead.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.responses import Response

from .config import FaultRule
from .errors import UNKNOWN_ERROR
from .wire import dumps
from .world import World

__all__ = ["ConnectionCloser", "FaultInjector", "fault_response", "reset_transport", "uvicorn_closer"]

ConnectionCloser = Callable[[tuple[str, int]], bool]
"""Resets the connection of the client at this address; False when no such connection is open."""


def reset_transport(transport: Any) -> None:
    """Drop a connection with a TCP RST: no answer, no orderly close, as a crashed proxy does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout zero: close() discards unsent data and sends RST instead of FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def uvicorn_closer(server: uvicorn.Server) -> ConnectionCloser:
    """A closer over ``server``'s open connections, matched by the client's address (the ASGI ``client``)."""

    def close(client: tuple[str, int]) -> bool:
        for connection in list(server.server_state.connections):
            if getattr(connection, "client", None) == client:
                reset_transport(connection.transport)
                return True
        return False

    return close


class FaultInjector:
    """Reads the live knobs of a world; a rule for a route name wins over the ``*`` rule."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.closer: ConnectionCloser | None = None

    def reset(self, client: Any) -> bool:
        """Reset the connection of ``client`` (the ASGI scope's ``client``); False when that cannot be done."""
        if self.closer is None or not isinstance(client, (tuple, list)) or len(client) != 2:
            return False
        return self.closer((str(client[0]), int(client[1])))

    def latency_after(self) -> bool:
        """True when injected latency is spent after the handler acted (the default)."""
        return self._world.knobs.latency_phase == "after"

    def latency_s(self, route: str) -> float:
        knobs = self._world.knobs
        total_ms = knobs.latency_ms
        if knobs.route_latency_ms:
            total_ms += knobs.route_latency_ms.get(route, 0.0)
        return total_ms / 1000.0

    def take(self, route: str) -> FaultRule | None:
        """The rule that fires for this request, if any (consumes one of a ``next`` budget)."""
        faults = self._world.knobs.faults
        if not faults:
            return None
        with self._world.lock:
            key = route if route in faults else "*"
            rule = faults.get(key)
            if rule is None:
                return None
            if rule.next is not None:
                if rule.next <= 0:
                    del faults[key]
                    return None
                rule.next -= 1
                if rule.next == 0:
                    del faults[key]
                return rule
            if rule.rate >= 1.0 or self._world.rng.random() < rule.rate:
                return rule
            return None


def fault_response(rule: FaultRule) -> Response:
    headers: dict[str, str] = {}
    if rule.retry_after_s is not None:
        seconds = rule.retry_after_s
        headers["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
    body = {"detail": {"message": f"Injected fault: HTTP {rule.status}", "error_code": UNKNOWN_ERROR}}
    return Response(dumps(body), status_code=rule.status, media_type="application/json", headers=headers)
