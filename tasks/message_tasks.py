"""``dsimport.request_import``: the queue-message request for Python producers that already speak Celery.

It takes the same request as a stream message, as a plain dict, and goes through the same intake: a valid request
becomes a job keyed by its ``id`` (the same id sent on the stream and here is one import), an invalid one a dead
letter. Either way the result names what happened::

    app.send_task("dsimport.request_import", args=[{"id": "order-42", "kind": "file", "dataset_id": "…",
                                                    "file_id": "…"}])
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from jobs.runtime import get_runtime
from tasks.job_tasks import send_submit
from tasks.names import REQUEST_IMPORT
from triggers.messages.intake import TASK_SOURCE, Intake
from triggers.messages.message_model import DEFAULT_MAX_BYTES

__all__ = ["MAX_BYTES_CONF_KEY", "REQUEST_IMPORT", "request_import_task"]

MAX_BYTES_CONF_KEY = "dsimport_message_max_bytes"
"""The Celery configuration key the app sets from ``DSIMPORT_MESSAGE_MAX_BYTES``."""


@shared_task(name=REQUEST_IMPORT, bind=True, acks_late=True)
def request_import_task(self: Task, request: Any) -> dict[str, Any]:
    """Create the job for ``request`` (or find it); an invalid request is dead-lettered with its reason.

    Returns ``{"outcome": "created" | "duplicate" | "dead_lettered", "job_id": …, "dead_letter_id": …, …}``.
    """
    runtime = get_runtime()
    intake = Intake(
        session_factory=runtime.session_factory,
        send=send_submit,
        deadline_s=runtime.tuning.job_deadline_s,
        max_bytes=int(self.app.conf.get(MAX_BYTES_CONF_KEY) or DEFAULT_MAX_BYTES),
    )
    # The task id makes a redelivered task's dead letter a no-op, as the entry id does on the stream.
    result = intake.accept_payload(request, source=TASK_SOURCE, entry_id=self.request.id)
    return result.as_dict()
