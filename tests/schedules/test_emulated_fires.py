"""Fires carried out by this process against the emulator on a socket, with a real worker and beat submitting and
polling the jobs on Redis, on both ledgers. The fires are called one by one so each test decides what happens between
them; the emulator's own counters (tasks created, calls made, records in the target) are the evidence.

- a chunk whose import is refused (4xx) or ends FAILED is imported by a later fire, exactly once;
- two firings of one fire time (one after the other, or at once) search once and import once;
- a source larger than one fire's page budget is copied over several fires, each record once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Barrier
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportJob, JobStatus, RunStatus, Schedule, ScheduleItem, ScheduleRun, ScheduleSource
from store.schedules import create_schedule
from tests.integration.service import ServiceProcesses, wait_for_jobs
from triggers.schedules.firing import FireContext, FireOutcome, FireReport, fire
from triggers.schedules.specs import build_definition
from worker.celery_app import create_app
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@dataclass
class Live:
    """The ledger, the emulator and a worker; :meth:`fire` fires a schedule from this process."""

    ledger: sessionmaker[Session]
    emulator: EmulatorServer
    api: DatasetsClient
    app: Celery
    processes: ServiceProcesses
    copy_page_size: int = 100
    copy_pages_per_fire: int = 50

    @property
    def context(self) -> FireContext:
        return FireContext(
            session_factory=self.ledger,
            client_factory=lambda: DatasetsClient(self.emulator.api_key, base_url=self.emulator.url),
            send=lambda job_id: self.app.send_task("dsimport.submit", args=[job_id]),
            now=lambda: datetime.now(UTC),
            lease_s=30.0,
            deadline_s=600.0,
            settle_lag_s=0.0,
            copy_page_size=self.copy_page_size,
            copy_pages_per_fire=self.copy_pages_per_fire,
        )

    def add(self, name: str, kind: str, dataset: str, **options: Any) -> None:
        # Paused, so the beat (there for its poll ticks) never fires it: this process fires it, by hand.
        definition = build_definition(name, kind=kind, dataset=dataset, every="1h", options=options, paused=True)
        with self.ledger() as session:
            create_schedule(session, definition, source=ScheduleSource.CLI, now=datetime.now(UTC))
            session.commit()

    def fire(self, name: str, fire_time: datetime) -> FireReport:
        return fire(self.context, name, fire_time, trigger="manual")

    def finish(self, report: FireReport) -> dict[str, ImportJob]:
        """Wait until every job of the fire ended (the worker submits and polls them)."""
        return wait_for_jobs(self.ledger, report.job_ids, timeout_s=60, on_timeout=self.processes.logs)

    def contents(self, dataset_id: str) -> Counter[str]:
        """What the dataset holds: the first message of each record, counted (a record copied twice shows 2)."""
        return Counter(str(record.payload.messages[0]["content"]) for record in self.api.iter_records(dataset_id))


@pytest.fixture
def live(
    emulator: EmulatorServer,
    api: DatasetsClient,
    processes: ServiceProcesses,
    ledger: sessionmaker[Session],
    settings: Settings,
) -> Iterator[Live]:
    # Without the emulator's own dedupe, an item imported twice shows up twice in the target.
    emulator.configure(dedupe_imports=False)
    processes.start_worker(concurrency=2)
    processes.start_beat()
    app = create_app(settings)
    yield Live(ledger=ledger, emulator=emulator, api=api, app=app, processes=processes)
    app.close()


def _base() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _source(live: Live, records: int) -> str:
    source = live.api.create_dataset("source", "copied by a schedule").id
    for n in range(records):
        live.api.create_record(source, {"messages": [{"role": "user", "content": f"r{n:02d}"}]}, {"n": n})
    return source


def _items(live: Live, name: str) -> dict[str, tuple[int, bool]]:
    with live.ledger() as session:
        rows = session.execute(
            select(ScheduleItem.item_id, ScheduleItem.retries, ScheduleItem.given_up_at)
            .join(Schedule)
            .where(Schedule.name == name)
        ).all()
    return {item: (retries, given_up is not None) for item, retries, given_up in rows}


def test_a_chunk_refused_by_the_api_is_copied_by_a_later_fire_exactly_once(live: Live) -> None:
    target = live.api.create_dataset("target", "filled by the copy").id
    source = _source(live, 5)
    live.add("mirror", "dataset-copy", target, from_dataset=source, chunk_size=2)
    live.emulator.configure(faults={"import_from_dataset": {"status": 400, "next": 1}})
    base = _base()

    first = live.fire("mirror", base)
    statuses = sorted(str(job.status) for job in live.finish(first).values())
    assert statuses == ["COMPLETED", "COMPLETED", "REJECTED"]

    second = live.fire("mirror", base + timedelta(hours=1))
    [retry] = live.finish(second).values()
    assert retry.status == JobStatus.COMPLETED and retry.idempotency_key.endswith(":retry:1")
    # Nothing left to do: no second retry, nothing new.
    assert live.fire("mirror", base + timedelta(hours=2)).outcome == FireOutcome.EMPTY

    assert live.contents(target) == Counter({f"r{n:02d}": 1 for n in range(5)})
    stats = live.emulator.stats(include_tasks=False)
    assert stats["tasks_created"][target] == 3  # the refused request started nothing
    assert stats["responses"]["import_from_dataset"]["400"] == 1
    assert sorted(retries for retries, _ in _items(live, "mirror").values()) == [0, 0, 0, 1, 1]


def test_chunks_whose_import_ended_failed_are_imported_by_a_later_fire_exactly_once(live: Live) -> None:
    target = live.api.create_dataset("target", "filled by the window").id
    live.emulator.seed(
        {
            "events": [
                {"event_id": f"e-{n}", "created_at_offset_s": -30 + n,
                 "request_messages": [{"role": "user", "content": f"e-{n}"}]}
                for n in range(3)
            ]
        }
    )  # fmt: skip
    live.add("win", "explorer-window", target, since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
             chunk_size=2)  # fmt: skip
    live.emulator.configure(terminal_status="FAILED")
    base = _base()

    first = live.fire("win", base)
    assert {job.status for job in live.finish(first).values()} == {JobStatus.FAILED}
    assert len(first.job_ids) == 2

    live.emulator.configure(terminal_status="COMPLETED")
    second = live.fire("win", base + timedelta(seconds=1))
    assert {job.status for job in live.finish(second).values()} == {JobStatus.COMPLETED}
    assert len(second.job_ids) == 2
    assert live.fire("win", base + timedelta(seconds=2)).outcome == FireOutcome.EMPTY

    assert live.contents(target) == Counter({"e-0": 1, "e-1": 1, "e-2": 1})
    stats = live.emulator.stats(include_tasks=False)
    assert stats["tasks_created"][target] == 4  # two that failed, two retries
    assert _items(live, "win") == {f"e-{n}": (1, False) for n in range(3)}


def test_two_firings_of_one_fire_time_search_once_and_import_once(live: Live) -> None:
    target = live.api.create_dataset("target", "filled by the window").id
    live.emulator.seed(
        {
            "events": [
                {"event_id": f"e-{n}", "created_at_offset_s": -30 + n,
                 "request_messages": [{"role": "user", "content": f"e-{n}"}]}
                for n in range(4)
            ]
        }
    )  # fmt: skip
    live.add("win", "explorer-window", target, since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
             chunk_size=2)  # fmt: skip
    base = _base()
    live.emulator.reset_stats()

    # One after the other (a redelivered message, a second beat) ...
    first = live.fire("win", base)
    again = live.fire("win", base)
    assert (first.outcome, again.outcome) == (FireOutcome.SUBMITTED, FireOutcome.DUPLICATE)
    # ... and four at once, for the next fire time.
    live.emulator.seed(
        {"events": [{"event_id": "e-late", "request_messages": [{"role": "user", "content": "e-late"}]}]}
    )
    barrier = Barrier(4)
    later = base + timedelta(seconds=5)

    def go(_: int) -> FireReport:
        barrier.wait(timeout=30)
        return live.fire("win", later)

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(go, range(4)))
    assert [report.outcome for report in reports].count(FireOutcome.SUBMITTED) == 1
    live.finish(first)
    for report in reports:
        live.finish(report)

    assert live.contents(target) == Counter({"e-0": 1, "e-1": 1, "e-2": 1, "e-3": 1, "e-late": 1})
    stats = live.emulator.stats(include_tasks=False)
    assert stats["requests"]["search_event_ids"] == 2, "one search per fire time"
    assert stats["tasks_created"][target] == 3
    with live.ledger() as session:
        runs = list(session.scalars(select(ScheduleRun).join(Schedule).where(Schedule.name == "win")))
    assert sorted((run.fire_time, run.status) for run in runs) == [
        (base, RunStatus.SUBMITTED),
        (later, RunStatus.SUBMITTED),
    ]


def test_a_source_larger_than_a_fires_page_budget_is_copied_over_several_fires_once(live: Live) -> None:
    live.copy_page_size, live.copy_pages_per_fire = 5, 2
    target = live.api.create_dataset("target", "filled by the copy").id
    source = _source(live, 23)
    # The record listings of the source are counted: no listings of the target for --skip-existing.
    live.add("mirror", "dataset-copy", target, from_dataset=source, chunk_size=4, skip_existing=False)
    live.emulator.reset_stats()
    base = _base()
    lists = []
    for hour in range(4):
        before = live.emulator.stats(include_tasks=False)["requests"].get("list_records", 0)
        live.finish(live.fire("mirror", base + timedelta(hours=hour)))
        lists.append(live.emulator.stats(include_tasks=False)["requests"].get("list_records", 0) - before)
    # 23 records, 5 a page, 2 pages a fire: 10 + 10 + 3 (the end), then a new pass finds nothing new.
    assert lists == [2, 2, 1, 2]
    assert live.contents(target) == Counter({f"r{n:02d}": 1 for n in range(23)})
    with live.ledger() as session:
        mirror = session.scalars(select(Schedule).where(Schedule.name == "mirror")).one()
        assert mirror.copy_page == 3
