"""Which remote tasks a job owns, asked about a bounded set: the candidates themselves, or a window of submits."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from jobs import transitions
from store.jobs import begin_submit
from store.task_ownership import owned_task_ids, task_ids_owned_between

from .conftest import POLICY, add_job, at, remote_task


def submitted(session: Session, key: str, *, started_s: float, dataset_id: str = "ds-1", task: bool = True) -> None:
    job = add_job(session, key, now=at(started_s), dataset_id=dataset_id)
    submitting = begin_submit(session, job.id, owner="w", now=at(started_s), lease_s=30)
    assert submitting is not None
    if task:
        transitions.accepted(
            submitting, remote_task(f"task-{key}", progress=0), now=at(started_s + 1), policy=POLICY, message="ok"
        )


def test_owned_task_ids_answers_for_the_candidates_only(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for n in range(5):
            submitted(session, f"j{n}", started_s=n * 100)
        session.commit()
        candidates = ["task-j1", "task-j3", "orphan-1", "orphan-2", "task-j1"]
        assert owned_task_ids(session, candidates) == {"task-j1", "task-j3"}
        assert owned_task_ids(session, []) == set()
        # Many candidates are asked in chunks (bind-parameter limits).
        assert owned_task_ids(session, [f"orphan-{n}" for n in range(1200)] + ["task-j4"]) == {"task-j4"}


def test_the_window_reads_only_the_submits_it_covers(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for n in range(10):
            submitted(session, f"j{n}", started_s=n * 100)
        submitted(session, "other-dataset", started_s=250, dataset_id="ds-2")
        submitted(session, "no-task-yet", started_s=260, task=False)
        session.commit()

    with session_factory() as session:
        owned = task_ids_owned_between(session, "ds-1", since=at(150), until=at(450))
    assert owned == {"task-j2", "task-j3", "task-j4"}
