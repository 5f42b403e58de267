"""Turning a request for an import into a job row and a submit message.

Every trigger (the command line, a beat schedule, a queue message) goes through :func:`request_import`: the row is
committed first, keyed by the request's idempotency key, and only then is the submit message sent. A duplicate
request finds the existing row and starts nothing new. If sending fails after the commit, the job stays PENDING
and the recovery sweep sends it again: a request is never lost between the two steps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
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


@dataclass(frozen=True)
class ImportRequest:
    """One request for :func:`request_imports`: what to import, where it came from, and its idempotency key."""

    kind: ImportKind
    dataset_id: str
    params: Mapping[str, Any]
    origin: str
    idempotency_key: str | None = None
    skip_existing: bool = False
    """Leave out, before the POST, the items the target dataset already holds (:mod:`jobs.skip_existing`)."""


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
    skip_existing: bool = False,
) -> ImportRequested:
    """Write (or find) the job for this request, then ask a worker to submit it."""
    request = ImportRequest(kind, dataset_id, params, origin, idempotency_key, skip_existing)
    return request_imports(
        session_factory, [request], now=now, deadline_s=deadline_s, send=lambda job_ids: send(job_ids[0])
    )[0]


def request_imports(
    session_factory: sessionmaker[Session],
    requests: Sequence[ImportRequest],
    *,
    now: datetime,
    deadline_s: float,
    send: Callable[[list[str]], None],
) -> list[ImportRequested]:
    """Write (or find) the jobs of several requests in one transaction, then send the ones to submit at once.

    :raises InvalidImportRequest: a request is invalid; nothing is written (validate first to keep the others).
    """
    checked = [
        (
            request,
            validate_params(request.kind, request.params),
            check_idempotency_key(request.idempotency_key or f"{request.origin}:{uuid.uuid4()}"),
        )
        for request in requests
    ]
    results: list[ImportRequested] = []
    with session_factory() as session:
        for request, clean, key in checked:
            job, created = create_job(
                session,
                kind=request.kind,
                dataset_id=request.dataset_id,
                params=clean,
                idempotency_key=key,
                origin=request.origin,
                deadline_at=now + timedelta(seconds=deadline_s),
                now=now,
                skip_existing=request.skip_existing,
            )
            results.append(ImportRequested(job_id=job.id, created=created, status=str(job.status)))
        session.commit()
    # A job found PENDING was written by a request whose send may have failed: sending it again is harmless.
    to_send = list(dict.fromkeys(r.job_id for r in results if r.created or r.status == JobStatus.PENDING))
    if to_send:
        try:
            send(to_send)
        except Exception as exc:  # the broker may be down: the sweep re-sends PENDING jobs
            what = f"job {to_send[0]}" if len(to_send) == 1 else f"{len(to_send)} jobs ({', '.join(to_send)})"
            log.warning("%s written but not sent (%s); recovery will send it", what, exc, extra={"job_id": to_send[0]})
    return results
