"""The functions behind the Celery tasks, called directly: a real emulator socket and a real ledger, no broker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from emulator.testing import EmulatorServer
from jobs.poll_loop import run_poll_rounds
from jobs.recover import recover
from jobs.runtime import JobTuning, Runtime
from jobs.submit import SubmitOutcome
from jobs.transitions import IMPORT_KIND_NOT_OFFERED
from store.jobs import get_job, job_events
from store.models import ImportKind, JobStatus
from tests.fixtures.direct_runtime import direct_runtime, direct_submit, record_job
from tests.fixtures.emulators import explorer_events, frozen_emulator_options

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = [f"evt-{n}" for n in range(6)]


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(T0, task_duration_s=10, seed=explorer_events(EVENTS))


@pytest.fixture
def runtime(emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Runtime:
    tuning = JobTuning(lease_s=30.0, poll_group_threshold=3, submit_max_retries=2, stale_pending_s=60.0)
    return direct_runtime(emulator, session_factory, tuning)


@pytest.fixture
def dataset_id(runtime: Runtime) -> str:
    with runtime.client_factory() as client:
        return client.create_dataset("target", "d").id


def new_job(
    runtime: Runtime,
    dataset_id: str,
    params: dict[str, object],
    *,
    kind: ImportKind = ImportKind.EXPLORER,
    now: datetime = T0,
    deadline: timedelta = timedelta(hours=1),
) -> str:
    return record_job(runtime, dataset_id, params, kind=kind, now=now, deadline_at=now + deadline)


def submit(runtime: Runtime, job_id: str, *, now: datetime = T0, final: bool = False) -> SubmitOutcome:
    return direct_submit(runtime, job_id, at=now, owner="w1", final=final).outcome


def status(runtime: Runtime, job_id: str) -> JobStatus:
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None
        return job.status


def test_an_accepted_submit_is_running_with_its_remote_task(runtime: Runtime, dataset_id: str) -> None:
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:2]})
    assert submit(runtime, job_id) is SubmitOutcome.ACCEPTED
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None and job.status is JobStatus.RUNNING
        assert job.remote_task_id and job.remote_status == "RUNNING" and job.progress == 0
        assert job.next_poll_at == T0 + timedelta(seconds=1)
    # A second delivery of the same submit message does nothing.
    assert submit(runtime, job_id) is SubmitOutcome.SKIPPED


def test_a_refused_submit_is_rejected_with_the_api_error_code(runtime: Runtime, dataset_id: str) -> None:
    job_id = new_job(
        runtime, dataset_id, {"campaign_id": "0b7e8f0e-1f1e-4d7a-9a0e-3c5d1e0f9a77"}, kind=ImportKind.CAMPAIGN
    )
    assert submit(runtime, job_id) is SubmitOutcome.REJECTED
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None and job.status is JobStatus.REJECTED and job.error_code == "CAMPAIGN_NOT_FOUND"


def test_an_import_kind_the_api_no_longer_has_is_rejected_saying_so(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    # Today's API has no campaign and explorer imports: the emulator answers those POSTs as routes it lacks.
    emulator.configure(removed_import_routes="gone")
    campaign = new_job(
        runtime, dataset_id, {"campaign_id": "0b7e8f0e-1f1e-4d7a-9a0e-3c5d1e0f9a77"}, kind=ImportKind.CAMPAIGN
    )
    explorer = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    for job_id, kind in ((campaign, "campaign"), (explorer, "explorer")):
        assert submit(runtime, job_id) is SubmitOutcome.REJECTED
        with runtime.session_factory() as session:
            job = get_job(session, job_id)
            assert job is not None and job.status is JobStatus.REJECTED
            assert job.error_code == IMPORT_KIND_NOT_OFFERED
            assert (job.message or "").startswith(f"the API no longer offers imports from {kind} (route not found)")
    assert emulator.stats(include_tasks=False)["tasks_created"] == {}


def test_a_job_naming_its_dataset_by_slug_is_followed_to_its_end(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    with runtime.client_factory() as client:
        slug = client.fetch_dataset(dataset_id).slug
    assert slug == "target"
    job_id = new_job(runtime, slug, {"completion_event_ids": EVENTS[:2]})
    assert submit(runtime, job_id) is SubmitOutcome.ACCEPTED
    emulator.advance_clock(11)
    finished: list[tuple[str, str]] = []
    run_poll_rounds(runtime, owner="w1", now=lambda: T0 + timedelta(seconds=2), on_finished=finished.extend)
    assert finished == [(job_id, "COMPLETED")]
    # The import went into the dataset the slug names.
    assert emulator.stats(include_tasks=False)["tasks_created"] == {dataset_id: 1}


def test_a_429_goes_back_to_pending_then_fails_on_the_last_attempt(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    emulator.configure(faults={"import_from_explorer": {"status": 429}})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    assert submit(runtime, job_id) is SubmitOutcome.RETRY
    assert status(runtime, job_id) is JobStatus.PENDING
    assert submit(runtime, job_id, final=True) is SubmitOutcome.FAILED
    assert status(runtime, job_id) is JobStatus.FAILED
    assert emulator.stats(include_tasks=False)["tasks_created"] == {}


def test_a_lost_answer_is_adopted_by_recovery_only_after_the_lease(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    emulator.configure(faults={"import_from_explorer": {"status": 500, "next": 1, "phase": "after"}})
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    assert submit(runtime, job_id) is SubmitOutcome.AMBIGUOUS
    assert status(runtime, job_id) is JobStatus.SUBMITTING
    resent: list[str] = []
    early = recover(runtime, owner="sweeper", now=lambda: T0 + timedelta(seconds=5), resend=resent.append)
    assert early.adopted == [] and status(runtime, job_id) is JobStatus.SUBMITTING
    late = recover(runtime, owner="sweeper", now=lambda: T0 + timedelta(seconds=31), resend=resent.append)
    assert [job for job, _ in late.adopted] == [job_id] and resent == []
    assert status(runtime, job_id) is JobStatus.RUNNING
    assert emulator.stats(include_tasks=False)["tasks_created"] == {dataset_id: 1}


def test_recovery_resends_a_stale_pending_job_and_expires_an_overdue_one(runtime: Runtime, dataset_id: str) -> None:
    stale = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    overdue = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[1:2]}, deadline=timedelta(seconds=30))
    resent: list[str] = []
    report = recover(runtime, owner="sweeper", now=lambda: T0 + timedelta(seconds=90), resend=resent.append)
    assert resent == [stale]
    assert report.finished == [(overdue, "EXPIRED")]
    assert status(runtime, overdue) is JobStatus.EXPIRED


def test_poll_rounds_follow_jobs_to_the_end_with_grouped_calls(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer
) -> None:
    job_ids = [new_job(runtime, dataset_id, {"completion_event_ids": [e]}) for e in EVENTS[:5]]
    for job_id in job_ids:
        assert submit(runtime, job_id) is SubmitOutcome.ACCEPTED
    emulator.reset_stats()
    clock = {"now": T0 + timedelta(seconds=1)}
    first = run_poll_rounds(runtime, owner="w1", now=lambda: clock["now"])
    assert first.claimed == 5 and first.finished == []
    # Five due jobs on one dataset: one list_tasks page instead of five fetch_task calls.
    assert first.api_calls == 1
    assert emulator.stats(include_tasks=False)["requests"] == {"list_tasks": 1}

    emulator.advance_clock(11)
    clock["now"] = T0 + timedelta(seconds=4)
    finished: list[tuple[str, str]] = []
    run_poll_rounds(runtime, owner="w1", now=lambda: clock["now"], on_finished=finished.extend)
    assert sorted(finished) == sorted((job_id, "COMPLETED") for job_id in job_ids)
    with runtime.session_factory() as session:
        for job_id in job_ids:
            events = [(str(e.old_status), str(e.new_status)) for e in job_events(session, job_id)]
            assert events[-1] == ("RUNNING", "COMPLETED")
            job = get_job(session, job_id)
            assert job is not None and job.imported_count == 1 and job.progress == 100


def test_a_job_not_yet_due_is_not_polled(runtime: Runtime, dataset_id: str, emulator: EmulatorServer) -> None:
    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    submit(runtime, job_id)
    emulator.reset_stats()
    report = run_poll_rounds(runtime, owner="w1", now=lambda: T0 + timedelta(milliseconds=500))
    assert report.claimed == 0
    assert emulator.stats(include_tasks=False)["requests_total"] == 0


def test_write_back_redoes_the_batch_job_by_job_when_a_row_changed(
    runtime: Runtime, dataset_id: str, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    from api_client import DatasetImportTask
    from jobs import poll_round as polling
    from jobs import poll_writeback
    from jobs.transitions import Observation

    job_ids = [new_job(runtime, dataset_id, {"completion_event_ids": [e]}) for e in EVENTS[:3]]
    for job_id in job_ids:
        submit(runtime, job_id)
    due = polling.claim(runtime, owner="w1", now=T0 + timedelta(seconds=2))
    assert {d.job_id for d in due} == set(job_ids)
    done = {
        d.job_id: Observation(
            task=DatasetImportTask.model_validate(
                {
                    "id": d.remote_task_id,
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:10Z",
                    "deleted_at": None,
                    "creator_id": "u",
                    "dataset_id": dataset_id,
                    "workspace_id": "w",
                    "status": "COMPLETED",
                    "progress": 100,
                }
            )
        )
        for d in due
    }
    calls = {"n": 0}
    real = poll_writeback._update_in_one_statement

    def stale_once(session: Session, jobs: list[object]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StaleDataError("a row changed")
        real(session, jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(poll_writeback, "_update_in_one_statement", stale_once)
    finished = poll_writeback.write_back(runtime, done, owner="w1", now=T0 + timedelta(seconds=3), rng=random.Random(1))
    assert sorted(finished) == sorted((job_id, "COMPLETED") for job_id in job_ids)
    assert all(status(runtime, job_id) is JobStatus.COMPLETED for job_id in job_ids)


def test_the_kept_poll_loop_is_closed_and_rebuilt(runtime: Runtime, dataset_id: str) -> None:
    from jobs.poll_loop import close_poll_loop

    job_id = new_job(runtime, dataset_id, {"completion_event_ids": EVENTS[:1]})
    submit(runtime, job_id)
    assert run_poll_rounds(runtime, owner="w1", now=lambda: T0 + timedelta(seconds=2)).claimed == 1
    close_poll_loop()
    # A closed loop is replaced on the next call, with fresh clients.
    assert run_poll_rounds(runtime, owner="w1", now=lambda: T0 + timedelta(seconds=9)).claimed == 1
    close_poll_loop()


def test_the_runtime_sync_client_stays_open_after_a_with_block(emulator: EmulatorServer) -> None:
    from worker.runtime_builder import KeptOpenClient

    client = KeptOpenClient(emulator.api_key, base_url=emulator.url)
    with client:
        assert client.list_datasets().count == 0
    with client:
        assert client.list_datasets().count == 0
    client.close()
