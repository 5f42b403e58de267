"""Sampling a window schedule's items at a rate, the same way every time.

An item is kept when the first 64 bits of the SHA-256 of its item key (an event id; a span's
``trace_id:span_id``), read as a fraction of 2**64, fall below the rate. The hash is stable across processes and
Python versions (unlike ``hash()``), so a fire run again, a later fire that sees the same window and a backfill all
keep the same items, and lowering the rate only ever drops items a higher rate kept.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["InvalidSampleRate", "check_sample_rate", "keeps", "sample"]

_SCALE = 2**64


class InvalidSampleRate(ValueError):
    """Raised when a sample rate is not a number in (0, 1]."""


def check_sample_rate(value: Any) -> float | None:
    """The rate as a float, or None for "keep everything" (no rate, or 1). Refuses anything outside (0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidSampleRate(f"sample must be a number greater than 0 and at most 1, got {value!r}")
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise InvalidSampleRate(f"sample must be a number greater than 0 and at most 1, got {value!r}") from None
    if not math.isfinite(rate) or not 0 < rate <= 1:
        raise InvalidSampleRate(f"sample must be a number greater than 0 and at most 1, got {value!r}")
    return None if rate == 1 else rate


def keeps(item_key: str, rate: float | None) -> bool:
    """Whether an item of this key is in the sample at ``rate`` (None: every item is)."""
    if rate is None:
        return True
    return int(hashlib.sha256(item_key.encode("utf-8")).hexdigest()[:16], 16) / _SCALE < rate


def sample(keys: Sequence[str], rate: float | None) -> tuple[list[str], int]:
    """The keys kept at ``rate``, in their order, and how many were sampled out."""
    kept = [key for key in keys if keeps(key, rate)]
    return kept, len(keys) - len(kept)
