"""Submitting an import of a kind the API no longer has: the job ends REJECTED saying so, after one POST.

The API is an httpx.MockTransport here (the emulator's own missing-route answers are tested end to end in
tests/jobs); the ledger is real (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, RetryPolicy
from jobs.poll_backoff import PollPolicy
from jobs.submit import SubmitOutcome, submit_job
from jobs.transitions import IMPORT_KIND_NOT_OFFERED
from store.jobs import create_job, get_job
from store.models import ImportKind, JobStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
PARAMS: dict[ImportKind, dict[str, Any]] = {
    ImportKind.CAMPAIGN: {"campaign_id": "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"},
    ImportKind.EXPLORER: {"completion_event_ids": ["evt-1"]},
}
# What a FastAPI server answers for a path it does not route.
NO_ROUTE = httpx.Response(404, json={"detail": "Not Found"})


def submit(sessions: sessionmaker[Session], kind: ImportKind, answer: httpx.Response) -> tuple[Any, list[Any]]:
    with sessions() as session:
        job, _ = create_job(
            session,
            kind=kind,
            dataset_id=DATASET,
            params=PARAMS[kind],
            idempotency_key=f"k-{kind}",
            origin="test",
            deadline_at=NOW + timedelta(hours=1),
            now=NOW,
        )
        session.commit()
        job_id = job.id
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer

    # Retries on: a missing route must not be retried whatever the policy allows.
    retry = RetryPolicy(max_attempts=4, retry_imports=True, initial_backoff_s=0.0)
    with DatasetsClient("sk-test", transport=httpx.MockTransport(handle), retry=retry) as client:
        result = submit_job(
            job_id,
            session_factory=sessions,
            client=client,
            owner="w1",
            now=lambda: NOW,
            policy=PollPolicy(initial_interval_s=1.0, multiplier=2.0, max_interval_s=4.0, jitter_ratio=0.0),
            lease_s=30.0,
            final_attempt=False,
        )
    return result, sent


@pytest.mark.parametrize("kind", [ImportKind.CAMPAIGN, ImportKind.EXPLORER])
def test_a_dropped_import_kind_is_rejected_with_a_message_that_says_so(
    session_factory: sessionmaker[Session], kind: ImportKind
) -> None:
    result, sent = submit(session_factory, kind, NO_ROUTE)

    assert result.outcome is SubmitOutcome.REJECTED and result.finished
    assert [request.url.path for request in sent] == [f"/v1/observability/datasets/{DATASET}/imports/from-{kind}"]
    with session_factory() as session:
        job = get_job(session, result.job_id)
        assert job is not None
        assert job.status is JobStatus.REJECTED
        assert job.error_code == IMPORT_KIND_NOT_OFFERED
        assert job.message is not None
        assert job.message.startswith(f"the API no longer offers imports from {kind} (route not found): ")
        assert "dsimport import file" in job.message


def test_a_missing_campaign_keeps_the_api_code(session_factory: sessionmaker[Session]) -> None:
    answer = httpx.Response(404, json={"detail": {"message": "Campaign not found", "error_code": "CAMPAIGN_NOT_FOUND"}})
    result, _ = submit(session_factory, ImportKind.CAMPAIGN, answer)

    assert result.outcome is SubmitOutcome.REJECTED
    with session_factory() as session:
        job = get_job(session, result.job_id)
        assert job is not None
        assert (job.status, job.error_code, job.message) == (
            JobStatus.REJECTED,
            "CAMPAIGN_NOT_FOUND",
            "import_from_campaign: Campaign not found",
        )
