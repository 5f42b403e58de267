"""Injected latency and error answers, configured per route name through the knobs."""

from __future__ import annotations

from starlette.responses import Response

from .config import FaultRule
from .errors import UNKNOWN_ERROR
from .wire import dumps
from .world import World

__all__ = ["FaultInjector", "fault_response"]


class FaultInjector:
    """Reads the live knobs of a world; a rule for a route name wins over the ``*`` rule."""

    def __init__(self, world: World) -> None:
        self._world = world

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
