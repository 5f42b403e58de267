"""``dsimport.deliver_webhooks``: the periodic task beat sends every ``DSIMPORT_WEBHOOK_TICK_S`` to work through the
webhook outbox (see :mod:`notifications.deliver`).

Thin: its arguments are the delivery policy's plain numbers and the jobs page's address (no secret: each webhook's
secret is read from the ledger by the deliverer). Two runs at once (two beats, a slow tick) split the due
deliveries between them through the outbox's leases.
"""

from __future__ import annotations

from typing import Any

import httpx
from celery import shared_task

from jobs.runtime import get_runtime
from notifications.deliver import DeliveryPolicy, deliver_due
from tasks.job_tasks import utcnow, worker_identity
from tasks.names import DELIVER_WEBHOOKS

__all__ = ["DELIVER_WEBHOOKS", "deliver_webhooks"]


@shared_task(name=DELIVER_WEBHOOKS, ignore_result=True)
def deliver_webhooks(
    timeout_s: float = 5.0,
    max_attempts: int = 10,
    max_age_s: float = 86_400.0,
    backoff_s: float = 2.0,
    jobs_page_url: str = "",
) -> dict[str, Any]:
    policy = DeliveryPolicy(
        timeout_s=timeout_s,
        max_attempts=max_attempts,
        max_age_s=max_age_s,
        backoff_base_s=backoff_s,
        lease_s=max(60.0, timeout_s * 4),
        jobs_page_url=jobs_page_url or None,
    )
    with httpx.Client(follow_redirects=False) as http:
        report = deliver_due(get_runtime().session_factory, http, owner=worker_identity(), now=utcnow, policy=policy)
    return {
        "claimed": report.claimed,
        "delivered": report.delivered,
        "retrying": report.retrying,
        "failed": report.failed,
    }
