"""The worker bootstep that runs the stream consumer (:mod:`triggers.messages.stream_consumer`) in a thread.

It lives on the worker's main process, never in the pool's children: one consumer per worker, whatever the
concurrency. It starts after the pool (so no child is forked with its connections) and stops before it, within one
blocking read. https://docs.celeryq.dev/en/stable/userguide/extending.html#worker
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import bootsteps, signals
from sqlalchemy import Engine

from store.db import make_session_factory
from tasks.names import SUBMIT, SUBMIT_BATCH
from triggers.messages.intake import Intake
from triggers.messages.stream_consumer import StreamConsumer
from worker.runtime_builder import ledger_engine
from worker.settings import Settings
from worker.stream_connection import stream_config, stream_redis

__all__ = ["StreamService", "make_stream_step"]

log = logging.getLogger(__name__)

_STOP_GRACE_S = 10.0


class StreamService:
    """The consumer thread and what it owns (a database engine of its own)."""

    def __init__(self, settings: Settings, *, consumer: str, send: Any, send_batch: Any = None) -> None:
        self.settings = settings
        self.engine: Engine = ledger_engine(settings)
        intake = Intake(
            session_factory=make_session_factory(self.engine),
            send=send,
            send_batch=send_batch,
            deadline_s=settings.job_deadline_s,
            max_bytes=settings.message_max_bytes,
        )
        self.consumer = StreamConsumer(
            lambda: stream_redis(settings), intake, stream_config(settings, consumer)
        )
        self.thread = threading.Thread(target=self.consumer.run, name="dsimport-stream-consumer", daemon=True)
        # A pool child forked later (one replaced after a crash) inherits the engine's sockets; it must leave
        # them to this process. https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
        signals.worker_process_init.connect(self._forget_engine_in_child, weak=False)

    def _forget_engine_in_child(self, **_: Any) -> None:
        self.engine.dispose(close=False)

    def start(self) -> None:
        log.info(
            "stream consumer %s reading %s (group %s)",
            self.consumer.config.consumer,
            self.consumer.config.stream,
            self.consumer.config.group,
        )
        self.thread.start()

    def stop(self) -> None:
        self.consumer.stop()
        if self.thread.is_alive():
            self.thread.join(self.settings.stream_block_s + _STOP_GRACE_S)
        if self.thread.is_alive():
            log.warning("stream consumer did not stop in time; its pending entries will be claimed by another")
        self.engine.dispose()

    terminate = stop


def make_stream_step(settings: Settings) -> type[bootsteps.StartStopStep]:
    """The bootstep class to add to ``app.steps["worker"]``, bound to ``settings``."""

    class StreamConsumerStep(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery ships no type hints
        name = "dsimport.StreamConsumer"
        requires = {"celery.worker.components:Pool"}

        def include_if(self, parent: Any) -> bool:
            return settings.stream_enabled

        def create(self, parent: Any) -> StreamService:
            def send(job_id: str) -> None:
                parent.app.send_task(SUBMIT, args=[job_id])

            def send_batch(job_ids: list[str]) -> None:
                # One message for a whole read of the stream: the submit task claims and POSTs them together.
                if len(job_ids) == 1:
                    send(job_ids[0])
                else:
                    parent.app.send_task(SUBMIT_BATCH, args=[job_ids])

            consumer = f"{parent.hostname}:{os.getpid()}"
            return StreamService(settings, consumer=consumer, send=send, send_batch=send_batch)

    return StreamConsumerStep
