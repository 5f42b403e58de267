"""Claiming work: submit exactly once, due polls claimed by one worker each, leases that expire."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from api_client import TransportError
from jobs import transitions
from store.jobs import get_job, job_events
from store.leases import acquire_lease, begin_submit, claim_due_jobs, release_lease
from store.models import JobStatus

from .conftest import NOW, add_job, add_running_job, at, observe, run_concurrently

S = JobStatus
Factory = sessionmaker[Session]


def test_begin_submit_moves_pending_to_submitting_once(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        session.commit()
        submitting = begin_submit(session, job.id, owner="w1", now=at(5), lease_s=30)
        assert submitting is job  # the session's object is refreshed, not duplicated
        assert (job.status, job.attempts, job.submit_started_at, job.updated_at) == (S.SUBMITTING, 1, at(5), at(5))
        assert (job.lease_owner, job.lease_expires_at) == ("w1", at(35))
        assert begin_submit(session, job.id, owner="w2", now=at(6), lease_s=30) is None
        assert begin_submit(session, "no-such-job", owner="w2", now=at(6), lease_s=30) is None
        session.commit()
        events = job_events(session, job.id)
        assert [(e.old_status, e.new_status, e.at) for e in events][-1] == (S.PENDING, S.SUBMITTING, at(5))


def test_a_retried_submit_counts_its_attempts(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        first = begin_submit(session, job.id, owner="w1", now=at(1), lease_s=30)
        assert first is not None
        transitions.retry_later(first, TransportError("connection refused", method="POST", url="u"), now=at(2))
        session.commit()
        second = begin_submit(session, job.id, owner="w2", now=at(10), lease_s=30)
        assert second is not None
        assert (second.attempts, second.submit_started_at, second.lease_owner) == (2, at(10), "w2")


def test_two_deliveries_of_one_submit_message_send_once(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        session.commit()

    def deliver(index: int) -> bool:
        with session_factory() as session:
            won = begin_submit(session, job.id, owner=f"w{index}", now=at(1), lease_s=30) is not None
            session.commit()
            return won

    assert sum(run_concurrently(8, deliver)) == 1
    with session_factory() as session:
        loaded = get_job(session, job.id)
        assert loaded is not None and (loaded.status, loaded.attempts) == (S.SUBMITTING, 1)
        assert [e.new_status for e in job_events(session, job.id)] == [S.PENDING, S.SUBMITTING]


def test_claim_due_jobs_takes_due_running_jobs_most_overdue_first(session_factory: Factory) -> None:
    with session_factory() as session:
        late = add_running_job(session, "late", next_poll_at=at(1))
        later = add_running_job(session, "later", next_poll_at=at(5))
        add_running_job(session, "future", next_poll_at=at(60))
        add_job(session, "pending")
        session.commit()
        claimed = claim_due_jobs(session, owner="p1", now=at(10), lease_s=30, limit=10)
        assert [j.id for j in claimed] == [late.id, later.id]
        assert {(j.lease_owner, j.lease_expires_at) for j in claimed} == {("p1", at(40))}
        session.commit()
        assert claim_due_jobs(session, owner="p2", now=at(11), lease_s=30, limit=10) == []
        assert claim_due_jobs(session, owner="p2", now=at(11), lease_s=30, limit=0) == []


def test_claim_due_jobs_respects_the_limit(session_factory: Factory) -> None:
    with session_factory() as session:
        jobs = [add_running_job(session, f"j{i}", next_poll_at=at(i)) for i in range(5)]
        session.commit()
        first = claim_due_jobs(session, owner="p1", now=at(10), lease_s=30, limit=2)
        second = claim_due_jobs(session, owner="p2", now=at(10), lease_s=30, limit=10)
        assert [j.id for j in first] == [jobs[0].id, jobs[1].id]
        assert [j.id for j in second] == [j.id for j in jobs[2:]]


def test_an_expired_lease_makes_the_job_claimable_again(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_running_job(session, "a", next_poll_at=at(1))
        session.commit()
    with session_factory() as session:
        assert [j.id for j in claim_due_jobs(session, owner="p1", now=at(2), lease_s=30, limit=10)] == [job.id]
        session.commit()
    with session_factory() as session:
        assert claim_due_jobs(session, owner="p2", now=at(31), lease_s=30, limit=10) == []
        taken = claim_due_jobs(session, owner="p2", now=at(32), lease_s=30, limit=10)
        assert [(j.id, j.lease_owner, j.lease_expires_at) for j in taken] == [(job.id, "p2", at(62))]
        session.commit()


def test_a_poller_whose_lease_was_taken_over_cannot_write(session_factory: Factory) -> None:
    with session_factory() as session:
        add_running_job(session, "a", next_poll_at=at(1))
        session.commit()
    with session_factory() as slow, session_factory() as fast:
        [mine] = claim_due_jobs(slow, owner="slow", now=at(2), lease_s=10, limit=10)
        slow.commit()
        [theirs] = claim_due_jobs(fast, owner="fast", now=at(20), lease_s=10, limit=10)
        observe(theirs, "COMPLETED", progress=100, now=at(20))
        fast.commit()
        observe(mine, "COMPLETED", progress=100, now=at(21))
        with pytest.raises(StaleDataError):
            slow.commit()
        slow.rollback()
        assert [e.new_status for e in job_events(slow, mine.id)].count(S.COMPLETED) == 1


def test_concurrent_pollers_never_claim_the_same_job(session_factory: Factory) -> None:
    with session_factory() as session:
        expected = {add_running_job(session, f"j{i:02}", next_poll_at=at(i % 7)).id for i in range(40)}
        session.commit()

    def poller(index: int) -> list[str]:
        mine: list[str] = []
        while True:
            with session_factory() as session:
                batch = claim_due_jobs(session, owner=f"p{index}", now=at(10), lease_s=60, limit=3)
                session.commit()
            if not batch:
                return mine
            mine.extend(job.id for job in batch)

    claimed = [job_id for batch in run_concurrently(6, poller) for job_id in batch]
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert set(claimed) == expected


def test_acquire_and_release_a_lease(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        assert begin_submit(session, job.id, owner="dead-worker", now=NOW, lease_s=30) is not None
        session.commit()
        assert acquire_lease(session, job.id, status=S.SUBMITTING, owner="sweep", now=at(10), lease_s=30) is None
        assert acquire_lease(session, job.id, status=S.PENDING, owner="sweep", now=at(31), lease_s=30) is None
        taken = acquire_lease(session, job.id, status=S.SUBMITTING, owner="sweep", now=at(31), lease_s=30)
        assert taken is job and (job.lease_owner, job.lease_expires_at) == ("sweep", at(61))
        assert release_lease(session, job.id, owner="dead-worker") is False
        assert release_lease(session, job.id, owner="sweep") is True
        assert (job.lease_owner, job.lease_expires_at) == (None, None)
        session.commit()


def test_two_sweeps_recover_a_submitting_job_once(session_factory: Factory) -> None:
    with session_factory() as session:
        job = add_job(session, "a")
        assert begin_submit(session, job.id, owner="dead-worker", now=NOW, lease_s=30) is not None
        session.commit()

    def sweep(index: int) -> bool:
        with session_factory() as session:
            won = acquire_lease(session, job.id, status=S.SUBMITTING, owner=f"s{index}", now=at(60), lease_s=30)
            session.commit()
            return won is not None

    assert sum(run_concurrently(6, sweep)) == 1
