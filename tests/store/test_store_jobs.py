"""The job repository on a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

import store.jobs
from store.errors import JobAlreadyFinishedError, JobNotFoundError
from store.jobs import (
    cancel_job,
    create_job,
    get_job,
    get_job_by_key,
    job_events,
    list_jobs,
    overdue_jobs,
    stale_jobs,
)
from store.leases import begin_submit
from store.models import ImportJob, ImportKind, JobEvent, JobStatus

from .conftest import NOW, add_job, add_running_job, at, observe, run_concurrently

S = JobStatus
Factory = sessionmaker[Session]


def new(session: Session, key: str, **overrides: object) -> tuple[ImportJob, bool]:
    args: dict[str, object] = {
        "kind": ImportKind.EXPLORER, "dataset_id": "ds-1", "params": {"completion_event_ids": ["e1", "e2"]},
        "idempotency_key": key, "origin": "message:m-1", "deadline_at": at(3600), "now": NOW,
    }  # fmt: skip
    return create_job(session, **(args | overrides))  # type: ignore[arg-type]


def test_create_job_writes_a_pending_row_and_its_first_event(session_factory: Factory) -> None:
    with session_factory() as session:
        job, created = new(session, "msg-1")
        session.commit()
    assert created
    with session_factory() as session:
        loaded = get_job(session, job.id)
        assert loaded is not None
        assert (loaded.kind, loaded.dataset_id, loaded.params) == (
            ImportKind.EXPLORER, "ds-1", {"completion_event_ids": ["e1", "e2"]},
        )  # fmt: skip
        assert (loaded.status, loaded.origin, loaded.idempotency_key) == (S.PENDING, "message:m-1", "msg-1")
        assert (loaded.created_at, loaded.updated_at, loaded.deadline_at) == (NOW, NOW, at(3600))
        assert (loaded.attempts, loaded.poll_count, loaded.progress, loaded.remote_task_id) == (0, 0, None, None)
        assert len(loaded.id) == 36
        events = job_events(session, job.id)
        assert [(e.old_status, e.new_status, e.at) for e in events] == [(None, S.PENDING, NOW)]


def test_a_known_idempotency_key_returns_the_existing_job(session_factory: Factory) -> None:
    with session_factory() as session:
        first, _ = new(session, "schedule:nightly:2026-01-01T00:00")
        session.commit()
    with session_factory() as session:
        again, created = new(session, "schedule:nightly:2026-01-01T00:00", dataset_id="other", now=at(60))
        session.commit()
        assert not created
        assert (again.id, again.dataset_id, again.created_at) == (first.id, "ds-1", NOW)
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 1
        assert len(job_events(session, first.id)) == 1


def test_create_job_falls_back_to_the_winner_when_its_insert_loses_the_race(
    session_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_factory() as session:
        winner, _ = new(session, "k")
        session.commit()
    # The first lookup misses (as if the winner committed just after it), so the insert hits the unique key.
    real_lookup = store.jobs.get_job_by_key
    calls: list[str] = []

    def lookup(session: Session, key: str) -> ImportJob | None:
        calls.append(key)
        return None if len(calls) == 1 else real_lookup(session, key)

    monkeypatch.setattr(store.jobs, "get_job_by_key", lookup)
    with session_factory() as session:
        job, created = new(session, "k")
        assert (job.id, created) == (winner.id, False)
        assert calls == ["k", "k"]
        # The savepoint rolled back only the failed insert: the session is still usable.
        other, created_other = new(session, "k-2")
        session.commit()
        assert created_other
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 2
        assert len(job_events(session, other.id)) == 1


def test_concurrent_creators_with_one_key_get_one_job(session_factory: Factory) -> None:
    def create(_: int) -> tuple[str, bool]:
        with session_factory() as session:
            job, created = new(session, "same-message")
            session.commit()
            return job.id, created

    results = run_concurrently(8, create)
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 1
        assert session.scalar(select(func.count()).select_from(JobEvent)) == 1


def test_list_count_and_lookups(session_factory: Factory) -> None:
    with session_factory() as session:
        a = add_job(session, "a", now=at(1))
        b = add_job(session, "b", now=at(2), dataset_id="ds-2")
        c = add_running_job(session, "c", next_poll_at=at(10), now=at(3))
        session.commit()
    with session_factory() as session:
        assert [j.id for j in list_jobs(session)] == [c.id, b.id, a.id]
        assert [j.id for j in list_jobs(session, status=S.PENDING)] == [b.id, a.id]
        assert [j.id for j in list_jobs(session, status=[S.RUNNING, S.SUBMITTING])] == [c.id]
        assert [j.id for j in list_jobs(session, dataset_id="ds-2")] == [b.id]
        assert list_jobs(session, kind=ImportKind.FILE) == []
        assert [j.id for j in list_jobs(session, limit=1, offset=1)] == [b.id]
        assert get_job(session, "no-such-job") is None
        assert get_job_by_key(session, "b") is not None


def test_a_remote_task_belongs_to_one_job_only(session_factory: Factory) -> None:
    with session_factory() as session:
        add_running_job(session, "a", next_poll_at=NOW)
        other = add_job(session, "b")
        session.commit()
        other.remote_task_id = "task-a"
        with pytest.raises(IntegrityError):
            session.commit()


def test_job_history_reads_back_in_order(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_running_job(session, "a", next_poll_at=at(1))
        session.commit()
        observe(job, "RUNNING", progress=50, now=at(1))
        observe(job, "COMPLETED", progress=100, now=at(2))
        session.commit()
    with session_factory() as session:
        history = [(e.old_status, e.new_status, e.at, e.progress) for e in job_events(session, job.id)]
    assert history == [
        (None, S.PENDING, NOW, None),
        (S.PENDING, S.SUBMITTING, NOW, None),
        (S.SUBMITTING, S.RUNNING, NOW, 0),
        (S.RUNNING, S.COMPLETED, at(2), 100),
    ]


def test_events_need_their_job_and_go_with_it(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(insert(JobEvent).values(job_id="missing", at=NOW, new_status=S.PENDING))
        session.rollback()
        session.execute(delete(ImportJob).where(ImportJob.id == job.id))
        session.commit()
        assert session.scalar(select(func.count()).select_from(JobEvent)) == 0


def test_cancel_job(session_factory: Factory) -> None:
    with session_factory() as session:
        pending = add_job(session, "a")
        running = add_running_job(session, "b", next_poll_at=NOW)
        session.commit()
        cancelled = cancel_job(session, pending.id, now=at(5))
        assert (cancelled.status, cancelled.finished_at, cancelled.message) == (
            S.CANCELLED_LOCALLY, at(5), "cancelled locally",
        )  # fmt: skip
        cancel_job(session, running.id, now=at(5), message="operator said so")
        session.commit()
    with session_factory() as session:
        stopped = get_job(session, running.id)
        assert stopped is not None
        assert (stopped.status, stopped.next_poll_at, stopped.message) == (
            S.CANCELLED_LOCALLY, None, "operator said so",
        )  # fmt: skip
        assert job_events(session, running.id)[-1].new_status is S.CANCELLED_LOCALLY
        with pytest.raises(JobAlreadyFinishedError, match="already finished as CANCELLED_LOCALLY"):
            cancel_job(session, running.id, now=at(6))
        with pytest.raises(JobNotFoundError, match="job nope not found"):
            cancel_job(session, "nope", now=at(6))


def test_stale_jobs_finds_forgotten_pending_and_abandoned_submitting_jobs(session_factory: Factory) -> None:
    with session_factory() as session:
        old_pending = add_job(session, "old", now=NOW)
        add_job(session, "fresh", now=at(250))
        live = add_job(session, "live")
        dead = add_job(session, "dead")
        session.flush()
        assert begin_submit(session, live.id, owner="w1", now=at(100), lease_s=300) is not None
        assert begin_submit(session, dead.id, owner="w2", now=at(100), lease_s=60) is not None
        session.commit()
    with session_factory() as session:
        now = at(300)
        pending = stale_jobs(session, status=S.PENDING, older_than=now - timedelta(seconds=120), limit=10)
        assert [j.id for j in pending] == [old_pending.id]
        submitting = stale_jobs(session, status=S.SUBMITTING, older_than=now, limit=10)
        assert [j.id for j in submitting] == [dead.id]
        assert stale_jobs(session, status=S.SUBMITTING, older_than=now, now=at(500), limit=10) != []
        assert stale_jobs(session, status=S.SUBMITTING, older_than=now, limit=0) == []


def test_overdue_jobs(session_factory: Factory) -> None:
    with session_factory() as session:
        late = add_job(session, "late", deadline_at=at(10))
        later = add_job(session, "later", deadline_at=at(20))
        add_job(session, "in-time", deadline_at=at(100))
        add_job(session, "no-deadline")
        done = add_job(session, "done", deadline_at=at(5))
        cancel_job(session, done.id, now=NOW)
        session.commit()
        assert [j.id for j in overdue_jobs(session, now=at(30), limit=10)] == [late.id, later.id]
        assert [j.id for j in overdue_jobs(session, now=at(30), limit=1)] == [late.id]


def test_a_stale_object_cannot_overwrite_a_newer_row(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_running_job(session, "a", next_poll_at=NOW)
        session.commit()
    with session_factory() as first, session_factory() as second:
        mine = first.get(ImportJob, job.id)
        assert mine is not None
        first.commit()  # the object stays loaded; the write lock (SQLite) is released
        cancel_job(second, job.id, now=at(1))
        second.commit()
        mine.progress = 99
        with pytest.raises(StaleDataError):
            first.commit()
