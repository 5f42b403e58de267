"""`dsimport schedules backfill` end to end: the command, a real worker and beat on Redis, the emulator on a socket,
both ledgers. The emulator's own dedupe is off, so an event imported twice shows up twice in the target; its
inventory (records by origin) is the evidence.

- a backfill overlapping a live fire imports every event of the two windows once, and the watermark stays where
  the fire left it; the same command again finds the backfill done and requests nothing;
- a backfill whose task died inside a chunk (the chunk's run claimed, nothing recorded) is resumed by the workers'
  sweep once the chunk's lease has run out, and finishes with every event once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from cli.main import main
from emulator.testing import EmulatorServer
from store.models import BackfillStatus, ImportJob, ScheduleBackfill, ScheduleRun, ScheduleSource
from store.schedule_runs import claim_chunk_run
from store.schedules import create_schedule, get_schedule
from tests.integration.service import ServiceProcesses, wait_for_jobs
from triggers.schedules.backfill import request_backfill
from triggers.schedules.firing import FireContext, FireOutcome, fire
from triggers.schedules.specs import build_definition
from worker.celery_app import create_app
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MINUTE = 60


@pytest.fixture
def service_overrides() -> dict[str, str]:
    # The schedules suite's stack, with a sweep every second so a dead backfill is resumed within the test.
    return {
        "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
        "DSIMPORT_SCHEDULES_REFRESH_S": "0.5",
        "DSIMPORT_LEASE_S": "5",
        "DSIMPORT_API_TIMEOUT_S": "2",
        "DSIMPORT_API_MAX_ATTEMPTS": "2",
        "DSIMPORT_SCHEDULE_SETTLE_LAG_S": "0",
        "DSIMPORT_RECOVERY_INTERVAL_S": "1",
    }


@pytest.fixture
def stack(
    emulator: EmulatorServer,
    processes: ServiceProcesses,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> Iterator[ServiceProcesses]:
    emulator.configure(dedupe_imports=False)
    processes.start_worker(concurrency=2)
    processes.start_beat()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(settings.home))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", settings.broker_url)
    monkeypatch.setenv("DSIMPORT_SCHEDULE_SETTLE_LAG_S", "0")
    monkeypatch.delenv("DSIMPORT_SCHEDULES_FILE", raising=False)
    yield processes


def seed_events(emulator: EmulatorServer, offsets_min: list[int]) -> dict[str, int]:
    """One event per offset (minutes from now, negative), named by it; returns name -> offset."""
    events = {f"e{offset:+04d}": offset for offset in offsets_min}
    emulator.seed(
        {
            "events": [
                {"event_id": name, "created_at_offset_s": offset * MINUTE,
                 "request_messages": [{"role": "user", "content": name}]}
                for name, offset in events.items()
            ]
        }
    )  # fmt: skip
    return events


def add_window(ledger: sessionmaker[Session], name: str, target: str, since: datetime) -> None:
    # Paused: beat (there for its ticks) never fires it; the test fires it by hand.
    definition = build_definition(
        name,
        kind="explorer-window",
        dataset=target,
        every="1h",
        options={"since": since.isoformat(), "chunk_size": 2},
        paused=True,
    )
    with ledger() as session:
        create_schedule(session, definition, source=ScheduleSource.CLI, now=datetime.now(UTC))
        session.commit()


@pytest.fixture
def context(emulator: EmulatorServer, settings: Settings, ledger: sessionmaker[Session]) -> Iterator[FireContext]:
    """What this process fires with: the ledger, the emulator, and the workers' broker for the submits."""
    app = create_app(settings)
    yield FireContext(
        session_factory=ledger,
        client_factory=lambda: DatasetsClient(emulator.api_key, base_url=emulator.url),
        send=lambda job_id: app.send_task("dsimport.submit", args=[job_id]),
        now=lambda: datetime.now(UTC),
        lease_s=30.0,
        deadline_s=600.0,
        settle_lag_s=0.0,
    )
    app.close()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def all_jobs_done(ledger: sessionmaker[Session], processes: ServiceProcesses) -> dict[str, ImportJob]:
    with ledger() as session:
        ids = list(session.scalars(select(ImportJob.id)))
    return wait_for_jobs(ledger, ids, timeout_s=60, on_timeout=processes.logs)


def origins(emulator: EmulatorServer, target: str) -> Counter[str]:
    """The target's records by origin (``event:ID``): an event imported twice counts 2."""
    return Counter(record["origin"] for record in emulator.inventory([target])["records"].get(target, []))


