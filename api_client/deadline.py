"""An overall deadline on one blocking call, on top of httpx's per-phase timeouts.

httpx bounds each phase of a request (pool, connect, write, and every read of the body) by the client's timeout,
not the request as a whole: a server that trickles its answer, or one slow phase after another, keeps a call going
for several times the timeout. A caller that holds a lease while it waits needs a bound it can compare with the
lease, so the call runs in a thread of its own and the caller stops waiting at the deadline.

The abandoned call is not interrupted (a blocking socket cannot be, portably); it ends within httpx's timeouts,
and whatever it returns or raises then is handed to ``on_late`` (for a log line), never to the caller. For the
caller the outcome is a :class:`TransportError` that *may have reached the server*: the request was sent, or may
have been, and no answer came in time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from .errors import TransportError

__all__ = ["DeadlineExceededError", "call_with_deadline"]

T = TypeVar("T")


class DeadlineExceededError(TransportError):
    """Raised when a call gave no answer within its overall deadline (it may still have acted)."""


def call_with_deadline(
    call: Callable[[], T],
    *,
    deadline_s: float,
    operation: str,
    method: str = "POST",
    on_late: Callable[[T | BaseException], None] | None = None,
) -> T:
    """``call()``'s value, or its exception, if it ends within ``deadline_s``; else :class:`DeadlineExceededError`."""
    if not deadline_s > 0:
        raise ValueError(f"deadline_s must be positive, got {deadline_s!r}")
    done = threading.Event()
    lock = threading.Lock()
    outcome: list[T | BaseException] = []
    abandoned = False

    def run() -> None:
        nonlocal abandoned
        result: T | BaseException
        try:
            result = call()
        except BaseException as exc:  # handed over whole: the caller re-raises it unchanged
            result = exc
        with lock:
            outcome.append(result)
            late = abandoned
        done.set()
        if late and on_late is not None:
            on_late(result)

    # A daemon thread: a call stuck past the deadline must not keep the process alive at shutdown.
    threading.Thread(target=run, name=f"deadline:{operation}", daemon=True).start()
    finished = done.wait(deadline_s)
    with lock:
        if not finished and not outcome:
            abandoned = True
    if abandoned:
        raise DeadlineExceededError(
            f"{operation}: no answer within its deadline of {deadline_s:g} s",
            method=method,
            url=f"<{operation}>",
            may_have_reached_server=True,
        )
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
