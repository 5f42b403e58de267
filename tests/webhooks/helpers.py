"""Ending jobs in the ledger the way the service does (through the state machine), and checking signatures with
nothing of ours: the receiver's side, as the README shows it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.jobs import create_job
from store.models import ImportJob, ImportKind, JobStatus
from store.state_machine import apply_transition
from tests.webhooks.receiver import Received

_S = JobStatus
_PATHS: dict[JobStatus, list[JobStatus]] = {
    _S.RUNNING: [_S.SUBMITTING, _S.RUNNING],
    _S.REJECTED: [_S.SUBMITTING, _S.REJECTED],
    _S.EXPIRED: [_S.EXPIRED],
    _S.CANCELLED_LOCALLY: [_S.CANCELLED_LOCALLY],
}


def new_job(session: Session, *, now: datetime, kind: ImportKind = ImportKind.FILE, origin: str = "cli") -> ImportJob:
    job, _ = create_job(
        session,
        kind=kind,
        dataset_id="ds-1",
        params={},
        idempotency_key=str(uuid.uuid4()),
        origin=origin,
        deadline_at=None,
        now=now,
    )
    session.flush()
    return job


def end_job(job: ImportJob, status: JobStatus, *, now: datetime) -> None:
    """Walk ``job`` from PENDING to ``status`` (an ending, or RUNNING) by allowed moves; the caller commits."""
    for step in _PATHS.get(status, [_S.SUBMITTING, _S.RUNNING, status]):
        apply_transition(job, step, now=now)


def ended_job(
    session: Session,
    status: JobStatus = JobStatus.COMPLETED,
    *,
    now: datetime,
    kind: ImportKind = ImportKind.FILE,
    origin: str = "cli",
) -> str:
    job = new_job(session, now=now, kind=kind, origin=origin)
    end_job(job, status, now=now)
    return job.id


def signature_verifies(secret: str, request: Received, *, window_s: int = 300) -> bool:
    """The receiver's check, written from the README's description only."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    timestamp = headers.get("dsimport-webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > window_s:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("dsimport-webhook-signature", ""), "v1=" + expected)


def body_of(request: Received) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(request.body)
    return document
