"""``--skip-existing`` end to end: a real worker and beat on the real Redis, the emulator on a socket, both ledgers.

The emulator runs with ``dedupe_imports`` off (its default): an item imported twice is two records, so every count
of records by payload or origin below is what our side did, not something the emulator hid.

- the same file imported three times (the third a re-upload written with other spacing and key order, holding one
  line twice): the target holds each payload once; the later jobs end COMPLETED without a POST;
- the same events through a queue message and a schedule fire, sent at the same time: each event once;
- overlapping copies of another dataset's records, requested together, and a record a user wrote into the target
  directly (known only from the API's record list): each payload once;
- the jobs count what they left out (``duplicates_skipped``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from import_kinds.item_keys import payload_key
from jobs.request_import import request_import
from store.models import ImportJob, ImportKind, JobStatus, ScheduleSource
from store.schedules import create_schedule
from tasks.names import FIRE_SCHEDULE
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.specs import build_definition

from .service import Requester, ServiceProcesses, wait_for_jobs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {
        **service_overrides,
        # Every check reads the record list again: what a user wrote into the dataset is seen at once.
        "DSIMPORT_SKIP_EXISTING_REFRESH_S": "0",
        "DSIMPORT_SCHEDULE_SETTLE_LAG_S": "0",
    }


def _request(requester: Requester, kind: ImportKind, dataset_id: str, params: dict[str, Any]) -> str:
    return request_import(
        requester.sessions,
        kind=kind,
        dataset_id=dataset_id,
        params=params,
        origin="test",
        now=datetime.now(UTC),
        deadline_s=600,
        send=lambda job_id: requester.app.send_task("dsimport.submit", args=[job_id]),
        skip_existing=True,
    ).job_id


def _payload_counts(api: DatasetsClient, dataset_id: str) -> Counter[str]:
    return Counter(payload_key(record.payload_dict()) for record in api.iter_records(dataset_id))


def _line(n: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": f"a{n}"}]}


def test_the_same_file_three_times_holds_each_line_once(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    target = api.create_dataset("target", "filled from one file, three times")
    first = "\n".join(json.dumps(_line(n)) for n in range(4)).encode()
    # The same four payloads written differently, one of them twice, and one new line.
    respelt = [json.dumps(_line(n), indent=None, separators=(", ", " : "), sort_keys=True) for n in (3, 2, 1, 0, 1)]
    third = "\n".join([*respelt, json.dumps(_line(4))]).encode()
    file_a = api.upload_file("a.jsonl", first).id
    file_b = api.upload_file("b.jsonl", third).id

    jobs = []
    for file_id in (file_a, file_a, file_b):
        job_id = _request(requester, ImportKind.FILE, target.id, {"file_id": file_id})
        jobs.append(wait_for_jobs(requester.sessions, [job_id], timeout_s=60, on_timeout=service.logs)[job_id])

    counts = _payload_counts(api, target.id)
    assert counts == Counter({payload_key(_line(n)): 1 for n in range(5)})
    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 3
    assert [job.duplicates_skipped for job in jobs] == [0, 4, 5]
    # The second sent nothing; the third sent a new upload holding its one new line.
    assert jobs[1].remote_task_id is None and "nothing sent" in (jobs[1].message or "")
    assert jobs[2].params["file_id"] != file_b and jobs[2].imported_count == 1
    assert jobs[2].original_request == {"kind": "file", "params": {"file_id": file_b}}
    assert sum(emulator.stats(include_tasks=False)["tasks_created"].values()) == 2


def test_the_same_events_through_a_message_and_a_schedule_at_once_are_imported_once(
    emulator: EmulatorServer,
    api: DatasetsClient,
    service: ServiceProcesses,
    requester: Requester,
    ledger: sessionmaker[Session],
    broker_url: str,
) -> None:
    events = [f"evt-{n}" for n in range(12)]
    emulator.seed({"events": [{"event_id": event_id, "created_at_offset_s": -30} for event_id in events]})
    target = api.create_dataset("target", "events from two triggers")
    # The message first, the schedule right after: both jobs are in flight together.
    client = redis.Redis.from_url(broker_url)
    body = {"id": "order-1", "kind": "explorer", "dataset_id": target.id, "completion_event_ids": events[:8],
            "skip_existing": True}  # fmt: skip
    client.xadd("dsimport:requests", {"body": json.dumps(body)})
    client.close()
    definition = build_definition(
        "hourly-events",
        kind="explorer-window",
        dataset=target.id,
        every="1h",
        options={"since": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(), "chunk_size": 5},
    )
    assert definition.skip_existing, "on by default for schedules"
    with ledger() as session:
        create_schedule(session, definition, source=ScheduleSource.CLI, now=datetime.now(UTC))
        session.commit()
    # `schedules run-now`: a fire through a worker like beat's.
    requester.app.send_task(FIRE_SCHEDULE, args=["hourly-events", fire_time_iso(datetime.now(UTC)), "manual"])

    deadline = time.monotonic() + 60
    while True:
        with ledger() as session:
            jobs = list(session.scalars(select(ImportJob)))
            for job in jobs:
                session.expunge(job)
        origins = Counter(job.origin for job in jobs)
        if origins["schedule:hourly-events"] >= 3 and len(jobs) >= 4:
            break
        assert time.monotonic() < deadline, f"jobs so far: {origins}\n{service.logs()}"
        time.sleep(0.25)
    ended = wait_for_jobs(ledger, [job.id for job in jobs], timeout_s=60, on_timeout=service.logs)

    held = Counter(str(record.properties["event_id"]) for record in api.iter_records(target.id))
    assert held == Counter(dict.fromkeys(events, 1)), held
    assert all(job.status is JobStatus.COMPLETED for job in ended.values())
    assert sum(job.duplicates_skipped or 0 for job in ended.values()) == 8, "the 8 events both triggers asked for"


def test_overlapping_copies_and_a_record_written_directly_hold_each_payload_once(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    source = api.create_dataset("source", "records to copy")
    records = [api.create_record(source.id, _line(n), {"n": n}).id for n in range(6)]
    target = api.create_dataset("target", "copies")
    api.create_record(target.id, _line(0), {"written": "by hand"})
    job_ids = [
        _request(requester, ImportKind.DATASET, target.id, {"dataset_record_ids": records[0:4]}),
        _request(requester, ImportKind.DATASET, target.id, {"dataset_record_ids": records[2:6]}),
        _request(requester, ImportKind.DATASET, target.id, {"dataset_record_ids": records}),
    ]
    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=60, on_timeout=service.logs)

    assert _payload_counts(api, target.id) == Counter({payload_key(_line(n)): 1 for n in range(6)})
    assert all(job.status is JobStatus.COMPLETED for job in jobs.values())
    # However the three interleave: 14 asked, 5 imported (the first payload was held from the start).
    assert sum(job.duplicates_skipped or 0 for job in jobs.values()) == 14 - 5
    assert sum(job.imported_count or 0 for job in jobs.values()) == 5
