"""Running poll rounds from a Celery task: the event loop and API clients are kept between calls in a process.

Opening an API client costs tens of milliseconds (httpx builds a TLS context for each), and a new loop per tick
would also reconnect on every tick; ``bench/poll_path.py`` measured 408 job polls/s with a fresh loop per call and
1,099 with the kept one. One poll call runs on the kept loop at a time; a second thread that finds it busy runs on
a loop of its own.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from jobs.poll_round import Listings, PollClients, RoundReport, poll_round
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


async def _run_rounds(
    runtime: Runtime,
    clients: PollClients,
    *,
    owner: str,
    now: Callable[[], datetime],
    rng: random.Random,
    on_finished: Callable[[list[tuple[str, str]]], None] | None,
) -> RoundReport:
    total = RoundReport()
    started = time.monotonic()
    listings = Listings()
    while True:
        report = await poll_round(runtime, owner=owner, now=now, rng=rng, clients=clients, listings=listings)
        total.claimed += report.claimed
        total.api_calls += report.api_calls
        total.errors += report.errors
        total.released += report.released
        total.finished.extend(report.finished)
        if on_finished is not None and report.finished:
            on_finished(report.finished)
        full_batch = report.claimed >= runtime.tuning.poll_batch_size
        if not full_batch or time.monotonic() - started >= runtime.tuning.poll_round_budget_s:
            return total


class _PollLoop:
    """An event loop and API clients kept from one poll call to the next in this process.

    Opening an API client costs tens of milliseconds (httpx builds a TLS context for each), and a new loop would
    also reconnect (and re-handshake) on every tick. One poll call runs on the loop at a time; a second thread that
    finds it busy runs on a loop of its own, as before.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pid = os.getpid()
        self.busy = threading.Lock()
        self._runner = asyncio.Runner()
        self.clients = PollClients(runtime)
        self.closed = False

    def run(self, rounds: Callable[[PollClients], Coroutine[Any, Any, RoundReport]]) -> RoundReport:
        try:
            return self._runner.run(rounds(self.clients))
        except BaseException:
            # A time limit or a crash may leave requests half done on the loop: start afresh next time.
            self.close()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._runner.run(self._shutdown())
        except Exception as exc:  # closing must not hide what made us close
            log.debug("closing the poll loop: %s", exc)
        finally:
            self._runner.close()

    async def _shutdown(self) -> None:
        # Whatever an interrupted call left on the loop is cancelled before its clients close under it.
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.clients.aclose()


_loop_lock = threading.Lock()
_loop: _PollLoop | None = None


def _acquire_loop(runtime: Runtime) -> _PollLoop | None:
    """This process's loop for ``runtime``, locked for the caller; None when another thread is using it."""
    global _loop
    with _loop_lock:
        current = _loop
        if current is not None and current.pid != os.getpid():
            # Inherited through a fork: the parent's loop and sockets are not ours to use or close.
            current = _loop = None
        if current is not None and (current.closed or current.runtime is not runtime):
            if not current.busy.acquire(blocking=False):
                return None
            current.close()
            current.busy.release()
            current = _loop = None
        if current is None:
            current = _loop = _PollLoop(runtime)
        return current if current.busy.acquire(blocking=False) else None


@atexit.register
def close_poll_loop() -> None:
    """Close the kept loop and its connections (at exit; tests may call it too)."""
    global _loop
    with _loop_lock:
        current, _loop = _loop, None
    if current is not None and current.pid == os.getpid():
        current.close()


def run_poll_rounds(
    runtime: Runtime,
    *,
    owner: str,
    now: Callable[[], datetime],
    rng: random.Random | None = None,
    on_finished: Callable[[list[tuple[str, str]]], None] | None = None,
) -> RoundReport:
    """Run rounds while full batches keep coming, within the round budget; returns the totals."""
    rng = rng or random.Random()

    def rounds(clients: PollClients) -> Coroutine[Any, Any, RoundReport]:
        return _run_rounds(runtime, clients, owner=owner, now=now, rng=rng, on_finished=on_finished)

    loop = _acquire_loop(runtime)
    if loop is None:
        return asyncio.run(_run_in_fresh_loop(runtime, rounds))
    try:
        return loop.run(rounds)
    finally:
        loop.busy.release()


async def _run_in_fresh_loop(
    runtime: Runtime, rounds: Callable[[PollClients], Coroutine[Any, Any, RoundReport]]
) -> RoundReport:
    clients = PollClients(runtime)
    try:
        return await rounds(clients)
    finally:
        await clients.aclose()
