"""``--skip-existing`` under faults nobody planned for: seeded random requests and emulator faults, a real worker
and beat on the real Redis, the emulator on a socket, both ledgers; then an independent check of the target.

Each seed draws about 24 requests, each an explorer import of a random handful of 10 events or a copy of a random
handful of 10 source records, all with ``skip_existing``, some sent twice under one key, all within a second or two
so that many overlap in flight. The emulator meanwhile loses its answer to one import POST after acting (504),
refuses others with 429, fails the record listing the check reads with 503 now and then, answers record reads
slowly, and fails a share of the import tasks it runs. Its ``dedupe_imports`` is off: an item imported twice is
two records.

The checker reads only the emulator's records and the jobs' final statuses and original requests; it shares no
code with the feature (it names items by the ``event_id`` and ``src`` properties the records carry, never by our
keys):

- **never doubled**: no event and no source record appears twice in the target;
- **never lost**: every item asked for by a job that ended COMPLETED is in the target (a job that completed
  having skipped an item did so because the item was there or on its way with a job that then completed);
- every job ended.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from jobs.request_import import request_import
from store.models import ImportJob, ImportKind, JobStatus

from .service import Requester, ServiceProcesses, wait_for_jobs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SEEDS = (7, 19)
EVENTS = [f"evt-{n}" for n in range(10)]


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {"task_duration_s": (0.3, 1.2)}


@pytest.fixture
def faulty_service(processes: ServiceProcesses) -> ServiceProcesses:
    processes.env.update(
        {
            "DSIMPORT_RECOVERY_INTERVAL_S": "1",
            "DSIMPORT_STALE_PENDING_S": "2",
            "DSIMPORT_LEASE_S": "3",
            "DSIMPORT_API_TIMEOUT_S": "1.4",
            "DSIMPORT_API_MAX_ATTEMPTS": "2",
            "DSIMPORT_SUBMIT_MAX_RETRIES": "20",
            "DSIMPORT_SKIP_EXISTING_REFRESH_S": "0",
        }
    )
    processes.start_worker(concurrency=3)
    processes.start_beat()
    return processes


def _faults(rng: random.Random) -> dict[str, Any]:
    post = rng.choice(("import_from_explorer", "import_from_dataset"))
    other = "import_from_dataset" if post == "import_from_explorer" else "import_from_explorer"
    return {
        # One answer lost after the API acted: recovery adopts its task. Several at once on one dataset would leave
        # recovery to pair tasks by time, a guess that can double or lose an import whatever this feature does (a
        # known limit, said in each such job's history); these runs keep to what the pairing gets right.
        post: {"status": 504, "phase": "after", "next": 1},
        other: {"status": 429, "retry_after_s": 0.2, "rate": rng.uniform(0.1, 0.3)},
        "list_records": {"status": 503, "rate": rng.uniform(0.05, 0.2)},
        "fetch_record": {"status": 502, "kind": "slow", "delay_ms": 300, "rate": 0.2},
    }


def _story(ledger: sessionmaker[Session], emulator: EmulatorServer, job_ids: list[str]) -> str:
    """What the jobs that asked for a lost item went through, and what their remote tasks imported."""
    from store.jobs import job_events

    origins = emulator.task_origins()
    lines = []
    with ledger() as session:
        for job_id in job_ids:
            job = session.get(ImportJob, job_id)
            assert job is not None
            task = origins.get(job.remote_task_id or "", {})
            lines.append(f"job {job_id} {job.status} params={job.params} original={job.original_request} "
                         f"remote={job.remote_task_id} imports={task.get('origins')}")  # fmt: skip
            lines.extend(f"    {e.at} {e.old_status}->{e.new_status} {e.message}" for e in job_events(session, job_id))
    return "\n".join(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_overlapping_requests_under_faults_leave_each_item_once_and_lose_none(
    seed: int,
    emulator: EmulatorServer,
    api: DatasetsClient,
    faulty_service: ServiceProcesses,
    requester: Requester,
    ledger: sessionmaker[Session],
) -> None:
    rng = random.Random(seed)
    emulator.seed({"events": [{"event_id": event_id} for event_id in EVENTS]})
    source = api.create_dataset("source", "records to copy")
    records = {api.create_record(source.id, {"messages": [{"role": "user", "content": f"r{n}"}]}, {"src": n}).id: n
               for n in range(10)}  # fmt: skip
    target = api.create_dataset("target", "overlapping requests under faults")
    emulator.configure(faults=_faults(rng), failure_rate=rng.uniform(0.1, 0.25))

    app = requester.app
    asked: dict[str, set[tuple[str, str]]] = {}
    for index in range(24):
        if rng.random() < 0.5:
            chosen = rng.sample(EVENTS, rng.randint(1, 5))
            kind, params = ImportKind.EXPLORER, {"completion_event_ids": chosen}
            items = {("event", event_id) for event_id in chosen}
        else:
            chosen = rng.sample(sorted(records), rng.randint(1, 5))
            kind, params = ImportKind.DATASET, {"dataset_record_ids": chosen}
            items = {("src", str(records[record_id])) for record_id in chosen}
        key = f"seed{seed}:{index if rng.random() > 0.15 else index - 1}"  # now and then, one request twice
        requested = request_import(
            ledger,
            kind=kind,
            dataset_id=target.id,
            params=params,
            origin="faults",
            now=datetime.now(UTC),
            deadline_s=600,
            send=lambda job_id: app.send_task("dsimport.submit", args=[job_id]),
            idempotency_key=key,
            skip_existing=True,
        )
        asked.setdefault(requested.job_id, items)
        time.sleep(rng.uniform(0, 0.1))
    jobs = wait_for_jobs(ledger, list(asked), timeout_s=180, on_timeout=faulty_service.logs)
    emulator.configure(faults={}, failure_rate=0.0)

    held: Counter[tuple[str, str]] = Counter()
    for record in api.iter_records(target.id):
        if "event_id" in record.properties:
            held[("event", str(record.properties["event_id"]))] += 1
        else:
            held[("src", str(record.properties["src"]))] += 1
    doubled = {item: count for item, count in held.items() if count > 1}
    assert not doubled, f"seed {seed}: imported twice: {doubled}\n" + _story(
        ledger, emulator, [job_id for job_id in jobs if asked[job_id] & set(doubled)]
    )
    completed = [job_id for job_id, job in jobs.items() if job.status is JobStatus.COMPLETED]
    lost = {item for job_id in completed for item in asked[job_id] if item not in held}
    assert not lost, f"seed {seed}: asked by a completed job, not in the target: {sorted(lost)}\n" + _story(
        ledger, emulator, [job_id for job_id in jobs if asked[job_id] & lost]
    )
    statuses = Counter(str(job.status) for job in jobs.values())
    assert statuses["COMPLETED"] >= len(jobs) // 3, f"seed {seed}: too few completed to prove much: {statuses}"
    with ledger() as session:
        skipped = sum(job.duplicates_skipped or 0 for job in session.scalars(select(ImportJob)))
    assert skipped > 0, f"seed {seed}: nothing overlapped; the seed proves nothing ({statuses})"
