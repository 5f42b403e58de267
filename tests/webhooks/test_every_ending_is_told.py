"""Every way a job ends (a poll's answer, a refusal, giving up, recovery, the deadline, a cancel) writes its webhook
delivery in the ending's own transaction, because every ending passes through the state machine; a move that is not
an ending writes none."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import ClientError, DatasetImportTask, NotFoundError, ServerError
from jobs import transitions
from jobs.poll_backoff import PollPolicy
from jobs.transitions import Observation, apply_observation, expire_if_past_deadline
from store.jobs import cancel_job
from store.models import ImportJob, JobStatus
from store.state_machine import apply_transition
from store.webhook_models import WebhookDelivery, WebhookFormat
from store.webhooks import add_webhook
from tests.webhooks.helpers import new_job

NOW = datetime.now(UTC)
POLICY = PollPolicy(initial_interval_s=1.0, multiplier=2.0, max_interval_s=8.0, jitter_ratio=0.0)


def _task(status: str) -> DatasetImportTask:
    return DatasetImportTask.model_validate(
        {
            "id": f"task-{random.random()}",
            "created_at": "2026-01-01T11:59:00Z",
            "updated_at": "2026-01-01T12:00:00Z",
            "deleted_at": None,
            "creator_id": "u",
            "dataset_id": "ds-1",
            "workspace_id": "w",
            "status": status,
            "progress": 100,
            "message": None,
        }
    )


def _observe(job: ImportJob, observation: Observation) -> None:
    apply_observation(job, observation, now=NOW, policy=POLICY, rng=random.Random(1), stuck_after_s=600)


def _past_deadline(job: ImportJob) -> None:
    job.deadline_at = NOW - timedelta(seconds=1)
    expire_if_past_deadline(job, now=NOW)


# (the status the job is in first, what ends it, the ending)
Ending = tuple[JobStatus, Callable[[Session, ImportJob], object], JobStatus | None]
ENDINGS: dict[str, Ending] = {
    "poll: completed": (
        JobStatus.RUNNING,
        lambda _s, job: _observe(job, Observation(task=_task("COMPLETED"))),
        JobStatus.COMPLETED,
    ),
    "poll: task gone": (
        JobStatus.RUNNING,
        lambda _s, job: _observe(job, Observation(error=NotFoundError("gone", status_code=404))),
        JobStatus.LOST,
    ),
    "poll: deadline": (JobStatus.RUNNING, lambda _s, job: _past_deadline(job), JobStatus.EXPIRED),
    "submit: accepted an ended task": (
        JobStatus.SUBMITTING,
        lambda _s, job: transitions.accepted(job, _task("FAILED"), now=NOW, policy=POLICY, message="accepted"),
        JobStatus.FAILED,
    ),
    "submit: refused": (
        JobStatus.SUBMITTING,
        lambda _s, job: transitions.refused(job, ClientError("bad", status_code=400, error_code="BAD"), now=NOW),
        JobStatus.REJECTED,
    ),
    "submit: gave up": (
        JobStatus.SUBMITTING,
        lambda _s, job: transitions.gave_up(job, ServerError("boom", status_code=503), now=NOW),
        JobStatus.FAILED,
    ),
    "recovery: too many interrupted submits": (
        JobStatus.SUBMITTING,
        lambda _s, job: transitions.not_found(job, now=NOW, max_attempts=-1),
        JobStatus.FAILED,
    ),
    "cancel": (
        JobStatus.RUNNING,
        lambda session, job: cancel_job(session, job.id, now=NOW),
        JobStatus.CANCELLED_LOCALLY,
    ),
    "not an ending: retry later": (
        JobStatus.SUBMITTING,
        lambda _s, job: transitions.retry_later(job, ServerError("busy", status_code=503), now=NOW),
        None,
    ),
}


@pytest.mark.parametrize("path", list(ENDINGS))
def test_each_ending_writes_its_delivery_in_its_transaction(path: str, session_factory: sessionmaker[Session]) -> None:
    start, end, ending = ENDINGS[path]
    with session_factory() as session:
        add_webhook(session, name="all", url="http://127.0.0.1:9/", secret="s" * 20, format=WebhookFormat.JSON, now=NOW)
        job = new_job(session, now=NOW)
        apply_transition(job, JobStatus.SUBMITTING, now=NOW)
        if start is JobStatus.RUNNING:
            apply_transition(job, JobStatus.RUNNING, now=NOW)
        session.commit()
        end(session, job)
        session.commit()
        assert job.status is (ending or JobStatus.PENDING)
        deliveries = session.scalars(select(WebhookDelivery)).all()
    if ending is None:
        assert deliveries == []
        return
    [delivery] = deliveries
    assert delivery.job_id == job.id and delivery.payload["job"]["status"] == str(ending)
