"""`dsimport db prune` and the periodic prune beat sends: counts per table, dry runs, the one-day floor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from jobs import runtime as task_runtime
from jobs.runtime import JobTuning, Runtime
from store.jobs import begin_submit, create_job
from store.models import ImportJob, ImportKind, JobEvent, JobStatus
from store.state_machine import apply_transition
from tasks.retention_tasks import prune_old_rows
from worker.celery_app import beat_schedule
from worker.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    for name in ("DSIMPORT_PRUNE_OLDER_THAN_S", "DSIMPORT_PRUNE_INTERVAL_S", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def seed(session_factory: sessionmaker[Session], *, old: int, recent: int) -> None:
    now = datetime.now(UTC)
    with session_factory() as session:
        for n in range(old + recent):
            at = now - timedelta(days=60 if n < old else 1)
            job, _ = create_job(
                session,
                kind=ImportKind.CAMPAIGN,
                dataset_id="ds",
                params={"campaign_id": "c"},
                idempotency_key=f"k-{n}",
                origin="test",
                deadline_at=None,
                now=at,
            )
            submitting = begin_submit(session, job.id, owner="w", now=at, lease_s=30)
            assert submitting is not None
            apply_transition(submitting, JobStatus.REJECTED, now=at, message="no")
        session.commit()


def table_sizes(session_factory: sessionmaker[Session]) -> tuple[int, int]:
    with session_factory() as session:
        jobs = session.scalar(select(func.count()).select_from(ImportJob)) or 0
        events = session.scalar(select(func.count()).select_from(JobEvent)) or 0
        return int(jobs), int(events)


def test_prune_prints_rows_per_table_and_a_dry_run_deletes_nothing(
    capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session]
) -> None:
    seed(session_factory, old=3, recent=2)
    assert main(["db", "prune", "--older-than", "30d", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "jobs                      3  would delete",
        "job_events                9  would delete",
        "dead_letters              0  would delete",
        "schedule_items            0  would delete",
        "webhook_deliveries        0  would delete",
        "webhook_attempts          0  would delete",
    ]
    assert table_sizes(session_factory) == (5, 15)

    assert main(["db", "prune", "--older-than", "4w2d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "dry_run": False,
        "older_than_s": 30 * 86_400,
        "jobs": 3,
        "job_events": 9,
        "dead_letters": 0,
        "schedule_items": 0,
        "webhook_deliveries": 0,
        "webhook_attempts": 0,
    }
    assert table_sizes(session_factory) == (2, 6)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        ("12h", "'12h' is shorter than one day"),
        ("3600", "'3600' is shorter than one day"),
        ("soon", "cannot read 'soon': use e.g. 30d, 12h, 1w2d"),
        ("30 d", "cannot read '30 d'"),
        ("99999999w", "longer than 1000 years"),
    ],
)
def test_a_bad_age_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], age: str, expected: str) -> None:
    assert main(["db", "prune", "--older-than", age]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.strip().count("\n") == 0


def test_the_periodic_prune_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "prune-old-rows" not in beat_schedule(load_settings())
    monkeypatch.setenv("DSIMPORT_PRUNE_OLDER_THAN_S", "")
    assert load_settings().prune_older_than_s == 0
    monkeypatch.setenv("DSIMPORT_PRUNE_OLDER_THAN_S", "2592000")
    monkeypatch.setenv("DSIMPORT_PRUNE_INTERVAL_S", "600")
    entry = beat_schedule(load_settings())["prune-old-rows"]
    assert entry == {"task": "dsimport.prune", "schedule": 600.0, "args": [2592000.0], "options": {"expires": 600.0}}
    monkeypatch.setenv("DSIMPORT_PRUNE_OLDER_THAN_S", "3600")
    with pytest.raises(SettingsError, match=r"prune_older_than_s: must be 0 \(off\) or at least 86400 s"):
        load_settings()


def test_the_periodic_task_prunes_through_the_runtime(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(session_factory, old=2, recent=1)
    runtime = Runtime(
        session_factory=session_factory,
        client_factory=lambda: pytest.fail("no API call expected"),
        async_client_factory=lambda: pytest.fail("no API call expected"),
        poll_policy=None,  # type: ignore[arg-type]
        tuning=JobTuning(),
    )
    monkeypatch.setattr(task_runtime, "_builder", lambda: runtime)
    monkeypatch.setattr(task_runtime, "_runtime", None)
    result = prune_old_rows.apply(args=[30 * 86_400.0]).get()
    assert result == {
        "jobs": 2,
        "job_events": 6,
        "dead_letters": 0,
        "schedule_items": 0,
        "webhook_deliveries": 0,
        "webhook_attempts": 0,
        "complete": True,
    }
    assert table_sizes(session_factory) == (1, 3)
