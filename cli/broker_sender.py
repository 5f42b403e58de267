"""The sender ``dsimport dashboard`` gives the HTTP API: the two task messages it sends, on the service's broker.

The jobs page must not load Celery itself (its import contract); the command that serves it builds this and hands
it over, as ``dsimport import`` sends with the same light app (``worker.celery_app.sender_app``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.names import FIRE_SCHEDULE, SUBMIT

if TYPE_CHECKING:
    from worker.settings import Settings

__all__ = ["BrokerSender"]


class BrokerSender:
    """Sends ``dsimport.submit`` and manual ``dsimport.fire_schedule`` messages; close it when the server stops."""

    def __init__(self, settings: Settings) -> None:
        from worker.celery_app import sender_app

        self._app = sender_app(settings)

    def submit(self, job_id: str) -> None:
        self._app.send_task(SUBMIT, args=[job_id])

    def fire_schedule(self, name: str, fire_time: str) -> None:
        self._app.send_task(FIRE_SCHEDULE, args=[name, fire_time, "manual"])

    def close(self) -> None:
        self._app.close()
