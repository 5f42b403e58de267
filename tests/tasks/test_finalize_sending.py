"""How finished jobs are finalized: one task each (Flower shows each), a burst in batches (one process's time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from jobs import runtime
from jobs.poll_backoff import PollPolicy
from store.jobs import create_job
from store.models import ImportKind, JobStatus
from store.state_machine import apply_transition
from tasks import job_tasks


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {"finalize": [], "finalize_batch": []}
    monkeypatch.setattr(job_tasks.finalize, "apply_async", lambda args: calls["finalize"].append(args[0]))
    monkeypatch.setattr(job_tasks.finalize_batch, "apply_async", lambda args: calls["finalize_batch"].append(args[0]))
    return calls


def test_a_round_that_ends_a_few_jobs_finalizes_each_on_its_own(sent: dict[str, list[Any]]) -> None:
    finished = [(f"job-{n}", "COMPLETED") for n in range(job_tasks.FINALIZE_ONE_BY_ONE_UP_TO)]
    job_tasks.send_finalize(finished)
    assert sent["finalize"] == [job_id for job_id, _ in finished] and sent["finalize_batch"] == []


def test_a_burst_of_endings_is_finalized_in_batches(sent: dict[str, list[Any]]) -> None:
    count = 2 * job_tasks.FINALIZE_BATCH_SIZE + 7
    finished = [(f"job-{n}", "COMPLETED") for n in range(count)]
    job_tasks.send_finalize(finished)
    assert sent["finalize"] == []
    assert [len(batch) for batch in sent["finalize_batch"]] == [job_tasks.FINALIZE_BATCH_SIZE] * 2 + [7]
    assert [job_id for batch in sent["finalize_batch"] for job_id in batch] == [job_id for job_id, _ in finished]


def test_a_malformed_batch_is_reported_not_raised() -> None:
    assert job_tasks.finalize_batch.run("not-a-list") == {"jobs": 0, "outcomes": {"malformed": 1}}


def test_a_batch_names_each_jobs_outcome_missing_ones_included(session_factory: sessionmaker[Session]) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with session_factory() as session:
        job, _ = create_job(
            session,
            kind=ImportKind.EXPLORER,
            dataset_id="d",
            params={"completion_event_ids": ["e"]},
            idempotency_key="k-1",
            origin="test",
            deadline_at=None,
            now=at,
        )
        apply_transition(job, JobStatus.CANCELLED_LOCALLY, now=at)
        job_id = job.id
        session.commit()
    runtime.install(
        lambda: runtime.Runtime(
            session_factory=session_factory,
            client_factory=_no_client,
            async_client_factory=_no_client,
            poll_policy=PollPolicy(),
            tuning=runtime.JobTuning(),
        )
    )
    try:
        result = job_tasks.finalize_batch.run([job_id, "no-such-job"])
    finally:
        runtime.reset()
    assert result["jobs"] == 2
    assert result["by_job"] == {job_id: "CANCELLED_LOCALLY", "no-such-job": "missing"}
    assert result["outcomes"] == {"CANCELLED_LOCALLY": 1, "missing": 1}


def _no_client() -> Any:
    raise AssertionError("finalizing calls no API")
