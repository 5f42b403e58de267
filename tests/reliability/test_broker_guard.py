"""The worker's consumer: a lost broker connection that cannot be closed cleanly is dropped, not fatal.

The failure itself (Celery closing a connection whose transport it has already detached) shows up in about one
Redis restart in four in test_redis_restart.py, which checks that the same worker goes on consuming; here, the parts.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from celery.worker.consumer import Consumer
from kombu.common import ignore_errors

from worker.broker_guard import GuardedConsumer, close_quietly
from worker.celery_app import create_app
from worker.settings import Settings


def test_the_worker_runs_the_guarded_consumer() -> None:
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"))
    try:
        assert app.conf.worker_consumer == "worker.broker_guard:GuardedConsumer"
        consumer_class = app.subclass_with_self(GuardedConsumer)
        assert issubclass(consumer_class, GuardedConsumer)
    finally:
        app.close()


def test_a_detached_transport_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def close() -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    with caplog.at_level(logging.WARNING, logger="worker.broker_guard"):
        close_quietly(close)()
    assert "could not be closed cleanly" in caplog.text and "hostname" in caplog.text


def test_other_failures_still_reach_celery() -> None:
    def close() -> None:
        raise ConnectionError("refused")

    # Celery's ignore_errors handles connection errors itself; anything else is not ours to hide.
    with pytest.raises(ConnectionError):
        close_quietly(close)()


def test_a_consumer_whose_lost_connection_fails_to_close_goes_on_to_reconnect(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    class Lost:
        def close(self) -> None:
            closed.append("tried")
            raise AttributeError("'NoneType' object has no attribute 'hostname'")

    def celery_handler(self: Any, exc: Exception) -> None:
        # What Celery 5.7 does with the lost connection: ignore_errors() lets only connection errors through.
        connection, self.connection = self.connection, None
        ignore_errors(connection, connection.close)

    monkeypatch.setattr(Consumer, "on_connection_error_after_connected", celery_handler)
    probe = GuardedConsumer.__new__(GuardedConsumer)
    probe.connection = Lost()
    with caplog.at_level(logging.WARNING):
        probe.on_connection_error_after_connected(ConnectionError("Connection closed by server."))
    # Tried once, the failure logged, the connection let go of: the consumer's loop goes on to reconnect.
    assert closed == ["tried"] and probe.connection is None
    assert "could not be closed cleanly" in caplog.text


def test_a_late_ack_through_a_detached_transport_is_logged_not_fatal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kombu.message import Message

    from worker.broker_guard import guard_late_acks

    monkeypatch.setattr(Message, "ack_log_error", Message.ack_log_error)  # undone after the test
    guard_late_acks()
    guard_late_acks()  # installing twice wraps once

    class DetachedChannel:
        def basic_ack(self, delivery_tag: object, multiple: bool = False) -> None:
            # What kombu's Redis channel raises when its transport went with the lost connection.
            raise AttributeError("'NoneType' object has no attribute 'hostname'")

    message = Message(channel=DetachedChannel(), delivery_tag="tag-1", body=b"{}")
    log = logging.getLogger("celery.worker.request")
    with caplog.at_level(logging.WARNING):
        message.ack_log_error(log, (ConnectionError,))
    assert "could not acknowledge 'tag-1' through a lost connection" in caplog.text

    class RefusingChannel:
        def basic_ack(self, delivery_tag: object, multiple: bool = False) -> None:
            raise ConnectionError("refused")

    # Connection errors are still kombu's to log, as before.
    Message(channel=RefusingChannel(), delivery_tag="tag-2", body=b"{}").ack_log_error(log, (ConnectionError,))
