"""When a failed call is tried again, and how long to wait first.

The policy is pure: it looks at the error, the number of attempts made and the time spent, and answers with a
delay or "give up". The clients do the sleeping (with a sleep function that tests replace), so the same policy
drives the sync and the async client.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from .errors import ApiError, TransportError, UnexpectedResponseError

__all__ = ["RetryPolicy", "parse_retry_after"]

Jitter = Literal["full", "equal"]

# Larger exponents only overflow: the cap is reached long before.
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a number of attempts and a total time.

    - ``max_attempts`` counts the first try: 4 means one call and up to three retries.
    - The n-th retry waits a random time in ``[0, cap]`` (``jitter="full"``) or ``[cap/2, cap]``
      (``jitter="equal"``), where ``cap = min(max_backoff_s, initial_backoff_s * multiplier ** (n - 1))``.
    - A ``Retry-After`` header (seconds or HTTP-date) replaces the computed wait.
    - Every wait is capped by ``max_backoff_s`` and by what is left of ``max_elapsed_s`` (counted from the start of
      the first attempt); once that budget is spent, the last error is raised.
    - Answers with a status in ``retry_statuses`` are retried; so are transport failures (no answer, or an answer
      cut off mid-body) when ``retry_transport_errors`` is set. Anything else is raised at once.

    Requests that start or create something on the server (the five imports, ``upload_file``,
    ``create_dataset``, ``create_record``, and ``judge_record``, which runs a model each time) are **not** retried
    unless ``retry_imports`` is set. The API has no
    idempotency key: a POST whose answer was lost (a timeout, a 502 from a proxy, a reset) may already have
    started a remote import, and sending it again would start a second one that copies the same records twice.
    The caller, which keeps a ledger, is the one that can check for such a task before trying again.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    multiplier: float = 2.0
    max_elapsed_s: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_transport_errors: bool = True
    retry_imports: bool = False
    jitter: Jitter = "full"
    # Returns a float in [0, 1); replace it to make the jitter deterministic.
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.max_elapsed_s < 0:
            raise ValueError("backoff and elapsed times must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.jitter not in ("full", "equal"):
            raise ValueError("jitter must be 'full' or 'equal'")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries: every call is a single attempt."""
        return cls(max_attempts=1)

    def backoff_s(self, retry_number: int) -> float:
        """The jittered wait before retry number ``retry_number`` (1 for the first retry)."""
        exponent = min(max(retry_number - 1, 0), _MAX_EXPONENT)
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**exponent)
        if self.jitter == "full":
            return cap * self.random()
        return cap / 2 + (cap / 2) * self.random()

    def is_retryable(self, error: ApiError, *, creates: bool) -> bool:
        """Whether ``error`` may be retried at all, ignoring attempts and time."""
        if creates and not self.retry_imports:
            return False
        if isinstance(error, TransportError):
            return self.retry_transport_errors
        if isinstance(error, UnexpectedResponseError):
            # A body cut off mid-way is a network failure, not a broken contract.
            return error.reason == "incomplete_body" and self.retry_transport_errors
        return error.status_code is not None and error.status_code in self.retry_statuses

    def next_delay_s(
        self, error: ApiError, *, creates: bool, attempts_made: int, elapsed_s: float
    ) -> float | None:
        """How long to wait before the next attempt, or None to give up and raise ``error``."""
        if not self.is_retryable(error, creates=creates) or attempts_made >= self.max_attempts:
            return None
        remaining_s = self.max_elapsed_s - elapsed_s
        if remaining_s <= 0:
            return None
        wanted_s = error.retry_after_s if error.retry_after_s is not None else self.backoff_s(attempts_made)
        return max(0.0, min(wanted_s, self.max_backoff_s, remaining_s))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
