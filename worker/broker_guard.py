"""A worker consumer that survives the loss of its Redis connection.

After a lost connection Celery (5.7) first collects the broken connection, which detaches its transport, then closes
it. When a channel was left half closed by the first step (its fanout queue could not be deleted while Redis was
down) the second step closes it again, and kombu's Redis channel, restoring the unacknowledged messages of
``acks_late`` tasks, asks the detached transport for its connection parameters: ``AttributeError: 'NoneType' object
has no attribute 'hostname'``. Celery only ignores connection errors there, so the worker stops with
"Unrecoverable error" instead of reconnecting. Seen in tests/reliability/test_redis_restart.py about once in eight
Redis restarts.

The consumer here closes the broken connection the same way, but treats that failure as what it is: a connection
that cannot be closed cleanly because it is already gone. The messages it could not put back stay in Redis's unacked
set and are re-delivered after the visibility timeout; meanwhile the ledger's recovery sweep re-sends their jobs.
https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-consumer
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer
from kombu.message import Message

__all__ = ["GuardedConsumer", "close_quietly", "guard_late_acks"]

log = logging.getLogger(__name__)


def close_quietly(close: Callable[[], Any]) -> Callable[[], None]:
    """``close``, with the detached-transport failure logged instead of raised."""

    def quiet() -> None:
        try:
            close()
        except AttributeError as exc:
            log.warning("the lost broker connection could not be closed cleanly (%s); dropped as it is", exc)

    return quiet


def guard_late_acks() -> None:
    """Make a late acknowledgement through a lost connection a logged failure, not the worker's end.

    The same detached transport has a second way in: a task received before Redis went down finishes in a pool
    child after the consumer has moved to a new connection, and its ``acks_late`` acknowledgement is sent through
    the old channel, whose transport is gone. kombu's ``ack_log_error`` logs connection errors and goes on, but the
    ``AttributeError`` escapes into the event loop and Celery stops the worker with "Unrecoverable error" (found by
    the fault campaign, tests/faultsim, seed 8: a Redis restart while a submit was finishing). The message stays in
    Redis's unacked set and is delivered again after the visibility timeout; the submit it carries finds its job
    no longer PENDING and does nothing.
    """
    original = Message.ack_log_error
    if getattr(original, "_guarded", False):
        return

    def ack_log_error(self: Message, logger: Any, errors: Any, multiple: bool = False) -> None:
        try:
            original(self, logger, errors, multiple=multiple)  # type: ignore[no-untyped-call]
        except AttributeError as exc:
            logger.warning("could not acknowledge %r through a lost connection (%s); it will be redelivered",
                           self.delivery_tag, exc)

    ack_log_error._guarded = True  # type: ignore[attr-defined]
    Message.ack_log_error = ack_log_error  # type: ignore[method-assign]


class GuardedConsumer(Consumer):  # type: ignore[misc]  # Celery ships no type hints
    """Celery's consumer, reconnecting even when closing the lost connection fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        guard_late_acks()
        super().__init__(*args, **kwargs)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # Celery calls connection.close once, right here; the instance attribute shadows it for that call only.
            connection.close = close_quietly(connection.close)
        super().on_connection_error_after_connected(exc)
