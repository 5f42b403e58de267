"""What the API sends to the workers, given by whoever serves it: the jobs page itself never loads Celery."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ApiSender"]


class ApiSender(Protocol):
    """Sends the two messages the API needs at once; ``dsimport dashboard`` gives one built on the broker.

    Without one, a new import is still written (PENDING) and the recovery sweep sends it after
    ``DSIMPORT_STALE_PENDING_S``; a run-now cannot be done and is answered 503.
    """

    def submit(self, job_id: str) -> None:
        """Ask a worker to submit job ``job_id``."""

    def fire_schedule(self, name: str, fire_time: str) -> None:
        """Ask a worker to fire schedule ``name`` for ``fire_time`` (ISO-8601, whole seconds), as a manual fire."""
