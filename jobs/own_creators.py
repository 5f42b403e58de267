"""Who this service is to the API: the ``creator_id`` its remote import tasks carry.

A dataset is shared. Other users and other programs start imports on it too, so an unowned task in an interrupted
submit's window is not necessarily ours: adopting another user's import would record records we never asked for as
our job's outcome, and leave our own import, if it started, unowned. Tasks carry the id of the user who created them
(one per API key), which tells ours from theirs.

The ids are learned, never configured: from every task a submit started (:func:`remember`), and, in a process that
has started none yet (a worker restarted after a crash), from one task the ledger says is ours (:func:`learn`).
Several ids are kept: a key rotated to another user's key is still "us" for the tasks started under the old one.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import ApiError, DatasetsClient
from store.models import ImportJob

__all__ = ["known", "learn", "remember"]

log = logging.getLogger(__name__)

# Owned tasks tried when learning from the ledger: a deleted one answers 404, the next may not.
_LEARN_ATTEMPTS = 3

_lock = threading.Lock()
_known: set[str] = set()


def remember(creator_id: str) -> None:
    """Note the creator of a task this service started."""
    if creator_id:
        with _lock:
            _known.add(creator_id)


def known() -> frozenset[str]:
    """The creator ids seen so far in this process."""
    with _lock:
        return frozenset(_known)


def learn(session_factory: sessionmaker[Session], client: DatasetsClient) -> frozenset[str]:
    """The known creator ids; when none is known yet, fetch one of the ledger's own tasks to find out.

    Empty when the ledger holds no task of ours that the API still shows (a fresh installation): callers then
    cannot tell whose a task is.
    """
    if known():
        return known()
    with session_factory() as session:
        rows = session.execute(
            select(ImportJob.dataset_id, ImportJob.remote_task_id)
            .where(ImportJob.remote_task_id.is_not(None))
            .order_by(ImportJob.submitted_at.desc())
            .limit(_LEARN_ATTEMPTS)
        ).all()
    for dataset_id, task_id in rows:
        if task_id is None:
            continue
        try:
            remember(client.fetch_task(dataset_id, task_id).creator_id)
        except ApiError as exc:
            log.info("cannot read task %s to learn our creator id: %s", task_id, exc)
            continue
        break
    return known()
