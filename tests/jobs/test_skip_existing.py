"""The step a ``--skip-existing`` job takes before its POST, called directly against the emulator on a socket, on
both ledgers (no worker: each case places its events exactly).

- two jobs racing for the same lines: the second plans while the first has not claimed, and the first claims while
  the second uploads its cut file; under the index lock the second sees the claim and plans again (the
  ``skip-existing-lock`` guarantee: without the re-check both take the same lines);
- a record deleted from the dataset is no longer held once the record list is read again: it can come back;
- a campaign part of whose events the dataset holds becomes an explorer import of the others;
- an unknown file is sent unchanged (the API's refusal says what is wrong); a busy API asks for a retry, and at the
  last attempt the job ends FAILED rather than being sent unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, ServerError
from emulator.testing import EmulatorServer
from import_kinds.item_keys import payload_key
from jobs.skip_existing import check_before_submit, skip_existing_before_submit
from jobs.submit import SubmitOutcome
from store.dataset_index import held_keys
from store.jobs import create_job, get_job
from store.models import ImportJob, ImportKind, JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _now() -> datetime:
    return datetime.now(UTC)


def _line(n: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"q{n}"}]}


def _jsonl(numbers: list[int]) -> bytes:
    return "\n".join(json.dumps(_line(n)) for n in numbers).encode()


def _job(ledger: sessionmaker[Session], kind: ImportKind, dataset_id: str, params: dict[str, Any]) -> str:
    with ledger() as session:
        job, _ = create_job(
            session,
            kind=kind,
            dataset_id=dataset_id,
            params=params,
            idempotency_key=f"test:{kind}:{json.dumps(params, sort_keys=True)}:{_now().timestamp()}",
            origin="test",
            deadline_at=_now() + timedelta(hours=1),
            now=_now(),
            skip_existing=True,
        )
        session.commit()
        return job.id


def _read(ledger: sessionmaker[Session], job_id: str) -> ImportJob:
    with ledger() as session:
        job = get_job(session, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _end(ledger: sessionmaker[Session], job_id: str, status: JobStatus) -> None:
    with ledger() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status = status
        job.finished_at = _now()
        session.commit()


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[DatasetsClient]:
    with DatasetsClient(emulator.api_key, base_url=emulator.url) as api:
        yield api


def _check(ledger: sessionmaker[Session], client: DatasetsClient, job_id: str) -> Any:
    return skip_existing_before_submit(job_id, session_factory=ledger, client=client, now=_now, refresh_after_s=600)


def test_a_job_that_loses_the_race_while_uploading_plans_again_and_takes_no_line_twice(
    ledger: sessionmaker[Session], client: DatasetsClient, emulator: EmulatorServer
) -> None:
    target = client.create_dataset("target", "two racing files").id
    client.create_record(target, _line(0), {})  # held: the second job has a cut to upload
    first = _job(ledger, ImportKind.FILE, target, {"file_id": client.upload_file("a.jsonl", _jsonl([1, 2])).id})
    second = _job(ledger, ImportKind.FILE, target, {"file_id": client.upload_file("b.jsonl", _jsonl([0, 1, 2, 3])).id})

    class RacingClient(DatasetsClient):
        raced = False

        def upload_file(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if not RacingClient.raced:
                RacingClient.raced = True
                # The first job takes lines 1 and 2 while the second is between its plan and its claim.
                assert _check(ledger, client, first) is not None
            return super().upload_file(*args, **kwargs)

    with RacingClient(emulator.api_key, base_url=emulator.url) as racing:
        waiting = _check(ledger, racing, second)
        # Under the lock it finds lines 1 and 2 on their way with the first job: it decides nothing yet.
        assert RacingClient.raced and waiting is not None and waiting.waiting_on == first
        assert _read(ledger, second).deduped_at is None
        _end(ledger, first, JobStatus.COMPLETED)
        assert _check(ledger, racing, second) is not None

    second_job = _read(ledger, second)
    sent = client.download_file(second_job.params["file_id"])
    assert [json.loads(line) for line in sent.splitlines()] == [_line(3)], "only the line no other job brings"
    assert second_job.duplicates_skipped == 3
    with ledger() as session:
        keys = [payload_key(_line(n)) for n in range(4)]
        assert held_keys(session, target, keys) == set(keys)


def test_a_job_waits_for_the_job_bringing_its_items_and_imports_them_if_that_one_failed(
    ledger: sessionmaker[Session], client: DatasetsClient
) -> None:
    target = client.create_dataset("target", "a failed claim").id
    first = _job(ledger, ImportKind.EXPLORER, target, {"completion_event_ids": ["e1", "e2"]})
    second = _job(ledger, ImportKind.EXPLORER, target, {"completion_event_ids": ["e2", "e3"]})
    assert not _check(ledger, client, first).ended
    kwargs: dict[str, Any] = {"session_factory": ledger, "client": client, "now": _now, "refresh_after_s": 600}
    deferred = check_before_submit(second, final_attempt=False, **kwargs)
    assert deferred is not None and deferred.outcome is SubmitOutcome.DEFERRED and deferred.retry_after_s
    waiting = _read(ledger, second)
    assert waiting.submit_not_before is not None and first in (waiting.message or "")
    _end(ledger, first, JobStatus.FAILED)
    assert check_before_submit(second, final_attempt=False, **kwargs) is None, "go on to the POST"
    assert _read(ledger, second).params == {"completion_event_ids": ["e2", "e3"]}, "e2 is not lost"


def test_a_record_deleted_from_the_dataset_can_be_imported_again_after_the_list_is_read(
    ledger: sessionmaker[Session], client: DatasetsClient
) -> None:
    target = client.create_dataset("target", "a record comes and goes").id
    record = client.create_record(target, _line(7), {})
    file_id = client.upload_file("c.jsonl", _jsonl([7])).id
    first = _job(ledger, ImportKind.FILE, target, {"file_id": file_id})
    assert _check(ledger, client, first).ended, "held: nothing to send"
    client.delete_record(record.id)
    again = _job(ledger, ImportKind.FILE, target, {"file_id": file_id})
    # A stale index (read less than refresh_after_s ago) still says held; a fresh read says it is gone.
    outcome = skip_existing_before_submit(again, session_factory=ledger, client=client, now=_now, refresh_after_s=0)
    assert outcome is not None and not outcome.ended and outcome.skipped == 0
    assert _read(ledger, again).params == {"file_id": file_id}


def test_a_campaign_partly_held_becomes_an_import_of_its_other_events(
    ledger: sessionmaker[Session], client: DatasetsClient, emulator: EmulatorServer
) -> None:
    campaign = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a02"
    events = [f"evt-{n}" for n in range(4)]
    emulator.seed(
        {
            "events": [{"event_id": event_id} for event_id in events],
            "campaigns": [{"id": campaign, "name": "c", "selected_event_ids": events, "status": "COMPLETED"}],
        }
    )
    target = client.create_dataset("target", "half of a campaign").id
    explorer = _job(ledger, ImportKind.EXPLORER, target, {"completion_event_ids": events[:2]})
    assert not _check(ledger, client, explorer).ended
    _end(ledger, explorer, JobStatus.COMPLETED)
    job_id = _job(ledger, ImportKind.CAMPAIGN, target, {"campaign_id": campaign})
    outcome = _check(ledger, client, job_id)
    job = _read(ledger, job_id)
    assert (outcome.skipped, job.kind, job.params) == (2, ImportKind.EXPLORER, {"completion_event_ids": events[2:]})
    assert job.original_request == {"kind": "campaign", "params": {"campaign_id": campaign}}


def test_an_unknown_file_is_sent_unchanged_and_a_busy_api_retries_then_fails_at_the_last_attempt(
    ledger: sessionmaker[Session], client: DatasetsClient, emulator: EmulatorServer
) -> None:
    target = client.create_dataset("target", "errors").id
    unknown = _job(ledger, ImportKind.FILE, target, {"file_id": "file-nowhere"})
    outcome = _check(ledger, client, unknown)
    job = _read(ledger, unknown)
    assert outcome is not None and outcome.skipped == 0 and job.deduped_at is not None
    assert (job.status, job.params) == (JobStatus.PENDING, {"file_id": "file-nowhere"})

    class BusyClient(DatasetsClient):
        def iter_records(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise ServerError("503 Service Unavailable", status_code=503)

    busy_target = client.create_dataset("t2", "busy").id
    busy_job = _job(ledger, ImportKind.EXPLORER, busy_target, {"completion_event_ids": ["e"]})
    with BusyClient(emulator.api_key, base_url=emulator.url) as busy:
        kwargs: dict[str, Any] = {"session_factory": ledger, "client": busy, "now": _now, "refresh_after_s": 600}
        retry = check_before_submit(busy_job, final_attempt=False, **kwargs)
        assert retry is not None and retry.outcome is SubmitOutcome.RETRY
        assert _read(ledger, busy_job).status is JobStatus.PENDING
        last = check_before_submit(busy_job, final_attempt=True, **kwargs)
    assert last is not None and last.outcome is SubmitOutcome.FAILED and last.finished
    failed = _read(ledger, busy_job)
    assert failed.status is JobStatus.FAILED and "could not check the dataset for duplicates" in (failed.message or "")
