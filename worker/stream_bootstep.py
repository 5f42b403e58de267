"""The worker bootstep that runs the stream consumer (:mod:`tasks.stream_consumer`) in a thread.

It lives on the worker's main process, never in the pool's children: one consumer per worker, whatever the
concurrency. It starts after the pool (so no child is forked with its connections) and stops before it, within one
blocking read. https://docs.celeryq.dev/en/stable/userguide/extending.html#worker
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from celery import bootsteps, signals
from sqlalchemy import Engine

from store.db import make_engine, make_session_factory
from tasks.imports import SUBMIT
from tasks.message_intake import Intake
from tasks.stream_consumer import StreamConfig, StreamConsumer

from .settings import Settings

__all__ = ["StreamService", "make_stream_step", "stream_config", "stream_redis"]

log = logging.getLogger(__name__)

_STOP_GRACE_S = 10.0


def stream_config(settings: Settings, consumer: str) -> StreamConfig:
    return StreamConfig(
        stream=settings.stream_name,
        group=settings.stream_group,
        consumer=consumer,
        dead_letter_stream=settings.dead_letter_stream,
        dead_letter_maxlen=settings.dead_letter_stream_maxlen,
        batch_size=settings.stream_batch_size,
        block_ms=int(settings.stream_block_s * 1000),
        claim_min_idle_ms=int(settings.stream_claim_min_idle_s * 1000),
        claim_interval_s=settings.stream_claim_interval_s,
        trim_interval_s=settings.stream_trim_interval_s,
        backoff_max_s=settings.stream_backoff_max_s,
    )


def stream_redis(settings: Settings) -> redis.Redis:
    """A client for the stream's Redis; bytes in and out, since a body need not be UTF-8."""
    return redis.Redis.from_url(
        settings.resolved_stream_redis_url(),
        # Longer than a blocking read, so a quiet stream is not mistaken for a dead connection.
        socket_timeout=settings.stream_block_s + 10.0,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
        protocol=2,
    )


class StreamService:
    """The consumer thread and what it owns (a database engine of its own)."""

    def __init__(self, settings: Settings, *, consumer: str, send: Any) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url, **settings.engine_options())
        intake = Intake(
            session_factory=make_session_factory(self.engine),
            send=send,
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

            return StreamService(settings, consumer=f"{parent.hostname}:{os.getpid()}", send=send)

    return StreamConsumerStep