def test_a_backfill_overlapping_a_live_fire_imports_each_event_once_and_leaves_the_watermark(
    stack: ServiceProcesses,
    emulator: EmulatorServer,
    api: DatasetsClient,
    ledger: sessionmaker[Session],
    context: FireContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = api.create_dataset("target", "filled by a fire and a backfill").id
    # Clear of the chunks' half-hour boundaries and of the fire's window start (90 minutes ago).
    events = seed_events(emulator, [-170, -155, -130, -110, -100, -80, -70, -50, -40, -20, -5])
    now = datetime.now(UTC).replace(microsecond=0)
    add_window(ledger, "win", target, since=now - timedelta(minutes=90))
    live = fire(context, "win", now, trigger="manual")  # [now-90m, now)
    assert live.outcome == FireOutcome.SUBMITTED
    with ledger() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == now

    # From 3 hours ago to 30 minutes ago, by half hours: the last two hours overlap the fire's window.
    code, out, err = cli(
        capsys, "schedules", "backfill", "win", "--since", "3h ago", "--until", "30m ago", "--step", "30m",
        "--wait", "60", "--json",
    )  # fmt: skip
    assert code == 0, err + stack.logs()
    done = json.loads(out)
    assert (done["status"], done["chunks_done"], done["chunks"], done["created"]) == ("DONE", 5, 5, True)
    # 9 events in the range, 4 of them imported by the fire already: 5 requested, in chunks of 2.
    assert (done["offered"], done["sampled_out"], done["requested"], done["jobs"]) == (9, 0, 5, 3)
    all_jobs_done(ledger, stack)

    assert origins(emulator, target) == Counter({f"event:{name}": 1 for name in events})
    with ledger() as session:
        schedule = get_schedule(session, "win")
        assert schedule is not None and schedule.watermark == now
        runs = list(session.scalars(select(ScheduleRun).where(ScheduleRun.backfill_id == done["id"])))
    assert sorted(run.trigger for run in runs) == ["backfill"] * 5
    # Only the events before the fire's window were left for the backfill: 5 of them, in three chunks' jobs.
    assert sum(run.item_count or 0 for run in runs) == 5
    # Chunks of 2: three imports for the fire's 6 events, three for the backfill's 5.
    assert emulator.stats(include_tasks=False)["tasks_created"][target] == 6

    # The same range again (by its times: "3h ago" read a second later is another range): found done.
    code, out, err = cli(
        capsys, "schedules", "backfill", "win", "--since", done["since"], "--until", done["until"], "--step", "30m"
    )
    assert code == 0, err
    assert f"backfill {done['id']} found" in out and "DONE" in out
    code, out, _ = cli(capsys, "schedules", "show", "win")
    assert code == 0 and "backfills (latest first):" in out and "5/5 chunks, DONE" in out
    assert " backfill " in out
    all_jobs_done(ledger, stack)
    assert origins(emulator, target) == Counter({f"event:{name}": 1 for name in events})


def test_a_backfill_whose_task_died_in_a_chunk_is_resumed_and_imports_each_event_once(
    stack: ServiceProcesses,
    emulator: EmulatorServer,
    api: DatasetsClient,
    ledger: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = api.create_dataset("target", "filled by a backfill").id
    events = seed_events(emulator, [-55, -45, -35, -25, -15, -12])  # clear of the 20-minute boundaries
    now = datetime.now(UTC).replace(microsecond=0)
    add_window(ledger, "win", target, since=now)
    since, until = now - timedelta(hours=1), now - timedelta(minutes=10)
    with ledger() as session:
        backfill = request_backfill(
            session, "win", since=since, until=until, step_s=1200, now=datetime.now(UTC), settle_lag_s=0
        ).backfill
        # A task claimed the first chunk and died before it recorded anything: its lease (5 s) must run out.
        claim = claim_chunk_run(
            session, backfill.schedule_id, backfill.id, since, owner="dead", now=datetime.now(UTC), lease_s=5.0
        )
        assert claim.run is not None
        session.commit()
        backfill_id = backfill.id

    # The same command resumes it: its task finds the chunk held, and the sweep sends it again later.
    code, out, err = cli(
        capsys, "schedules", "backfill", "win", "--since", since.isoformat(), "--until", until.isoformat(),
        "--step", "20m", "--wait", "90",
    )  # fmt: skip
    assert code == 0, err + stack.logs()
    assert f"backfill {backfill_id} resumed" in out and "3/3 chunks, DONE" in out
    all_jobs_done(ledger, stack)

    assert origins(emulator, target) == Counter({f"event:{name}": 1 for name in events})
    with ledger() as session:
        row = session.get(ScheduleBackfill, backfill_id)
        assert row is not None and row.status == BackfillStatus.DONE
        runs = list(
            session.scalars(
                select(ScheduleRun).where(ScheduleRun.backfill_id == backfill_id).order_by(ScheduleRun.fire_time)
            )
        )
    assert [run.attempts for run in runs] == [2, 1, 1]
    assert runs[0].owner != "dead"
