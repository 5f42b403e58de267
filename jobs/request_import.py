"""Turning a request for an import into a job row and a submit message.

Every trigger (the command line, a beat schedule, a queue message) goes through :func:`request_import`: the row is
committed first, keyed by the request's idempotency key, and only then is the submit message sent. A duplicate
request finds the existing row and starts nothing new. If sending fails after the commit, the job stays PENDING
and the recovery sweep sends it again: a request is never lost between the two steps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from import_kinds import BodyError, spec_of
from store.jobs import create_job
from store.models import ImportKind, JobStatus

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_CHARS = 255
"""The ledger's ``import_jobs.idempotency_key`` column width."""


class InvalidImportRequest(ValueError):
    """Raised when a request cannot describe an import (wrong kind, missing or empty source)."""


@dataclass(frozen=True)
class ImportRequested:
    job_id: str
    created: bool
    status: str


def validate_params(kind: ImportKind, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as the ledger stores it, if it holds exactly the body fields of ``kind`` (its entry in
    :mod:`import_kinds`), each of the right shape and non-empty."""
    try:
        spec = spec_of(kind)
    except ValueError:
        raise InvalidImportRequest(f"unknown import kind {kind!r}") from None
    try:
        return spec.check(params)
    except BodyError as exc:
        raise InvalidImportRequest(str(exc)) from None


def check_idempotency_key(key: str) -> str:
    """``key`` if the ledger can hold it, else :class:`InvalidImportRequest`."""
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        # The column holds 255 characters: PostgreSQL refuses more, SQLite would keep them silently.
        raise InvalidImportRequest(
            f"the idempotency key is {len(key)} characters long, the limit is {MAX_IDEMPOTENCY_KEY_CHARS}"
        )
    return key


def request_import(
    session_factory: sessionmaker[Session],
    *,
    kind: ImportKind,
    dataset_id: str,
    params: Mapping[str, Any],
    origin: str,
    now: datetime,
    deadline_s: float,
    send: Callable[[str], None],
    idempotency_key: str | None = None,
) -> ImportRequested:
    """Write (or find) the job for this request, then ask a worker to submit it."""
    clean = validate_params(kind, params)
    key = check_idempotency_key(idempotency_key or f"{origin}:{uuid.uuid4()}")
    with session_factory() as session:
        job, created = create_job(
            session,
            kind=kind,
            dataset_id=dataset_id,
            params=clean,
            idempotency_key=key,
            origin=origin,
            deadline_at=now + timedelta(seconds=deadline_s),
            now=now,
        )
        job_id, status = job.id, str(job.status)
        session.commit()
    if created or status == JobStatus.PENDING:
        try:
            send(job_id)
        except Exception as exc:  # the broker may be down: the sweep re-sends PENDING jobs
            log.warning(
                "job %s written but not sent (%s); recovery will send it",
                job_id,
                exc,
                extra={"job_id": job_id},
            )
    return ImportRequested(job_id=job_id, created=created, status=status)
