"""The periodic prune beat sends when ``DSIMPORT_PRUNE_OLDER_THAN_S`` is set: ``dsimport.prune(older_than_s)``.

Thin: it calls :func:`store.retention.prune` on the runtime's sessions. Each batch is its own short transaction
with a pause after it, so the workers' writes go on in between; one run stops after :data:`PRUNE_BUDGET_S` (well
under the task's soft time limit) and the next run carries on. Two runs at once (two beats) are harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import shared_task

from jobs.runtime import get_runtime
from store.retention import prune
from tasks.names import PRUNE

__all__ = ["PRUNE", "PRUNE_BUDGET_S", "prune_old_rows"]

log = logging.getLogger(__name__)

PRUNE_BUDGET_S = 60.0
# Long enough for a queued writer to take the lock between two batches.
_PAUSE_S = 0.05


@shared_task(name=PRUNE, ignore_result=True)
def prune_old_rows(older_than_s: float) -> dict[str, Any]:
    runtime = get_runtime()
    result = prune(
        runtime.session_factory,
        older_than_s=older_than_s,
        now=datetime.now(UTC),
        time_budget_s=PRUNE_BUDGET_S,
        pause_s=_PAUSE_S,
    )
    counts = result.counts.as_dict()
    if result.counts.total:
        log.info("pruned rows older than %.0f s: %s", older_than_s, counts)
    return {**counts, "complete": result.complete}
