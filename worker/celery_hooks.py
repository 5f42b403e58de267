"""What the Celery app adds to Celery's own start-up: structured, redacted logs and the worker's metrics.

Celery sets up logging in the worker and in beat itself (``--loglevel``, its handlers); the signals below run right
after and give those handlers our formatter and redaction filter.
https://docs.celeryq.dev/en/stable/userguide/signals.html#logging-signals
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from jobs import metrics
from tasks.names import POLL_DUE
from worker import logging_setup
from worker.settings import Settings

__all__ = ["install"]


def install(settings: Settings) -> None:
    """Remember the log format and secrets, and where the metrics go (the broker's Redis)."""
    logging_setup.configure(settings)
    metrics.install(settings.broker_url)


def _structured_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None:
        logging_setup.install_on(logger)


def _structured_task_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None:
        logging_setup.install_on(logger)


def _beat_tick(sender: str | None = None, **_: Any) -> None:
    # Only beat sends the poll task, so its sending is beat's heartbeat (see `dsimport check beat`).
    if sender == POLL_DUE:
        metrics.record_beat_tick()


signals.after_setup_logger.connect(_structured_logs)
signals.after_setup_task_logger.connect(_structured_task_logs)
signals.after_task_publish.connect(_beat_tick)
