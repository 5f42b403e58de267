"""A small in-memory cache whose entries live ``ttl_s`` seconds: what the jobs page computes once for many reloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

V = TypeVar("V")


class TtlCache(Generic[V]):
    """``get(key, compute)`` answers from the cache while the entry is younger than ``ttl_s``, else computes it.

    Only a value that took at least ``min_cost_s`` to compute is kept: what is cheap is computed afresh each time,
    so it is never stale for nothing. Two requests that miss at once both compute (no lock is held while computing):
    a reload costs at most what it cost without the cache. At most ``max_entries`` are kept; the oldest goes first.
    """

    def __init__(
        self,
        ttl_s: float,
        *,
        min_cost_s: float = 0.0,
        max_entries: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._min_cost_s = min_cost_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl_s:
            return entry[1]
        value = compute()
        if self._clock() - now < self._min_cost_s:
            return value
        with self._lock:
            self._entries[key] = (now, value)
            while len(self._entries) > self._max_entries:
                del self._entries[min(self._entries, key=lambda k: self._entries[k][0])]
        return value
