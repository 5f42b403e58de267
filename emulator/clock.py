"""The emulator's time source and its wire format for timestamps.

Task progress is computed from this clock when a task is read, so tests move time by hand
(`advance`, `freeze`) instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "EmulatorClock", "iso", "iso_or_none", "parse_iso"]

Clock = Callable[[], float]
"""Anything returning Unix seconds; `EmulatorClock` is the usual one."""


class EmulatorClock:
    """Wall clock plus an adjustable offset; can be frozen at one instant."""

    def __init__(
        self,
        *,
        start: float | None = None,
        frozen: bool = False,
        source: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._offset = 0.0 if start is None else start - source()
        self._frozen_at: float | None = None
        self._lock = threading.Lock()
        if frozen:
            self._frozen_at = source() if start is None else start

    def __call__(self) -> float:
        return self.now()

    def now(self) -> float:
        frozen_at = self._frozen_at
        if frozen_at is not None:
            return frozen_at
        return self._source() + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, with a negative value); returns the new time."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
            return self.now()

    def set(self, ts: float) -> None:
        """Jump to ``ts`` (Unix seconds); a frozen clock stays frozen there."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = ts
            else:
                self._offset = ts - self._source()

    def freeze(self) -> float:
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = self._source() + self._offset
            return self._frozen_at

    def unfreeze(self) -> float:
        """Let time flow again from the frozen instant (no jump)."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - self._source()
                self._frozen_at = None
            return self.now()


def iso(ts: float) -> str:
    """Unix seconds to the API's format, e.g. ``2025-10-07T20:56:01.974Z`` (UTC, milliseconds)."""
    whole = int(ts // 1)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def parse_iso(text: str) -> float:
    """ISO-8601 date-time to Unix seconds; a value without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
