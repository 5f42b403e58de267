"""Schedule test fixtures: a fake API client for the firing functions, and real services for the beat tests.

The real services are the stack of tests/fixtures/service_stack.py, tuned here: Redis database 4 by default
(``DSIMPORT_TEST_SCHEDULES_REDIS_URL``), so these tests can run next to the other suites, quicker imports, polls
and schedule refreshes, and a short lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import ServerError, Span, SpanFeed
from store.models import ScheduleSource
from store.schedules import ScheduleDefinition, create_schedule
from tests.fixtures.redis_db import redis_test_url
from triggers.schedules.firing import FireContext
from triggers.schedules.specs import build_definition

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
def broker_redis_url() -> str:
    return redis_test_url("DSIMPORT_TEST_SCHEDULES_REDIS_URL", 4)


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {"task_duration_s": (0.3, 0.8)}


@pytest.fixture
def service_overrides() -> dict[str, str]:
    return {
        "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
        "DSIMPORT_SCHEDULES_REFRESH_S": "0.5",
        "DSIMPORT_LEASE_S": "5",
        # A call made under a lease must end within it (checked at start-up).
        "DSIMPORT_API_TIMEOUT_S": "2",
        "DSIMPORT_API_MAX_ATTEMPTS": "2",
        # The emulator's events are searchable the moment they are seeded: no settle lag needed.
        "DSIMPORT_SCHEDULE_SETTLE_LAG_S": "0",
    }
