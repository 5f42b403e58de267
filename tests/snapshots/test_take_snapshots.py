"""The snapshot outbox and its taker, on both ledgers, with a fake API: which endings owe a snapshot, one snapshot per
job whatever happens (two takers at once, a lease lost), failures tried again later, refusals given up."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import NotFoundError, ServerError
from snapshots.take import SnapshotPolicy, take_due
from store.jobs import create_job
from store.models import ImportJob, ImportKind, JobStatus, ScheduleSource
from store.retention import prune
from store.schedules import create_schedule, remove_schedule, require_schedule, sync_file_schedules
from store.snapshot_models import DatasetSnapshot, SnapshotJob, SnapshotStatus
from store.snapshot_outbox import claim_due, record_taken
from store.snapshots import list_snapshots, snapshot_backlog, snapshot_of_job
from store.state_machine import apply_transition
from triggers.schedules.specs import build_definition

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
TARGET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
EXPORT = b'{"payload": {"n": 1}}\n{"payload": {"n": 2}}\n{"payload": {"n": 3}}\n'
POLICY = SnapshotPolicy(backoff_base_s=10.0, max_attempts=3, lease_s=60.0)


@dataclass
class FakeApi:
    """The export the taker reads; ``errors`` are raised first, one per call; every call is counted."""

    content: bytes = EXPORT
    errors: list[Exception] = field(default_factory=list)
    delay_s: float = 0.0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> FakeApi:
        return self

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def download_export(self, dataset_id: str) -> bytes:
        with self.lock:
            self.calls += 1
            error = self.errors.pop(0) if self.errors else None
        time.sleep(self.delay_s)
        if error is not None:
            raise error
        return self.content


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def add_schedule(sessions: sessionmaker[Session], name: str, snapshot: Path | None) -> None:
    definition = build_definition(
        name, kind="file", dataset=TARGET, every="1h", options={"file_id": "f-1"}, snapshot=snapshot and str(snapshot)
    )
    with sessions() as session:
        create_schedule(session, definition, source=ScheduleSource.CLI, now=NOW)
        session.commit()


def end_job(sessions: sessionmaker[Session], key: str, origin: str, status: JobStatus = JobStatus.COMPLETED) -> str:
    with sessions() as session:
        job, _ = create_job(
            session,
            kind=ImportKind.FILE,
            dataset_id=TARGET,
            params={"file_id": "f-1"},
            idempotency_key=key,
            origin=origin,
            deadline_at=None,
            now=NOW,
        )
        apply_transition(job, JobStatus.SUBMITTING, now=NOW)
        apply_transition(job, status, now=NOW)
        session.commit()
        return job.id


def rows(sessions: sessionmaker[Session]) -> dict[str, SnapshotJob]:
    with sessions() as session:
        return {row.job_id: row for row in session.scalars(select(SnapshotJob))}


def snapshots(sessions: sessionmaker[Session]) -> list[DatasetSnapshot]:
    with sessions() as session:
        return list(session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.created_at)))


def take(sessions: sessionmaker[Session], api: FakeApi, clock: Clock, owner: str = "w-1") -> tuple[int, int, int]:
    report = take_due(sessions, api, owner=owner, now=clock, policy=POLICY)  # type: ignore[arg-type]
    return report.snapshots, report.retrying, report.failed


def test_only_completed_jobs_of_schedules_with_a_folder_owe_a_snapshot(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    add_schedule(session_factory, "plain", None)
    owed = end_job(session_factory, "k-1", "schedule:snap")
    end_job(session_factory, "k-2", "schedule:snap", JobStatus.FAILED)
    end_job(session_factory, "k-3", "schedule:plain")
    end_job(session_factory, "k-4", "cli")
    assert {job_id: row.status for job_id, row in rows(session_factory).items()} == {owed: SnapshotStatus.PENDING}


def test_jobs_that_completed_together_share_one_snapshot_and_each_is_covered_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    first = end_job(session_factory, "k-1", "schedule:snap")
    second = end_job(session_factory, "k-2", "schedule:snap")
    api, clock = FakeApi(), Clock()

    assert take(session_factory, api, clock) == (1, 0, 0)
    [snapshot] = snapshots(session_factory)
    assert sorted(snapshot.job_ids) == sorted([first, second])
    path = Path(snapshot.path)
    assert path.parent == tmp_path / TARGET and path.read_bytes() == EXPORT
    assert (snapshot.record_count, snapshot.bytes) == (3, len(EXPORT))
    assert snapshot.sha256 == hashlib.sha256(EXPORT).hexdigest()
    assert {row.status for row in rows(session_factory).values()} == {SnapshotStatus.TAKEN}

    # Nothing is owed any more: no second export, no second row.
    assert take(session_factory, api, clock) == (0, 0, 0)
    assert api.calls == 1 and len(snapshots(session_factory)) == 1
    with session_factory() as session:
        found = snapshot_of_job(session, first)
        assert found is not None and found.snapshot is not None and found.snapshot.path == str(path)


def test_an_export_that_fails_is_tried_again_after_its_backoff(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    job_id = end_job(session_factory, "k-1", "schedule:snap")
    api, clock = FakeApi(errors=[ServerError("export down", status_code=503)]), Clock()

    assert take(session_factory, api, clock) == (0, 1, 0)
    row = rows(session_factory)[job_id]
    assert row.status is SnapshotStatus.PENDING and row.attempts == 1 and "export down" in (row.last_error or "")
    assert row.next_attempt_at == NOW + timedelta(seconds=POLICY.backoff_base_s)
    assert not (tmp_path / TARGET).exists()
    with session_factory() as session:
        backlog = snapshot_backlog(session, row.schedule_id)
    assert (backlog.pending, backlog.failed) == (1, 0) and "export down" in (backlog.last_error or "")

    assert take(session_factory, api, clock) == (0, 0, 0)  # not due yet
    clock.now = NOW + timedelta(seconds=POLICY.backoff_base_s)
    assert take(session_factory, api, clock) == (1, 0, 0)
    assert rows(session_factory)[job_id].status is SnapshotStatus.TAKEN
    assert [snapshot.job_ids for snapshot in snapshots(session_factory)] == [[job_id]]


def test_a_refused_export_and_a_schedule_without_a_folder_any_more_are_given_up(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    refused = end_job(session_factory, "k-1", "schedule:snap")
    api, clock = FakeApi(errors=[NotFoundError("no such dataset", status_code=404)]), Clock()
    assert take(session_factory, api, clock) == (0, 0, 1)
    assert rows(session_factory)[refused].status is SnapshotStatus.FAILED

    unwanted = end_job(session_factory, "k-2", "schedule:snap")
    # The schedule stops taking snapshots (its file lost the key) before this one is taken.
    with session_factory() as session:
        require_schedule(session, "snap").snapshot_dir = None
        session.commit()
    assert take(session_factory, api, clock) == (0, 0, 1)
    row = rows(session_factory)[unwanted]
    assert row.status is SnapshotStatus.FAILED and "no longer takes snapshots" in (row.last_error or "")
    assert snapshots(session_factory) == []


def test_two_takers_at_once_export_once(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    job_ids = [end_job(session_factory, f"k-{n}", "schedule:snap") for n in range(5)]
    api, clock = FakeApi(delay_s=0.2), Clock()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda owner: take(session_factory, api, clock, owner), ["a", "b", "c", "d"]))
    assert sum(result[0] for result in results) == 1 and api.calls == 1
    [snapshot] = snapshots(session_factory)
    assert sorted(snapshot.job_ids) == sorted(job_ids)
    assert len(list((tmp_path / TARGET).iterdir())) == 1


def test_a_taker_that_lost_its_lease_records_nothing(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    job_id = end_job(session_factory, "k-1", "schedule:snap")
    with session_factory() as session:
        [slow] = claim_due(session, owner="slow", now=NOW, lease_s=10, limit=10)
        session.commit()
    with session_factory() as session:
        # The slow taker's lease ran out: another takes the row over and records its snapshot.
        [fast] = claim_due(session, owner="fast", now=NOW + timedelta(seconds=11), lease_s=10, limit=10)
        taken = record_taken(session, fast, owner="fast", path="/s/fast", record_count=1, sha256="f" * 64,
                             size_bytes=1, now=NOW)  # fmt: skip
        assert taken is not None and taken.job_ids == [job_id]
        session.commit()
    with session_factory() as session:
        late = record_taken(session, slow, owner="slow", path="/s/slow", record_count=1, sha256="s" * 64,
                            size_bytes=1, now=NOW)  # fmt: skip
        session.commit()
    assert late is None
    assert [snapshot.path for snapshot in snapshots(session_factory)] == ["/s/fast"]


def test_snapshots_survive_the_prune_and_go_with_a_forgotten_schedule(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    add_schedule(session_factory, "snap", tmp_path)
    job_id = end_job(session_factory, "k-1", "schedule:snap")
    assert take(session_factory, FakeApi(), Clock()) == (1, 0, 0)
    [snapshot] = snapshots(session_factory)

    schedule_id = rows(session_factory)[job_id].schedule_id
    prune(session_factory, older_than_s=86_400.0, now=NOW + timedelta(days=30))
    with session_factory() as session:
        assert session.get(ImportJob, job_id) is None  # the job went
        assert [kept.id for kept in list_snapshots(session, schedule_id)] == [snapshot.id]

    with session_factory() as session:
        remove_schedule(session, "snap", now=NOW, forget=True)
        session.commit()
    assert snapshots(session_factory) == [] and rows(session_factory) == {}
    assert Path(snapshot.path).read_bytes() == EXPORT  # the file is the user's


def test_a_file_schedule_reads_a_relative_folder_from_the_file_s_folder(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from triggers.schedules.schedule_file import load_schedule_file

    schedules_file = tmp_path / "conf" / "schedules.toml"
    schedules_file.parent.mkdir()
    schedules_file.write_text(
        f'[schedules.nightly]\nevery = "1d"\nkind = "file"\ndataset = "{TARGET}"\nfile_id = "f-1"\nsnapshot = "snaps"\n'
    )
    [definition] = load_schedule_file(schedules_file)
    assert definition.snapshot_dir == str(tmp_path / "conf" / "snaps")
    with session_factory() as session:
        report = sync_file_schedules(session, [definition], now=NOW, source_file=str(schedules_file))
        session.commit()
    assert report.added == ["nightly"]
