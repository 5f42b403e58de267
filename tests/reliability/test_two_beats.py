"""Two beats and two workers on one ledger: a schedule firing every second and a stream of requests, nothing twice.

Two beats by mistake both send every fire; two workers both run fire tasks, both read the request stream, both
submit. The ledger is what keeps it single: a fire is claimed once per (schedule, fire time), a message id is a
job's idempotency key, a submit is let through once per job. The emulator counts what really started remotely:
exactly one task per job, each of its own job's kind.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ScheduleRun, ScheduleSource
from store.schedules import create_schedule, get_schedule, set_paused
from tests.fixtures.emulators import explorer_events
from tests.integration.service import ServiceProcesses, wait_for_jobs
from triggers.schedules.fire_times import fire_time_iso, parse_fire_time
from triggers.schedules.specs import build_definition

from .harness import STREAM, all_jobs, count, explorer_message, message_jobs, wait_until
from .harness import shared_redis_url as redis_db

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SCHEDULE = "often"
MESSAGES = 24
RESENT = 8  # messages sent a second time (a producer retrying)
RUN_S = 8.0
BEATS = ("beat-a", "beat-b")
WORKERS = ("worker-a", "worker-b")
SENT_RE = re.compile(rf"firing schedule {SCHEDULE} at (\S+Z)")


@pytest.fixture
def broker_redis_url() -> str:
    return redis_db(14)


def runs(sessions: sessionmaker[Session]) -> list[ScheduleRun]:
    with sessions() as session:
        schedule = get_schedule(session, SCHEDULE)
        assert schedule is not None
        return list(session.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id)))


def produce(client: redis.Redis, dataset_id: str) -> list[str]:
    """Write the messages over the run, some of them twice; returns the ids sent."""
    sent: list[str] = []
    for n in range(MESSAGES):
        time.sleep(RUN_S / MESSAGES)
        message_id = f"order-{n}"
        client.xadd(STREAM, {"body": explorer_message(message_id, dataset_id, f"evt-{n}")})
        sent.append(message_id)
        if n % (MESSAGES // RESENT) == 0:
            client.xadd(STREAM, {"body": explorer_message(message_id, dataset_id, f"evt-{n}")})
    return sent


def test_two_beats_and_two_workers_import_each_fire_and_each_message_once(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    ledger: sessionmaker[Session],
    broker_url: str,
    tmp_path: Path,
) -> None:
    processes.env.update({"DSIMPORT_STREAM_BLOCK_S": "0.5", "DSIMPORT_SCHEDULES_REFRESH_S": "1"})
    emulator.seed(explorer_events([*(f"evt-{n}" for n in range(MESSAGES)), "evt-scheduled"]))
    scheduled_target = api.create_dataset("scheduled", "d").id
    requested_target = api.create_dataset("requested", "d").id
    with ledger() as session:
        definition = build_definition(
            SCHEDULE,
            kind="explorer",
            dataset=scheduled_target,
            every="1s",
            # One import per fire is what is counted: skipping what the target holds would make later fires empty.
            options={"events": ["evt-scheduled"], "skip_existing": False},
        )
        create_schedule(session, definition, source=ScheduleSource.CLI, now=datetime.now(UTC))
        session.commit()

    workers = [processes.start_worker(name) for name in WORKERS]
    beats = [processes.start(beat, "beat") for beat in BEATS]
    log_dir = tmp_path / "logs"

    def log(name: str) -> str:
        return (log_dir / f"{name}.log").read_text(errors="replace")

    # Both beats firing and both stream consumers reading before the requests start.
    wait_until(
        lambda: all(SENT_RE.search(log(beat)) for beat in BEATS)
        and all("stream consumer" in log(worker) for worker in WORKERS),
        timeout_s=60,
        what="both beats and both workers to start",
        logs=processes.logs,
    )
    client = redis.Redis.from_url(broker_url)
    sent = produce(client, requested_target)
    with ledger() as session:
        set_paused(session, SCHEDULE, True, now=datetime.now(UTC))
        session.commit()
    paused_at = datetime.now(UTC)
    time.sleep(1.5)  # a refresh of both beats: no fire after this

    fired = {beat: SENT_RE.findall(log(beat)) for beat in BEATS}
    both = set(fired["beat-a"]) & set(fired["beat-b"])
    # A fire sent just before the pause may find the schedule paused when it runs: no run for it, rightly.
    surely_run = {fire for fire in both if parse_fire_time(fire) < paused_at - timedelta(seconds=1)}
    wait_until(
        lambda: surely_run <= {fire_time_iso(run.fire_time) for run in runs(ledger)}
        and None not in message_jobs(ledger, sent).values(),
        # Generous: on a loaded 2-core CI machine the fires queue behind the submits; what is asserted is "once".
        timeout_s=180,
        what="every fire sent by both beats to run and every message to become a job",
        logs=processes.logs,
    )
    jobs = wait_for_jobs(ledger, all_jobs(ledger), timeout_s=120, on_timeout=processes.logs)
    assert all(process.poll() is None for process in workers + beats), processes.logs()

    schedule_runs = runs(ledger)
    scheduled = [job for job in jobs.values() if job.origin == f"schedule:{SCHEDULE}"]
    requested = [job for job in jobs.values() if job.origin == f"stream:{STREAM}"]
    figures = count(jobs, emulator.stats(), requested=len(scheduled) + len(sent))
    submits = {name: len(re.findall(r"dsimport\.submit\[[^]]+\] succeeded", log(name))) for name in WORKERS}
    print(
        f"two beats, two workers: fires sent a={len(fired['beat-a'])} b={len(fired['beat-b'])} both={len(both)}, "
        f"runs={len(schedule_runs)}, messages={len(sent)} (+{RESENT} again), submits by worker={submits}: "
        f"{figures.line()}"
    )
    # Both beats really fired the same times, and both workers really worked.
    assert len(surely_run) >= 4, fired
    assert all(n > 0 for n in submits.values()), submits
    # One run per fire time, one job per run; one job per message id.
    fire_times = Counter(run.fire_time for run in schedule_runs)
    assert all(n == 1 for n in fire_times.values()) and len(scheduled) == len(schedule_runs) >= len(surely_run)
    assert sorted(job.idempotency_key for job in requested) == sorted(f"message:{m}" for m in sent)
    assert len(jobs) == len(scheduled) + len(sent)
    # One remote import per job, of the job's own kind; every job ended.
    assert figures.lost == 0 and figures.doubled == 0 and figures.mislabelled == 0, figures.line()
    assert figures.by_status == {"COMPLETED": len(jobs)}, figures.line()
    assert emulator.stats(include_tasks=False)["tasks_created"] == {
        scheduled_target: len(scheduled),
        requested_target: len(sent),
    }
    client.close()

