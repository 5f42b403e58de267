"""Schedule snapshots end to end: `dsimport schedules add … --snapshot DIR` and `run-now` as a user types them, a real
worker and beat on Redis, the emulator on a socket. Each completed import leaves a JSONL file whose lines are the
dataset's records and whose SHA-256 the ledger holds; an export the API fails is taken by a later tick."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from cli.main import main
from emulator.testing import EmulatorServer
from store.models import ImportJob, JobStatus
from store.snapshot_models import DatasetSnapshot, SnapshotJob, SnapshotStatus
from tests.integration.service import ServiceProcesses

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

T = TypeVar("T")


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {**service_overrides, "DSIMPORT_SNAPSHOT_TICK_S": "0.5", "DSIMPORT_SNAPSHOT_BACKOFF_S": "0.5"}


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> Callable[..., str]:
    """Runs `dsimport ARGS` in this process on the service's ledger and broker; returns what it printed."""
    monkeypatch.chdir(tmp_path)
    for name, value in service_env.items():
        if name.startswith(("DSIMPORT_", "MISTRAL_")):
            monkeypatch.setenv(name, value)

    def run(*argv: str) -> str:
        code = main(list(argv))
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    return run


@pytest.fixture
def stack(emulator: EmulatorServer, service: ServiceProcesses) -> ServiceProcesses:
    # Copies are counted exactly: the emulator must not hide a record imported twice.
    emulator.configure(dedupe_imports=False)
    return service


def wait_for(what: str, probe: Callable[[], T | None], service: ServiceProcesses, timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{service.logs()}")


def snapshots_of(ledger: sessionmaker[Session], count: int) -> Callable[[], list[DatasetSnapshot] | None]:
    def probe() -> list[DatasetSnapshot] | None:
        with ledger() as session:
            found = list(session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.created_at)))
        return found if len(found) >= count else None

    return probe


def jobs_of(ledger: sessionmaker[Session], name: str) -> list[ImportJob]:
    with ledger() as session:
        query = select(ImportJob).where(ImportJob.origin == f"schedule:{name}").order_by(ImportJob.created_at)
        return list(session.scalars(query))


def records_in(api: DatasetsClient, dataset_id: str) -> int:
    return sum(1 for _ in api.iter_records(dataset_id))


def add_records(api: DatasetsClient, dataset_id: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        api.create_record(dataset_id, {"messages": [{"role": "user", "content": f"r{n:02d}"}]}, {"n": n})


def check_file(snapshot: DatasetSnapshot, folder: Path, dataset_id: str, expected_records: int) -> list[Any]:
    """The file the ledger names: under the folder, one line per record, the ledger's hash and size."""
    path = Path(snapshot.path)
    assert path.parent == folder / dataset_id and path.name.endswith(f"-{snapshot.job_ids[-1]}.jsonl")
    content = path.read_bytes()
    lines = content.splitlines()
    assert len(lines) == snapshot.record_count == expected_records
    assert hashlib.sha256(content).hexdigest() == snapshot.sha256 and len(content) == snapshot.bytes
    return [json.loads(line) for line in lines]


def test_each_completed_import_of_a_schedule_leaves_a_snapshot_of_the_dataset(
    stack: ServiceProcesses, api: DatasetsClient, ledger: sessionmaker[Session], cli: Callable[..., str], tmp_path: Path
) -> None:
    source = api.create_dataset("source", "copied by the schedule").id
    target = api.create_dataset("target", "evaluated").id
    add_records(api, source, 0, 3)
    out = cli("schedules", "add", "nightly", "--every", "1h", "--paused", "dataset-copy", "--dataset", target,
              "--from-dataset", source, "--snapshot", "snaps")  # fmt: skip
    folder = tmp_path / "snaps"  # resolved at add time against the working directory
    assert f"snapshots to {folder}" in out

    cli("schedules", "run-now", "nightly")
    [first] = wait_for("the first snapshot", snapshots_of(ledger, 1), stack)
    [job] = jobs_of(ledger, "nightly")
    assert job.status is JobStatus.COMPLETED and first.job_ids == [job.id]
    exported = check_file(first, folder, target, records_in(api, target))
    assert sorted(line["payload"]["messages"][0]["content"] for line in exported) == ["r00", "r01", "r02"]

    # A second import adds records: a second snapshot, with more, and the first file is left as it was.
    add_records(api, source, 3, 2)
    cli("schedules", "run-now", "nightly")
    first_again, second = wait_for("the second snapshot", snapshots_of(ledger, 2), stack)
    assert first_again.id == first.id and Path(first.path).read_bytes().count(b"\n") == 3
    check_file(second, folder, target, 5)
    assert records_in(api, target) == 5
    second_job = jobs_of(ledger, "nightly")[-1]
    assert second.job_ids == [second_job.id] and second_job.status is JobStatus.COMPLETED

    listed = json.loads(cli("schedules", "snapshots", "nightly", "--json"))
    assert [(row["path"], row["record_count"], row["sha256"]) for row in listed] == [
        (second.path, 5, second.sha256),
        (first.path, 3, first.sha256),
    ]
    shown = cli("schedules", "show", "nightly")
    assert f"snapshot_dir     {folder}" in shown and second.path in shown and second.sha256 in shown
    assert second.path in cli("jobs", "show", second_job.id)


def test_a_snapshot_the_api_failed_to_export_is_taken_by_a_later_tick(
    stack: ServiceProcesses,
    emulator: EmulatorServer,
    api: DatasetsClient,
    ledger: sessionmaker[Session],
    cli: Callable[..., str],
    tmp_path: Path,
) -> None:
    source = api.create_dataset("source", "copied by the schedule").id
    target = api.create_dataset("target", "evaluated").id
    add_records(api, source, 0, 4)
    folder = tmp_path / "versions"
    cli("schedules", "add", "nightly", "--every", "1h", "--paused", "dataset-copy", "--dataset", target,
        "--from-dataset", source, "--snapshot", str(folder))  # fmt: skip
    emulator.configure(faults={"export_to_jsonl": {"status": 503}})

    cli("schedules", "run-now", "nightly")

    def failed_once() -> SnapshotJob | None:
        with ledger() as session:
            row = session.scalars(select(SnapshotJob)).first()
        return row if row is not None and row.last_error else None

    owed = wait_for("a failed export", failed_once, stack)
    assert owed.status is SnapshotStatus.PENDING and "503" in (owed.last_error or "")
    assert "snapshots owed   1 job(s) waiting" in cli("schedules", "show", "nightly")
    assert not (folder / target).exists() or not list((folder / target).iterdir())

    emulator.configure(faults=None)
    [snapshot] = wait_for("the snapshot taken later", snapshots_of(ledger, 1), stack)
    assert snapshot.job_ids == [owed.job_id]
    check_file(snapshot, folder, target, 4)
    with ledger() as session:
        row = session.get(SnapshotJob, owed.job_id)
        assert row is not None and row.status is SnapshotStatus.TAKEN and row.attempts >= 2
