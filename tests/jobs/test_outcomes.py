"""Outcomes that say what happened, end to end: an import the API only partly performs, followed on a real emulator
socket into a real ledger, then read back where users look (`jobs show`, the jobs page, /metrics, the webhook event).

The emulator skips a span reference it cannot find and says so only in the task's ``result`` counts (contract 3.x
§3.4, the SDK's "skipped without distinguishing absence from access restrictions"): three references, one unknown, is
a completed import of two records out of three requested, which is *partial*.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from dashboard import DashboardConfig, build_app
from emulator.testing import EmulatorServer
from jobs.poll_loop import run_poll_rounds
from jobs.runtime import JobTuning, Runtime
from jobs.submit import SubmitOutcome
from store.jobs import get_job
from store.models import ImportJob, ImportKind, JobStatus
from store.webhook_models import WebhookDelivery, WebhookFormat
from store.webhooks import add_webhook
from tests.dashboard.conftest import PASSWORD, USER, auth_header
from tests.dashboard.server import serve
from tests.fixtures.direct_runtime import direct_runtime, direct_submit, record_job
from tests.fixtures.emulators import frozen_emulator_options

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MAPPING = {
    "version": 1,
    "mappings": [{"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}],
}
SEED = {
    "events": [{"event_id": "evt-0", "request_messages": [{"role": "user", "content": "hi"}], "response_messages": []}],
    "traces": [
        {
            "trace_id": TRACE,
            "service_name": "bot",
            "spans": [
                {"span_id": "span-1", "span_attributes": {"gen_ai.prompt": "one"}},
                {"span_id": "span-2", "offset_ms": 50, "span_attributes": {"gen_ai.prompt": "two"}},
            ],
        }
    ],
}


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return frozen_emulator_options(T0, task_duration_s=10, seed=SEED)


@pytest.fixture
def runtime(emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Runtime:
    tuning = JobTuning(lease_s=30.0, poll_group_threshold=3, submit_max_retries=2, stale_pending_s=60.0)
    return direct_runtime(emulator, session_factory, tuning)


@dataclass(frozen=True)
class Ended:
    partial: str
    whole: str


def _run_to_the_end(runtime: Runtime, emulator: EmulatorServer, job_ids: list[str]) -> None:
    for job_id in job_ids:
        assert direct_submit(runtime, job_id, at=T0, owner="w1").outcome is SubmitOutcome.ACCEPTED
    emulator.advance_clock(11)
    finished: list[tuple[str, str]] = []
    run_poll_rounds(runtime, owner="w1", now=lambda: T0 + timedelta(seconds=2), on_finished=finished.extend)
    assert sorted(finished) == sorted((job_id, "COMPLETED") for job_id in job_ids)


@pytest.fixture
def ended(runtime: Runtime, emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Ended:
    """A spans import with one unknown reference (partial) and an explorer import of one event (whole), both ended,
    with a webhook registered first so that each ending wrote its event."""
    with session_factory() as session:
        add_webhook(session, name="ops", url="http://127.0.0.1:9/", secret="s" * 20, format=WebhookFormat.JSON, now=T0)
        session.commit()
    with runtime.client_factory() as client:
        target = client.create_dataset("target", "d").id
    references = [{"trace_id": TRACE, "span_id": span} for span in ("span-1", "span-2", "nowhere")]
    deadline = T0 + timedelta(hours=1)
    spans = record_job(
        runtime, target, {"span_references": references, "mapping_contract": MAPPING},
        kind=ImportKind.SPANS, now=T0, deadline_at=deadline,
    )
    explorer = record_job(
        runtime, target, {"completion_event_ids": ["evt-0"]}, kind=ImportKind.EXPLORER, now=T0, deadline_at=deadline
    )
    _run_to_the_end(runtime, emulator, [spans, explorer])
    return Ended(partial=spans, whole=explorer)


def _job(session_factory: sessionmaker[Session], job_id: str) -> ImportJob:
    with session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None
        return job


def test_the_api_result_counts_are_kept_and_a_short_import_is_partial(
    ended: Ended, session_factory: sessionmaker[Session]
) -> None:
    partial = _job(session_factory, ended.partial)
    assert partial.status is JobStatus.COMPLETED
    assert (partial.requested_count, partial.imported_count, partial.skipped_count) == (3, 2, 1)
    assert partial.partial is True
    whole = _job(session_factory, ended.whole)
    assert (whole.requested_count, whole.imported_count, whole.skipped_count) == (1, 1, 0)
    assert whole.partial is False


def test_the_webhook_event_carries_the_counts_and_partial(
    ended: Ended, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        events = {d.job_id: d.payload["job"] for d in session.scalars(select(WebhookDelivery))}
    assert events[ended.partial]["partial"] is True
    assert {key: events[ended.partial][key] for key in ("requested_count", "imported_count", "skipped_count")} == {
        "requested_count": 3, "imported_count": 2, "skipped_count": 1,
    }
    assert events[ended.whole]["partial"] is False


def test_jobs_show_and_list_say_partial(
    ended: Ended, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    assert main(["jobs", "show", ended.partial, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["partial"] is True and (shown["requested_count"], shown["imported_count"]) == (3, 2)
    assert main(["jobs", "show", ended.partial]) == 0
    assert "partial            True" in capsys.readouterr().out
    assert main(["jobs", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "COMPLETED partial" in lines[ended.partial]
    assert "partial" not in lines[ended.whole]


def test_the_jobs_page_and_metrics_show_partial(
    ended: Ended, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        session.execute(update(ImportJob).where(ImportJob.id == ended.whole).values(duplicates_skipped=4))
        session.commit()
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD)
    with serve(build_app(config, now=lambda: T0 + timedelta(minutes=1))) as client:
        index = client.get("/", headers=auth_header()).text
        detail = client.get(f"/jobs/{ended.partial}", headers=auth_header()).text
        whole = client.get(f"/jobs/{ended.whole}", headers=auth_header()).text
        scrape = client.get("/metrics").text
    row = index.split(f'data-job-id="{ended.partial}"')[1].split("</tr>")[0]
    assert 'data-partial="1"' in row and "2 imported, 1 skipped" in row
    other = index.split(f'data-job-id="{ended.whole}"')[1].split("</tr>")[0]
    assert "data-partial" not in other
    assert 'id="partial"' in detail and "requested 3" in detail
    assert 'id="partial"' not in whole
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name in ("dsimport_jobs_partial", "dsimport_duplicates_skipped")
    }
    assert samples[("dsimport_jobs_partial", "spans")] == 1.0
    assert samples[("dsimport_jobs_partial", "explorer")] == 0.0
    assert samples[("dsimport_duplicates_skipped", "explorer")] == 4.0
    assert samples[("dsimport_duplicates_skipped", "file")] == 0.0
