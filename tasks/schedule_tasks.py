"""The Celery task beat sends when a schedule is due: ``dsimport.fire_schedule(name, fire_time, trigger)``.

Thin on purpose: it builds a :class:`~triggers.schedules.kinds.FireContext` from the runtime and calls
:func:`triggers.schedules.firing.fire`. Arguments are the schedule's name and the fire time as text, which is what
Flower shows for each fire. The only decision made here is to retry later when another task is carrying out the
same fire right now (its lease says when it may be presumed dead).
"""

from __future__ import annotations

import random
from typing import Any

from celery import Task, shared_task

from jobs.runtime import get_runtime
from tasks.job_tasks import send_submit, utcnow
from tasks.names import FIRE_SCHEDULE
from triggers.schedules.fire_times import parse_fire_time
from triggers.schedules.firing import FireContext, FireOutcome, fire, report_dict

__all__ = ["FIRE_SCHEDULE", "fire_schedule"]

# A fire left STARTED by a dead task is retried until its lease ends; a few tries cover a few leases.
_MAX_BUSY_RETRIES = 5


# Celery ships no type hints, so its decorator is untyped (tasks.job_tasks has a mypy override for the same reason).
@shared_task(
    name=FIRE_SCHEDULE, bind=True, acks_late=True, max_retries=_MAX_BUSY_RETRIES
)
def fire_schedule(self: Task, name: str, fire_time: str, trigger: str = "beat") -> dict[str, Any]:
    runtime = get_runtime()
    context = FireContext(
        session_factory=runtime.session_factory,
        client_factory=runtime.client_factory,
        send=send_submit,
        now=utcnow,
        lease_s=runtime.tuning.lease_s,
        deadline_s=runtime.tuning.job_deadline_s,
        settle_lag_s=runtime.tuning.schedule_settle_lag_s,
    )
    report = fire(context, name, parse_fire_time(fire_time), trigger=trigger)
    if report.outcome == FireOutcome.BUSY:
        raise self.retry(countdown=(report.retry_after_s or 1.0) * random.uniform(1.0, 1.2))
    return report_dict(report)
