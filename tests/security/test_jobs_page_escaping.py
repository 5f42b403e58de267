"""The jobs page shows what the ledger holds as text, whatever it holds: every rendered field, one payload each.

tests/dashboard/test_dashboard_pages.py::test_html_in_the_ledger_stays_text covers the dataset id, a job's message
and last error, and a dead letter's body, reason and message id. Here every other field the pages render from the
ledger gets a payload of its own (markup, and quotes that would break out of an attribute): the error code, the
remote task id and status, the origin, the idempotency key, each event's message, the params (keys and values), a
schedule's name, dataset, timing and its last run's message, a base64 dead-letter body, and the ids echoed from the
URL on the error pages. Each payload must be absent in raw form and present escaped, so a field that stopped being
rendered would fail the test too.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from store.dead_letters import record_dead_letter
from store.jobs import create_job
from store.models import ImportKind, JobStatus, RunStatus, Schedule, ScheduleKind, ScheduleRun, ScheduleSource
from store.state_machine import apply_transition
from tests.dashboard.conftest import NOW, PASSWORD, USER, auth_header
from tests.dashboard.server import serve


def payload(field: str) -> str:
    """Markup that would run, and a quote pair that would leave an attribute, tagged with the field's name."""
    return f"<img src=x onerror=alert('{field}')>\"' data-x=\"{field}"


def raw_markers(field: str) -> list[str]:
    return [f"<img src=x onerror=alert('{field}')>", f"\"' data-x=\"{field}"]


def escaped_forms(field: str) -> list[str]:
    value = payload(field)
    # Jinja escapes < > & " ' as entities; `tojson` (the params block) as \\u003c-style escapes.
    return [str(html.escape(value, quote=True)).replace("&#x27;", "&#39;"), json.dumps(value)[1:-1]
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("'", "\\u0027").replace("&", "\\u0026")]


JOB_FIELDS = ("error_code", "remote_task_id", "remote_status", "origin", "idempotency_key", "event", "param_value",
              "param_key", "last_error", "message")  # fmt: skip
SCHEDULE_FIELDS = ("schedule_name", "schedule_dataset", "schedule_cron", "run_message")


@pytest.fixture
def client(database_url: str) -> httpx.Client:
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, refresh_s=3)
    with serve(build_app(config, now=lambda: NOW)) as http:
        yield http  # type: ignore[misc]


@pytest.fixture
def job_id(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as session:
        job, _ = create_job(
            session,
            kind=ImportKind.EXPLORER,
            dataset_id="a4a2a6c5-0000-4000-8000-000000000001",
            params={"completion_event_ids": [payload("param_value")], payload("param_key"): 1},
            idempotency_key=payload("idempotency_key")[:255],
            origin=payload("origin"),
            deadline_at=None,
            now=NOW - timedelta(minutes=3),
        )
        apply_transition(job, JobStatus.SUBMITTING, now=NOW - timedelta(minutes=2), message=payload("event"))
        job.remote_task_id = payload("remote_task_id")[:64]
        job.error_code = payload("error_code")[:128]
        job.last_error = payload("last_error")
        apply_transition(job, JobStatus.RUNNING, now=NOW - timedelta(minutes=1))
        job.remote_status = payload("remote_status")[:64]
        apply_transition(job, JobStatus.FAILED, now=NOW, message=payload("message"))
        schedule = Schedule(
            name=payload("schedule_name")[:100],
            source=ScheduleSource.FILE,
            kind=ScheduleKind.PLAIN,
            import_kind=ImportKind.FILE,
            dataset_id=payload("schedule_dataset")[:64],
            params={"file_id": payload("param_value")},
            cron=payload("schedule_cron"),
            every_s=None,
            paused=False,
            fires_after=NOW - timedelta(hours=1),
            created_at=NOW - timedelta(hours=1),
            updated_at=NOW - timedelta(hours=1),
        )
        session.add(schedule)
        session.flush()
        session.add(
            ScheduleRun(
                schedule_id=schedule.id,
                fire_time=NOW - timedelta(minutes=5),
                trigger="beat",
                status=RunStatus.EMPTY,
                started_at=NOW - timedelta(minutes=5),
                finished_at=NOW - timedelta(minutes=5),
                job_ids=[],
                message=payload("run_message"),
            )
        )
        record_dead_letter(
            session,
            stream="stream:dsimport:requests",
            entry_id="9-0",
            body=b"\x00" + payload("dead_letter_base64").encode(),
            reason="not UTF-8",
            message_id=None,
            now=NOW,
        )
        session.commit()
        return job.id


def assert_text_only(page: str, fields: tuple[str, ...], where: str) -> None:
    for field in fields:
        for raw in raw_markers(field):
            assert raw not in page, f"{field} reached {where} unescaped"
        forms = escaped_forms(field)
        # Columns shorter than the payload keep its start: the tag is what must show escaped.
        tag = f"&lt;img src=x onerror=alert(&#39;{field}&#39;)&gt;"
        assert any(form in page for form in forms) or tag in page, f"{field} is not rendered on {where}"


def test_every_field_of_a_job_is_escaped_on_its_page(client: httpx.Client, job_id: str) -> None:
    page = client.get(f"/jobs/{job_id}", headers=auth_header())
    assert page.status_code == 200
    assert_text_only(page.text, JOB_FIELDS, "the job page")


def test_every_field_of_the_listing_is_escaped(client: httpx.Client, job_id: str) -> None:
    page = client.get("/", headers=auth_header())
    assert page.status_code == 200
    assert_text_only(page.text, ("message", *SCHEDULE_FIELDS), "the jobs list")
    # A body that is not text is shown as base64: its markup never reaches the page, in any form.
    letters = re.search(r'<table id="dead-letters">.*?</table>', page.text, re.S)
    assert letters is not None and "(base64) " in letters.group(0)
    assert "dead_letter_base64" not in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/%3Cscript%3Ealert(1)%3C\\script%3E",
        "/jobs/%22%3E%3Csvg%20onload%3Dalert(1)%3E",
        "/?status=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/?kind=%22%3E%3Csvg%20onload%3Dalert(1)%3E",
    ],
)
def test_what_the_url_brings_is_escaped_on_error_pages(client: httpx.Client, path: str, job_id: str) -> None:
    page = client.get(path, headers=auth_header())
    assert page.status_code in (400, 404)
    assert "<script>" not in page.text
    assert "<svg onload=alert(1)>" not in page.text
    if path.startswith("/jobs/"):
        assert "no job" in page.text and "&lt;" in page.text


@pytest.mark.parametrize("path", ["/jobs/%00", "/jobs/a%00b", "/jobs/" + "x" * 5000, "/jobs/%C3%28", "/jobs/%FF"])
def test_a_job_id_that_no_job_can_have_is_simply_not_found(client: httpx.Client, path: str) -> None:
    # PostgreSQL refuses a NUL in a query parameter: such an id must not get as far as the database.
    page = client.get(path, headers=auth_header())
    assert page.status_code == 404 and "no job" in page.text
