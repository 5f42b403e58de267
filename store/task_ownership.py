"""Which remote tasks already belong to a job, asked about a bounded set instead of a dataset's whole history.

Recovery adopts a remote task only when no job owns it. Reading every task id a dataset ever had grows without
end (a busy dataset gathers millions); what recovery needs is bounded by what it is looking at:

- :func:`owned_task_ids`: which of the given task ids (the candidates a lookup found in its window) are owned.
  Exact, and bounded by the number of candidates; it reads the unique index on ``remote_task_id``.
- :func:`task_ids_owned_between`: the task ids owned by jobs on a dataset whose submit began in a window. For a
  caller that wants the owned set before it lists the remote tasks; the window must cover every job whose task
  could have been created inside the lookup window (see the function).

Neither takes a lock: a task that becomes owned right after the read is refused at the write by the unique index
on ``remote_task_id``, exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import ImportJob

__all__ = ["owned_task_ids", "task_ids_owned_between"]

# Ids per IN (...) list: well under SQLite's and PostgreSQL's bind-parameter limits.
_CHUNK = 500


def owned_task_ids(session: Session, task_ids: Iterable[str]) -> set[str]:
    """The ids among ``task_ids`` that a job already owns."""
    wanted = list(dict.fromkeys(task_ids))
    owned: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = session.scalars(select(ImportJob.remote_task_id).where(ImportJob.remote_task_id.in_(chunk)))
        owned.update(task_id for task_id in rows if task_id is not None)
    return owned


def task_ids_owned_between(session: Session, dataset_id: str, *, since: datetime, until: datetime) -> set[str]:
    """Task ids owned by jobs on ``dataset_id`` whose (last) submit began in ``[since, until]``.

    A job's task is created after its submit began and, the POST being bounded by the lease, within a lease of it;
    adoption may give a job a task created a little later still. So to know every owner of the tasks created in a
    lookup window ``[a, b]``, ask for ``since = a - lease - clock skew`` and ``until = b + clock skew``, widened by
    the longest adoption group when groups are chained. Reads the ``(dataset_id, submit_started_at)`` index.
    """
    rows = session.scalars(
        select(ImportJob.remote_task_id).where(
            ImportJob.dataset_id == dataset_id,
            ImportJob.submit_started_at >= since,
            ImportJob.submit_started_at <= until,
            ImportJob.remote_task_id.is_not(None),
        )
    )
    return {task_id for task_id in rows if task_id is not None}
