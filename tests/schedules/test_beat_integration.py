"""Schedules end to end: real `python -m cli beat` and worker processes on Redis, the emulator on a socket, and
both ledgers. Two beats at once must not double an import; every kind must import each thing exactly once."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportJob, JobStatus, RunStatus, Schedule, ScheduleItem, ScheduleRun, ScheduleSource
from store.schedules import create_schedule, get_schedule, set_paused
from tests.integration.service import ServiceProcesses
from triggers.schedules.fire_times import fire_time_iso, parse_fire_time
from triggers.schedules.specs import build_definition

# Above the sum of the test's own waits (the suite-wide 120 s is not).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PAUSED_RE = re.compile(r"'schedule': 'often', 'fire_time': '(\S+Z)', 'outcome': 'paused'")
SENT_RE = re.compile(r"firing schedule ([\w.-]+) at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


def _now() -> datetime:
    return datetime.now(UTC)


def add(sessions: sessionmaker[Session], name: str, kind: str, dataset: str, **options: Any) -> None:
    definition = build_definition(name, kind=kind, dataset=dataset, every="1s", options=options)
    with sessions() as session:
        create_schedule(session, definition, source=ScheduleSource.CLI, now=_now())
        session.commit()


def pause(sessions: sessionmaker[Session], name: str, paused: bool) -> None:
    with sessions() as session:
        set_paused(session, name, paused, now=_now())
        session.commit()


def runs_of(sessions: sessionmaker[Session], name: str) -> list[ScheduleRun]:
    with sessions() as session:
        schedule = get_schedule(session, name)
        assert schedule is not None
        query = select(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id).order_by(ScheduleRun.fire_time)
        return list(session.scalars(query))


def jobs_of(sessions: sessionmaker[Session], name: str) -> list[ImportJob]:
    with sessions() as session:
        return list(session.scalars(select(ImportJob).where(ImportJob.origin == f"schedule:{name}")))


def items_of(sessions: sessionmaker[Session], name: str) -> list[str]:
    with sessions() as session:
        query = select(ScheduleItem.item_id).join(Schedule).where(Schedule.name == name)
        return sorted(session.scalars(query))


def sent_fires(log_dir: Path, beat: str) -> list[str]:
    text = (log_dir / f"{beat}.log").read_text(errors="replace")
    return [fire for name, fire in SENT_RE.findall(text) if name == "often"]


def found_paused(log_dir: Path) -> set[datetime]:
    """Fires the worker ran and found the schedule paused (its task result says so)."""
    text = (log_dir / "worker.log").read_text(errors="replace")
    return {parse_fire_time(fire) for fire in PAUSED_RE.findall(text)}


def last_tick_sent(log_dir: Path, beat: str) -> datetime | None:
    """When ``beat`` last sent one of its periodic tasks (poll ticks every 0.5 s): evidence that it is live."""
    last = None
    for line in (log_dir / f"{beat}.log").read_text(errors="replace").splitlines():
        if "Sending due task" in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                last = datetime.fromisoformat(json.loads(line)["ts"])
    return last


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs()}")
        time.sleep(0.2)


def stop(process: Any) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=15)


@pytest.mark.timeout(240)
def test_two_beats_at_once_fire_each_time_once(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    ledger: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    emulator.seed({"events": [{"event_id": "evt-1", "request_messages": [{"role": "user", "content": "q"}]}]})
    target = api.create_dataset("target", "filled every second").id
    processes.start_worker(concurrency=4)
    beat_a = processes.start("beat-a", "beat")
    beat_b = processes.start("beat-b", "beat")
    log_dir = tmp_path / "logs"
    for beat in ("beat-a", "beat-b"):
        wait_until(
            lambda beat=beat: "beat: Starting" in (log_dir / f"{beat}.log").read_text(errors="replace"),  # type: ignore[misc]
            timeout_s=30,
            what=f"{beat} to start",
            logs=processes.logs,
        )

    # Added while both beats run: they pick it up from the table, no restart.
    # The same event on every fire, each fire one import: the fires are what is counted, so no skipping.
    add(ledger, "often", "explorer", target, events=["evt-1"], skip_existing=False)
    wait_until(lambda: len(runs_of(ledger, "often")) >= 4, timeout_s=20, what="four fires", logs=processes.logs)

    pause(ledger, "often", True)
    paused_at = _now()
    # Both beats stay live through the pause, past the refresh that notices it: no fire from them then means
    # something. They prove it by sending their poll ticks.
    live_until = paused_at + timedelta(seconds=2.5)
    wait_until(
        lambda: all((last_tick_sent(log_dir, beat) or paused_at) > live_until for beat in ("beat-a", "beat-b")),
        timeout_s=20,
        what="both beats to tick through the pause",
        logs=processes.logs,
    )
    pause(ledger, "often", False)
    resumed_at = _now()
    wait_until(
        lambda: any(run.fire_time > resumed_at for run in runs_of(ledger, "often")),
        timeout_s=20,
        what="a fire after the resume",
        logs=processes.logs,
    )
    time.sleep(1.5)
    stop(beat_a)
    stop(beat_b)

    sent_a, sent_b = sent_fires(log_dir, "beat-a"), sent_fires(log_dir, "beat-b")
    sent = {parse_fire_time(fire) for fire in sent_a + sent_b}
    # Both beats really sent the same fires: each of those reached the worker twice.
    assert len(set(sent_a) & set(sent_b)) >= 3, (sent_a, sent_b)
    # Neither beat sent anything while the schedule was paused (allowing a few 0.5 s table refreshes to notice: a
    # loaded machine runs them late).
    assert [fire for fire in sent if paused_at + timedelta(seconds=2.5) < fire <= resumed_at] == []
    # A fire sent just before a beat noticed the pause, or sent earlier and still queued when the pause began (a
    # busy worker runs it late), finds the schedule paused when it runs: no run, no job (the worker reports it
    # "paused").
    window = (paused_at - timedelta(seconds=5), resumed_at + timedelta(seconds=1))
    maybe_paused = {fire for fire in sent if window[0] < fire <= window[1]}

    def fired() -> set[datetime]:
        return {run.fire_time for run in runs_of(ledger, "often")}

    # Generous: on a loaded machine the fires of two beats queue behind each other; what is asserted is "once".
    def unaccounted() -> set[datetime]:
        return sent - maybe_paused - fired() - found_paused(log_dir)

    wait_until(
        lambda: not unaccounted(),
        timeout_s=90,
        what="the worker to run every fire sent (or find the schedule paused)",
        logs=lambda: f"paused at {paused_at}, resumed at {resumed_at}, missing {sorted(unaccounted())}\n"
        + processes.logs(),
    )
    # Only fires of the pause (or queued into it) were skipped as paused.
    assert all(fire <= resumed_at + timedelta(seconds=1) for fire in found_paused(log_dir) - fired())
    runs = runs_of(ledger, "often")
    jobs = jobs_of(ledger, "often")
    fire_times = [fire_time_iso(run.fire_time) for run in runs]
    assert len(fire_times) == len(set(fire_times))
    assert set(fired()) <= sent
    assert len(jobs) == len(fire_times), "one job per distinct fire time"
    assert sorted(job.idempotency_key for job in jobs) == sorted(f"schedule:often:{fire}" for fire in fire_times)
    assert all(run.status == RunStatus.SUBMITTED and len(run.job_ids) == 1 for run in runs)
    # The API's side: one remote import per fire time, however many beats sent it (the worker still submits
    # after the beats stopped; their poll ticks are not needed for that).
    wait_until(
        lambda: all(job.remote_task_id is not None for job in jobs_of(ledger, "often")),
        timeout_s=30,
        what="every job to be submitted",
        logs=processes.logs,
    )
    assert emulator.stats(include_tasks=False)["tasks_created"][target] == len(fire_times)
    seconds = sorted(int(run.fire_time.timestamp()) for run in runs)
    assert any(b - a > 1 for a, b in itertools.pairwise(seconds)), "the pause left a gap"
    # The ledger alone would not see a fire POSTed twice: count what the API really started, once every job has
    # its remote task.
    def submitted() -> list[ImportJob]:
        found = jobs_of(ledger, "often")
        return found if all(job.remote_task_id for job in found) else []

    wait_until(lambda: bool(submitted()), timeout_s=60, what="every job to be submitted", logs=processes.logs)
    stats = emulator.stats()
    assert stats["tasks_created"] == {target: len(jobs)}, "one remote import per fire"
    assert {job.remote_task_id for job in submitted()} == set(stats["tasks"])


def _event(event_id: str, offset_s: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "created_at_offset_s": offset_s,
        "request_messages": [{"role": "user", "content": f"question {event_id}"}],
        "response_messages": [{"role": "assistant", "content": f"answer {event_id}"}],
    }


@pytest.mark.timeout(240)
def test_each_kind_imports_everything_once_while_beat_fires_every_second(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    ledger: sessionmaker[Session],
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Without the emulator's own dedupe, a record imported twice shows up twice in the target.
    emulator.configure(dedupe_imports=False)
    campaign = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"
    emulator.seed(
        {
            "events": [
                _event("old", -1000),  # before the window's start: never imported by the window
                _event("camp-1", -1000),
                _event("camp-2", -1000),
                _event("w-1", -20),
                _event("w-2", -15),
                _event("w-3", -10),
            ],
        }
    )
    target = api.create_dataset("target", "filled by schedules").id
    source = api.create_dataset("source", "copied").id
    for n in range(5):
        api.create_record(source, {"messages": [{"role": "user", "content": f"r{n}"}]}, {"n": n})

    since = (_now() - timedelta(seconds=25)).isoformat()
    add(ledger, "window", "explorer-window", target, since=since, chunk_size=2)
    # The copy schedule comes from the schedules file, synced by beat when it starts.
    schedules_file = tmp_path / "schedules.toml"
    schedules_file.write_text(
        f'[schedules.mirror]\nevery = "1s"\nkind = "dataset-copy"\ndataset = "{target}"\n'
        f'from_dataset = "{source}"\nchunk_size = 2\n'
    )
    processes.env["DSIMPORT_SCHEDULES_FILE"] = str(schedules_file)
    processes.start_worker(concurrency=4)
    processes.start_beat()

    wait_until(lambda: len(items_of(ledger, "window")) >= 3, timeout_s=30, what="the first window", logs=processes.logs)
    # Things that appear while the schedules run: picked up by the next fires, once. The campaign completes a few
    # seconds after its schedule is added (at run time, like the command line does).
    emulator.seed({"events": [_event("w-4", 0), _event("w-5", 0)]})
    emulator.seed(
        {
            "campaigns": [
                {"id": campaign, "name": "late review", "selected_event_ids": ["camp-1", "camp-2"],
                 "status": "RUNNING", "completes_after_s": 4},
            ]
        }
    )  # fmt: skip
    add(ledger, "late", "campaign-when-done", target, campaign=campaign)
    for n in range(5, 7):
        api.create_record(source, {"messages": [{"role": "user", "content": f"r{n}"}]}, {"n": n})

    def settled() -> bool:
        with ledger() as session:
            late = get_schedule(session, "late")
            finished = late is not None and late.finished_at is not None
        jobs = [job for name in ("window", "late", "mirror") for job in jobs_of(ledger, name)]
        return (
            finished
            and items_of(ledger, "window") == ["w-1", "w-2", "w-3", "w-4", "w-5"]
            and len(items_of(ledger, "mirror")) == 7
            and all(job.status in {JobStatus.COMPLETED} for job in jobs)
        )

    wait_until(settled, timeout_s=60, what="every schedule to finish its imports", logs=processes.logs)
    # A few more fires of each really run (and must find nothing new) before the checks below.
    seen = {name: len(runs_of(ledger, name)) for name in ("window", "mirror")}
    wait_until(
        lambda: all(len(runs_of(ledger, name)) >= count + 2 for name, count in seen.items()),
        timeout_s=30,
        what="two more fires of each schedule",
        logs=processes.logs,
    )

    # explorer-window: each event in exactly one job, chunks of at most 2, watermark near now.
    window_jobs = jobs_of(ledger, "window")
    imported = Counter(e for job in window_jobs for e in job.params["completion_event_ids"])
    assert imported == Counter({"w-1": 1, "w-2": 1, "w-3": 1, "w-4": 1, "w-5": 1})
    assert all(len(job.params["completion_event_ids"]) <= 2 for job in window_jobs)
    with ledger() as session:
        window = get_schedule(session, "window")
        assert window is not None and window.watermark is not None
        # Near now: fires every second move it (a loaded machine runs them some seconds late).
        assert _now() - window.watermark < timedelta(seconds=15)
    assert RunStatus.EMPTY in {run.status for run in runs_of(ledger, "window")}

    # campaign-when-done: waited (no job) while RUNNING, then one import, then stopped.
    late_runs = runs_of(ledger, "late")
    statuses = [run.status for run in late_runs]
    assert statuses[0] == RunStatus.WAITING and statuses.count(RunStatus.SUBMITTED) == 1
    # After the import was requested, fires wait for it; the one that sees it COMPLETED finishes the schedule.
    assert statuses[-1] == RunStatus.EMPTY and statuses.count(RunStatus.EMPTY) == 1, "no fire after the finish"
    [late_job] = jobs_of(ledger, "late")
    assert late_job.idempotency_key == f"schedule:late:campaign:{campaign}"

    # dataset-copy (from the file): every source record copied once.
    mirror_jobs = jobs_of(ledger, "mirror")
    copied = Counter(r for job in mirror_jobs for r in job.params["dataset_record_ids"])
    assert sorted(copied.values()) == [1] * 7
    with ledger() as session:
        mirror = get_schedule(session, "mirror")
        assert mirror is not None and mirror.source == ScheduleSource.FILE

    # The target holds each imported thing exactly once: 5 events, 2 campaign events, 7 records.
    records = list(api.iter_records(target))
    assert len(records) == 5 + 2 + 7
    assert sum(job.imported_count or 0 for job in window_jobs + mirror_jobs + [late_job]) == 14


def _trace(trace_id: str, offset_s: float, *span_ids: str) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "created_at_offset_s": offset_s,
        "service_name": "support-bot",
        "spans": [
            {"span_id": span_id, "offset_ms": 10 * n, "span_attributes": {"gen_ai.prompt": f"question {span_id}"}}
            for n, span_id in enumerate(span_ids)
        ],
    }


@pytest.mark.timeout(180)
def test_spans_window_imports_each_span_once_while_beat_fires_every_second(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    ledger: sessionmaker[Session],
) -> None:
    # Without the emulator's own dedupe, a span imported twice shows up twice in the target.
    emulator.configure(dedupe_imports=False)
    emulator.seed(
        {
            "traces": [
                _trace("old", -1000, "o-1"),  # before the first window: never imported
                _trace("t-1", -20, "a", "b", "c"),
                _trace("t-2", -10, "a"),
            ]
        }
    )
    target = api.create_dataset("target", "filled by a spans-window schedule").id
    add(
        ledger,
        "traces",
        "spans-window",
        target,
        since=(_now() - timedelta(seconds=25)).isoformat(),
        search="service_name = 'support-bot'",
        mapping=["input=span_attributes:gen_ai.prompt"],
        chunk_size=2,
    )
    processes.start_worker(concurrency=2)
    processes.start_beat()

    wait_until(lambda: len(items_of(ledger, "traces")) >= 4, timeout_s=30, what="the first window", logs=processes.logs)
    # Spans that appear while the schedule runs (one in a trace already imported): picked up by later fires, once.
    emulator.seed({"traces": [_trace("t-3", 0, "a", "b"), _trace("t-1", 0, "d")]})
    expected = ["t-1:a", "t-1:b", "t-1:c", "t-1:d", "t-2:a", "t-3:a", "t-3:b"]

    def settled() -> bool:
        jobs = jobs_of(ledger, "traces")
        return items_of(ledger, "traces") == expected and all(job.status is JobStatus.COMPLETED for job in jobs)

    wait_until(settled, timeout_s=60, what="every span to be imported", logs=processes.logs)
    seen = len(runs_of(ledger, "traces"))
    wait_until(lambda: len(runs_of(ledger, "traces")) >= seen + 2, timeout_s=30, what="two more fires",
               logs=processes.logs)  # fmt: skip

    jobs = jobs_of(ledger, "traces")
    imported = Counter(f"{ref['trace_id']}:{ref['span_id']}" for job in jobs for ref in job.params["span_references"])
    assert imported == Counter(expected), "each span in exactly one job"
    assert all(len(job.params["span_references"]) <= 2 for job in jobs)
    assert all(job.params["mapping_contract"]["mappings"][0]["target_field"] == "input" for job in jobs)
    records = [record for record in api.iter_records(target)]
    assert sorted(f"{r.properties['trace_id']}:{r.properties['span_id']}" for r in records) == expected
    assert all(r.source == "TELEMETRY_SPAN" and r.payload_dict()["input"].startswith("question ") for r in records)
    with ledger() as session:
        schedule = get_schedule(session, "traces")
        assert schedule is not None and schedule.watermark is not None
        assert _now() - schedule.watermark < timedelta(seconds=15)
    assert RunStatus.EMPTY in {run.status for run in runs_of(ledger, "traces")}
