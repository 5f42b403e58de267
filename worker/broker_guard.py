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

__all__ = ["GuardedConsumer", "close_quietly"]

log = logging.getLogger(__name__)


def close_quietly(close: Callable[[], Any]) -> Callable[[], None]:
    """``close``, with the detached-transport failure logged instead of raised."""

    def quiet() -> None:
        try:
            close()
        except AttributeError as exc:
            log.warning("the lost broker connection could not be closed cleanly (%s); dropped as it is", exc)

    return quiet


class GuardedConsumer(Consumer):  # type: ignore[misc]  # Celery ships no type hints
    """Celery's consumer, reconnecting even when closing the lost connection fails."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # Celery calls connection.close once, right here; the instance attribute shadows it for that call only.
            connection.close = close_quietly(connection.close)
        super().on_connection_error_after_connected(exc)
