"""How the service reaches its request stream: the consumer's configuration and the Redis client, from settings.

Kept apart from the bootstep so that the command line (``dsimport messages``) can use them without loading Celery.
"""

from __future__ import annotations

import redis

from triggers.messages.stream_consumer import StreamConfig
from worker.settings import Settings

__all__ = ["stream_config", "stream_redis"]


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
