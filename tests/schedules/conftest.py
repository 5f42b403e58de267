"""Schedule test fixtures: a fake API client for the firing functions, and real services for the beat tests.

The real-service fixtures mirror tests/integration/conftest.py, on Redis database 4 by default
(``DSIMPORT_TEST_REDIS_URL``), so these tests can run next to the other suites.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient, ServerError, Span, SpanFeed
from emulator.testing import EmulatorServer
from store import guarantees
from store.db import make_engine, make_session_factory
from store.models import ScheduleSource
from store.schedules import ScheduleDefinition, create_schedule
from tests.fixtures.redis_db import flushed_redis
from tests.integration.service import ServiceProcesses, service_environment, settings_from_env
from triggers.schedules.firing import FireContext
from triggers.schedules.specs import build_definition
from worker.settings import Settings

TEST_REDIS_URL = os.environ.get("DSIMPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/4")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
SOURCE = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@dataclass
class FakeRecord:
    id: str


@dataclass
class FakePage:
    count: int
    results: list[FakeRecord]


@dataclass
class FakeApi:
    """The reads the schedules make, answered from lists; every call is recorded."""

    events: dict[str, datetime] = field(default_factory=dict)
    spans: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(trace id, span id) -> start time; searched in [from, to), in insertion order."""
    spans_cursor_repeats: bool = False
    records: list[str] = field(default_factory=list)
    campaign_statuses: list[str] = field(default_factory=lambda: ["COMPLETED"])
    fail_next: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self) -> FakeApi:  # the client factory
        return self

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ServerError("search is down", status_code=503)

    def search_event_ids(self, filters: dict[str, Any] | None) -> list[str]:
        self.calls.append(("search", filters))
        self._maybe_fail()
        assert filters is not None
        conditions = filters["AND"]
        start = datetime.fromisoformat(conditions[0]["value"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(conditions[1]["value"].replace("Z", "+00:00"))
        assert conditions[0]["op"] == "gte" and conditions[1]["op"] == "lt"
        return [event_id for event_id, created in self.events.items() if start <= created < end]

    def search_spans(
        self,
        search_expression: str | None = None,
        *,
        from_: datetime | None = None,
        to: datetime | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> SpanFeed:
        self.calls.append(("search_spans", (search_expression, from_, to, page_size, cursor)))
        self._maybe_fail()
        assert from_ is not None and to is not None
        matching = [key for key, start in self.spans.items() if from_ <= start < to]
        offset = 0 if cursor is None or self.spans_cursor_repeats else int(cursor)
        page = matching[offset : offset + page_size]
        following = offset + page_size
        return SpanFeed(
            results=[Span(trace_id=trace_id, span_id=span_id) for trace_id, span_id in page],
            cursor=str(following) if following < len(matching) else None,
        )

    def fetch_campaign_status(self, campaign_id: str) -> str:
        self.calls.append(("campaign_status", campaign_id))
        self._maybe_fail()
        return self.campaign_statuses.pop(0) if len(self.campaign_statuses) > 1 else self.campaign_statuses[0]

    def list_records(self, dataset_id: str, page: int, page_size: int) -> FakePage:
        self.calls.append(("list_records", (dataset_id, page, page_size)))
        self._maybe_fail()
        chosen = self.records[(page - 1) * page_size : page * page_size]
        return FakePage(count=len(self.records), results=[FakeRecord(record_id) for record_id in chosen])


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    """Everything a unit test of firing needs: the ledger, a fake API, a clock, and the submits sent."""

    sessions: sessionmaker[Session]
    api: FakeApi
    clock: Clock
    sent: list[str] = field(default_factory=list)
    lease_s: float = 30.0
    settle_lag_s: float = 0.0
    copy_page_size: int = 100
    copy_pages_per_fire: int = 50

    @property
    def context(self) -> FireContext:
        return FireContext(
            session_factory=self.sessions,
            client_factory=self.api,  # type: ignore[arg-type]
            send=self.sent.append,
            now=self.clock,
            lease_s=self.lease_s,
            deadline_s=3600.0,
            settle_lag_s=self.settle_lag_s,
            copy_page_size=self.copy_page_size,
            copy_pages_per_fire=self.copy_pages_per_fire,
        )

    def add(self, name: str, kind: str, *, every: str | None = "1m", cron: str | None = None, **options: Any) -> str:
        definition = build_definition(
            name, kind=kind, dataset=TARGET, every=None if cron else every, cron=cron, options=options
        )
        return self.add_definition(definition)

    def add_definition(self, definition: ScheduleDefinition, source: ScheduleSource = ScheduleSource.CLI) -> str:
        with self.sessions() as session:
            schedule = create_schedule(session, definition, source=source, now=self.clock())
            session.commit()
            return schedule.id


@pytest.fixture
def harness(session_factory: sessionmaker[Session]) -> Harness:
    return Harness(sessions=session_factory, api=FakeApi(), clock=Clock())


# --- real services ----------------------------------------------------------------------------------------------


@pytest.fixture
def broker_url() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(task_duration_s=(0.3, 0.8)) as server:
        yield server


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[DatasetsClient]:
    with DatasetsClient(emulator.api_key, base_url=emulator.url) as client:
        yield client


@pytest.fixture
def service_env(tmp_path: Path, database_url: str, broker_url: str, emulator: EmulatorServer) -> dict[str, str]:
    return service_environment(
        tmp_path / "home",
        database_url=database_url,
        broker_url=broker_url,
        api_url=emulator.url,
        api_key=emulator.api_key,
        **{
            "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
            "DSIMPORT_SCHEDULES_REFRESH_S": "0.5",
            "DSIMPORT_LEASE_S": "5",
            # A call made under a lease must end within it (checked at start-up).
            "DSIMPORT_API_TIMEOUT_S": "2",
            "DSIMPORT_API_MAX_ATTEMPTS": "2",
            # The emulator's events are searchable the moment they are seeded: no settle lag needed.
            "DSIMPORT_SCHEDULE_SETTLE_LAG_S": "0",
            # A mutation run (a guarantee switched off) must reach the service processes too.
            **{key: value for key, value in os.environ.items() if key == guarantees.ENV_VAR},
        },
    )


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return settings_from_env(service_env)


@pytest.fixture
def ledger(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def processes(service_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcesses]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    service = ServiceProcesses(service_env, log_dir)
    yield service
    service.stop()
