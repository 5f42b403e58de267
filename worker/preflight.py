"""Start-up checks that turn a broken environment into one line that says what to fix."""

from __future__ import annotations

import redis

from worker.settings import mask_url


def check_broker(broker_url: str, *, timeout_s: float = 3.0) -> str | None:
    """None when the Redis broker answers a PING, else what is wrong with it."""
    try:
        client = redis.Redis.from_url(broker_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        return f"broker URL {mask_url(broker_url)} is not a valid Redis URL: {exc}"
    try:
        client.ping()
    except redis.exceptions.AuthenticationError:
        return f"broker {mask_url(broker_url)} refused the credentials: check DSIMPORT_BROKER_URL"
    except redis.exceptions.RedisError as exc:
        return (
            f"broker {mask_url(broker_url)} is not reachable ({exc}): start Redis or fix DSIMPORT_BROKER_URL"
        )
    finally:
        client.close()
    return None
