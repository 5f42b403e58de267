"""Start-up settings and the run-time knobs (timing, failures, faults) of the emulator.

Knobs are changed at run time through ``POST /_emulator/config`` with a partial JSON object;
`Knobs.updated` validates it and returns a new value, so a bad request changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "KNOWN_STATUSES",
    "REMOVED_IMPORT_KINDS",
    "TERMINAL_STATUSES",
    "ConfigError",
    "EmulatorSettings",
    "FaultRule",
    "Knobs",
    "parse_duration",
]

# How a fault spoils an answer (see FaultRule).
FAULT_KINDS = ("status", "reset", "slow")
# Import kinds the 2.5.0 API had and today's (3.x) API no longer has.
REMOVED_IMPORT_KINDS = ("campaign", "explorer")
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"})
KNOWN_STATUSES = (
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELED",
    "TERMINATED",
    "CONTINUED_AS_NEW",
    "TIMED_OUT",
    "UNKNOWN",
)


class ConfigError(ValueError):
    """Raised when a knob value or a fault rule is invalid."""


@dataclass(slots=True)
class FaultRule:
    """An injected fault for one route name (or ``*`` for all routes).

    With ``next`` set, exactly the next N requests fail and the rule then removes itself;
    otherwise each request fails with probability ``rate``. ``phase="after"`` runs the real
    handler first (so an import task is created) and then spoils its answer, which imitates
    a response lost after the server committed.

    ``kind`` says how the answer is spoiled:

    - ``status`` (the default): an error answer with ``status`` (and ``Retry-After``, if set);
    - ``reset``: no answer at all, the connection is reset (TCP RST) as by a crashed proxy;
    - ``slow``: the real answer, ``delay_ms`` late (before or after the handler ran), for a
      client timeout. A server does not notice a client that gave up: the handler still runs.
    """

    status: int
    rate: float = 1.0
    next: int | None = None
    retry_after_s: float | None = None
    phase: str = "before"
    kind: str = "status"
    delay_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "rate": self.rate,
            "next": self.next,
            "retry_after_s": self.retry_after_s,
            "phase": self.phase,
        }
        # The other kinds' fields appear only for them, so a status rule reads as it always did.
        if self.kind != "status":
            data["kind"] = self.kind
        if self.delay_ms is not None:
            data["delay_ms"] = self.delay_ms
        return data

    @classmethod
    def from_json(cls, route: str, raw: object) -> FaultRule:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"faults.{route} must be an object or null")
        unknown = set(raw) - {"status", "rate", "next", "retry_after_s", "phase", "kind", "delay_ms"}
        if unknown:
            raise ConfigError(f"faults.{route}: unknown keys {sorted(unknown)}")
        status = raw.get("status", 503)
        if not _is_int(status) or not 400 <= status <= 599:
            raise ConfigError(f"faults.{route}.status must be an integer in 400..599")
        rate = _number(raw.get("rate", 1.0), f"faults.{route}.rate")
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"faults.{route}.rate must be within 0..1")
        nxt = raw.get("next")
        if nxt is not None and (not _is_int(nxt) or nxt < 0):
            raise ConfigError(f"faults.{route}.next must be a non-negative integer or null")
        retry_after = raw.get("retry_after_s")
        if retry_after is not None:
            retry_after = _number(retry_after, f"faults.{route}.retry_after_s")
            if retry_after < 0:
                raise ConfigError(f"faults.{route}.retry_after_s must be >= 0")
        phase = raw.get("phase", "before")
        if phase not in ("before", "after"):
            raise ConfigError(f"faults.{route}.phase must be 'before' or 'after'")
        kind = raw.get("kind", "status")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"faults.{route}.kind must be one of {', '.join(FAULT_KINDS)}")
        delay_ms = raw.get("delay_ms")
        if kind == "slow":
            if delay_ms is None:
                raise ConfigError(f"faults.{route}.delay_ms is required for a slow fault")
            delay_ms = _non_negative(delay_ms, f"faults.{route}.delay_ms")
        elif delay_ms is not None:
            raise ConfigError(f"faults.{route}.delay_ms applies to slow faults only")
        return cls(
            status=status,
            rate=rate,
            next=nxt,
            retry_after_s=retry_after,
            phase=phase,
            kind=kind,
            delay_ms=delay_ms,
        )


@dataclass(slots=True)
class Knobs:
    """Run-time behaviour; every field can be changed through ``POST /_emulator/config``."""

    # A task's duration is drawn uniformly from this range (equal bounds: fixed).
    task_duration_s: tuple[float, float] = (2.0, 2.0)
    # Probability that a task which would complete fails instead.
    failure_rate: float = 0.0
    # Statuses walked through, evenly spread over the duration, before the end status.
    status_sequence: tuple[str, ...] = ("RUNNING",)
    # Status reached at the end. A non-terminal value (e.g. UNKNOWN) means the task never ends.
    terminal_status: str = "COMPLETED"
    latency_ms: float = 0.0
    route_latency_ms: dict[str, float] = field(default_factory=dict)
    # When injected latency is spent: "after" the handler acted (a slow answer to a request the server already
    # carried out, the case that hurts a client without idempotency) or "before" it (a slow server that has not
    # started yet).
    latency_phase: str = "after"
    # Order of list_tasks pages: "newest" first (what the API does in practice) or "oldest" first (the contract
    # promises no order; clients must not rely on one).
    task_list_order: str = "newest"
    faults: dict[str, FaultRule] = field(default_factory=dict)
    # Skip records whose origin (event, conversation, span, file line, record) is already in the dataset. Off by
    # default: the API reference does not say that an import skips what the target already holds, so the emulator
    # assumes it does not, and a double import shows as doubled records instead of being hidden. On is the
    # emulator's inference, for tests that rely on it (they set it themselves).
    dedupe_imports: bool = False
    # How long a campaign created through the API stays RUNNING.
    campaign_duration_s: float = 5.0
    # The import routes of REMOVED_IMPORT_KINDS (from-campaign, from-explorer): "served" as the 2.5.0 API did, or
    # "gone" as today's API, which answers them like any route it does not have (404, error_code null).
    removed_import_routes: str = "served"
    random_seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        low, high = self.task_duration_s
        return {
            "task_duration_s": low if low == high else [low, high],
            "failure_rate": self.failure_rate,
            "status_sequence": list(self.status_sequence),
            "terminal_status": self.terminal_status,
            "latency_ms": self.latency_ms,
            "route_latency_ms": dict(self.route_latency_ms),
            "latency_phase": self.latency_phase,
            "task_list_order": self.task_list_order,
            "faults": {route: rule.to_json() for route, rule in self.faults.items()},
            "dedupe_imports": self.dedupe_imports,
            "campaign_duration_s": self.campaign_duration_s,
            "removed_import_routes": self.removed_import_routes,
            "random_seed": self.random_seed,
        }

    def copy(self) -> Knobs:
        return replace(
            self,
            route_latency_ms=dict(self.route_latency_ms),
            faults={route: replace(rule) for route, rule in self.faults.items()},
        )

    def updated(self, patch: Mapping[str, Any]) -> Knobs:
        """A copy with ``patch`` applied. ``faults`` and ``route_latency_ms`` merge per route
        (a null value removes that route; a null map clears all)."""
        new = self.copy()
        for key, value in patch.items():
            if key == "task_duration_s":
                new.task_duration_s = parse_duration(value)
            elif key == "failure_rate":
                rate = _number(value, key)
                if not 0.0 <= rate <= 1.0:
                    raise ConfigError("failure_rate must be within 0..1")
                new.failure_rate = rate
            elif key == "status_sequence":
                if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
                    raise ConfigError("status_sequence must be a non-empty list of status strings")
                new.status_sequence = tuple(value)
            elif key == "terminal_status":
                if not isinstance(value, str) or not value:
                    raise ConfigError("terminal_status must be a status string")
                new.terminal_status = value
            elif key == "latency_ms":
                new.latency_ms = _non_negative(value, key)
            elif key == "route_latency_ms":
                new.route_latency_ms = _merge_latency(new.route_latency_ms, value)
            elif key == "latency_phase":
                if value not in ("before", "after"):
                    raise ConfigError("latency_phase must be 'before' or 'after'")
                new.latency_phase = value
            elif key == "task_list_order":
                if value not in ("newest", "oldest"):
                    raise ConfigError("task_list_order must be 'newest' or 'oldest'")
                new.task_list_order = value
            elif key == "faults":
                new.faults = _merge_faults(new.faults, value)
            elif key == "dedupe_imports":
                if not isinstance(value, bool):
                    raise ConfigError("dedupe_imports must be a boolean")
                new.dedupe_imports = value
            elif key == "campaign_duration_s":
                new.campaign_duration_s = _non_negative(value, key)
            elif key == "removed_import_routes":
                if value not in ("served", "gone"):
                    raise ConfigError("removed_import_routes must be 'served' or 'gone'")
                new.removed_import_routes = value
            elif key == "random_seed":
                if value is not None and not _is_int(value):
                    raise ConfigError("random_seed must be an integer or null")
                new.random_seed = value
            else:
                raise ConfigError(f"unknown knob {key!r}")
        return new


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """How the emulator starts: who may call it, what world it starts with, where it saves."""

    # None: any bearer token is accepted (a request without one still gets 401).
    api_key: str | None = field(default=None, repr=False)
    # "demo" (the fixture shipped in the package), a path to a fixture JSON file, or None.
    seed: str | None = None
    # Loaded at start when it exists (it wins over ``seed``), written on shutdown and on /_emulator/save.
    state_path: Path | None = None
    knobs: Knobs = field(default_factory=Knobs)


def parse_duration(value: object) -> tuple[float, float]:
    """``2``, ``"2"``, ``"1-5"`` or ``[1, 5]`` (seconds) to a (low, high) range."""
    if isinstance(value, str):
        text = value.strip()
        low_text, sep, high_text = text.partition("-")
        try:
            low = float(low_text)
            high = float(high_text) if sep else low
        except ValueError as exc:
            raise ConfigError(f"task duration {value!r} is not N or LOW-HIGH seconds") from exc
    elif isinstance(value, list | tuple) and len(value) == 2:
        low = _number(value[0], "task_duration_s")
        high = _number(value[1], "task_duration_s")
    else:
        low = high = _number(value, "task_duration_s")
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
        raise ConfigError(f"task duration {value!r} must satisfy 0 <= low <= high")
    return (low, high)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    return float(value)


def _non_negative(value: object, name: str) -> float:
    number = _number(value, name)
    if number < 0 or not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number >= 0")
    return number


def _merge_latency(current: dict[str, float], value: object) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("route_latency_ms must be an object of route name to milliseconds")
    merged = dict(current)
    for route, ms in value.items():
        if ms is None:
            merged.pop(route, None)
        else:
            merged[str(route)] = _non_negative(ms, f"route_latency_ms.{route}")
    return merged


def _merge_faults(current: dict[str, FaultRule], value: object) -> dict[str, FaultRule]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("faults must be an object of route name to fault rule")
    merged = dict(current)
    for route, raw in value.items():
        if raw is None:
            merged.pop(route, None)
        else:
            merged[str(route)] = FaultRule.from_json(str(route), raw)
    return merged
