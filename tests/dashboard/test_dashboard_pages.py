"""The jobs page over a real ledger (SQLite and PostgreSQL): login, listing, filters, a job's history, escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app, check_basic_auth
from store.dead_letters import record_dead_letter
from store.models import ImportKind, JobStatus, ScheduleSource
from store.schedules import create_schedule
from store.state_machine import apply_transition
from triggers.schedules.specs import build_definition

from .conftest import NOW, PASSWORD, USER, Ledger, add_job, auth_header
from .server import serve


def _row(html: str, job_id: str) -> str:
    match = re.search(rf'<tr data-job-id="{job_id}".*?</tr>', html, re.S)
    assert match is not None, f"no row for job {job_id}"
    return match.group(0)


@pytest.mark.parametrize("path", ["/", "/jobs/some-id", "/?status=RUNNING"])
def test_every_page_needs_the_login(client: httpx.Client, path: str) -> None:
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert client.get(path, headers=auth_header(password="wrong")).status_code == 401
    assert client.get(path, headers=auth_header(user="admin")).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer " + PASSWORD}).status_code == 401
    assert client.get(path, headers=auth_header()).status_code in (200, 404)


def test_metrics_and_health_need_no_login(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, False),
        ("", False),
        ("Basic", False),
        ("Basic !!!notbase64", False),
        ("Digest d2F0Y2hlcjpzM2NyZXQtcGFzcy1mb3ItdGVzdHM=", False),
        ("Basic " + "d2F0Y2hlcnMzY3JldC1wYXNzLWZvci10ZXN0cw==", False),  # no colon at all
        (auth_header()["Authorization"], True),
        (auth_header()["Authorization"].replace("Basic", "basic"), True),
    ],
)
def test_basic_auth_parsing(header: str | None, ok: bool) -> None:
    assert check_basic_auth(header, USER, PASSWORD) is ok


def test_jobs_list_shows_kind_dataset_status_progress_age_and_outcome(client: httpx.Client, ledger: Ledger) -> None:
    page = client.get("/", headers=auth_header())
    assert page.status_code == 200
    html = page.text
    assert '<meta http-equiv="refresh" content="3">' in html  # it reloads itself
    pending = _row(html, ledger.pending)
    assert 'data-status="PENDING"' in pending
    assert "unknown" in pending  # a null progress is not shown as 0
    assert "5m 00s" in pending  # created five minutes before NOW
    running = _row(html, ledger.running)
    assert 'aria-valuenow="40"' in running and "40%" in running
    completed = _row(html, ledger.completed)
    assert 'data-status="COMPLETED"' in completed and "7 imported" in completed and "100%" in completed
    failed = _row(html, ledger.failed)
    assert 'data-status="REJECTED"' in failed and "the API refused it" in failed
    explorer = _row(html, ledger.explorer)
    assert ">explorer<" in explorer and ">ds-2<" in explorer
    assert html.index(ledger.explorer) < html.index(ledger.pending)  # newest first


def test_filters_by_status_and_kind(client: httpx.Client, ledger: Ledger) -> None:
    html = client.get("/?status=COMPLETED", headers=auth_header()).text
    assert ledger.completed in html
    assert ledger.pending not in html and ledger.running not in html
    html = client.get("/?kind=explorer", headers=auth_header()).text
    assert ledger.explorer in html and ledger.completed not in html
    html = client.get("/?kind=explorer&status=COMPLETED", headers=auth_header()).text
    assert "no jobs match these filters" in html
    html = client.get("/?status=", headers=auth_header()).text  # the form's "any"
    assert ledger.pending in html and ledger.explorer in html


def test_unknown_filter_is_a_400_that_names_the_choices(client: httpx.Client, ledger: Ledger) -> None:
    page = client.get("/?status=DONE", headers=auth_header())
    assert page.status_code == 400
    assert "COMPLETED" in page.text and "campaign" in page.text


def test_job_page_shows_history_and_last_error(client: httpx.Client, ledger: Ledger) -> None:
    page = client.get(f"/jobs/{ledger.failed}", headers=auth_header())
    assert page.status_code == 200
    html = page.text
    assert "HTTP 422: campaign c-1 has no events" in html
    events = re.search(r'<table id="events">.*?</table>', html, re.S)
    assert events is not None
    assert re.findall(r'<tr data-to="(\w+)">', events.group(0)) == ["PENDING", "SUBMITTING", "REJECTED"]
    assert "the API refused it" in events.group(0)


def test_unknown_job_is_a_404(client: httpx.Client, ledger: Ledger) -> None:
    page = client.get("/jobs/not-a-job", headers=auth_header())
    assert page.status_code == 404
    assert "no job not-a-job" in page.text


def test_html_in_the_ledger_stays_text(client: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    script = "<script>alert('x')</script>"
    with session_factory() as session:
        job = add_job(session, "xss", dataset_id=script)
        apply_transition(job, JobStatus.SUBMITTING, now=NOW)
        job.last_error = "<img src=x onerror=alert(1)>"
        apply_transition(job, JobStatus.REJECTED, now=NOW, message="<b>bold</b> & more")
        record_dead_letter(
            session,
            stream="dsimport:requests",
            entry_id="1-0",
            body=b'{"dataset_id": "<iframe src=javascript:alert(1)>"}',
            reason="<em>not</em> valid",
            message_id="<svg onload=alert(1)>",
            now=NOW,
        )
        session.commit()
        job_id = job.id
    for path in ("/", f"/jobs/{job_id}"):
        html = client.get(path, headers=auth_header()).text
        for raw in (script, "<img src=x", "<b>bold</b>", "<iframe", "<em>not</em>", "<svg onload"):
            assert raw not in html, f"{raw!r} reached {path} unescaped"
        assert "&lt;script&gt;" in html
    index = client.get("/", headers=auth_header()).text
    assert "&lt;iframe src=javascript:alert(1)&gt;" in index
    assert "&lt;em&gt;not&lt;/em&gt; valid" in index
    detail = client.get(f"/jobs/{job_id}", headers=auth_header()).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in detail


def test_schedules_with_last_and_next_fire(client: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for name, every, paused in (("every-ten", "10m", False), ("held", "1h", True)):
            definition = build_definition(
                name, kind="campaign", dataset="c596c123-a5dc-5c3d-874e-a0637431a226", every=every,
                options={"campaign": "367af2a3-ca62-5c10-bb37-5e45aa2e6206"}, paused=paused,
            )
            schedule = create_schedule(session, definition, source=ScheduleSource.CLI, now=NOW - timedelta(hours=1))
            schedule.last_fire_at = NOW - timedelta(minutes=10)
        session.commit()
    html = client.get("/", headers=auth_header()).text
    table = re.search(r'<table id="schedules">.*?</table>', html, re.S)
    assert table is not None
    every_ten = re.search(r'<tr data-schedule="every-ten">.*?</tr>', table.group(0), re.S)
    assert every_ten is not None
    row = every_ten.group(0)
    assert "every 10m" in row and "active" in row
    assert "10m 00s ago" in row  # last fire
    assert "in 10m 00s" in row  # next fire: NOW is on a ten-minute boundary, so the next is ten minutes on
    assert "2026-03-01 12:10:00 UTC" in row
    held = re.search(r'<tr data-schedule="held">.*?</tr>', table.group(0), re.S)
    assert held is not None and "paused" in held.group(0) and "—" in held.group(0)


def test_a_sampled_window_schedule_shows_its_rate(client: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for name, options in (("tenth", {"sample": 0.1}), ("every-event", {})):
            definition = build_definition(
                name, kind="explorer-window", dataset="c596c123-a5dc-5c3d-874e-a0637431a226", every="10m",
                options=options,
            )
            create_schedule(session, definition, source=ScheduleSource.CLI, now=NOW - timedelta(hours=1))
        session.commit()
    html = client.get("/", headers=auth_header()).text
    tenth = re.search(r'<tr data-schedule="tenth">.*?</tr>', html, re.S)
    every_event = re.search(r'<tr data-schedule="every-event">.*?</tr>', html, re.S)
    assert tenth is not None and every_event is not None
    assert "sample 0.1" in tenth.group(0)
    assert "sample" not in every_event.group(0)


def test_dead_letters_are_listed_with_reason_and_body(
    client: httpx.Client, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        record_dead_letter(
            session, stream="dsimport:requests", entry_id="5-0", body=b"not json at all", reason="invalid JSON",
            message_id=None, now=NOW - timedelta(seconds=30),
        )
        record_dead_letter(
            session, stream="dsimport:requests", entry_id="6-0", body=b"\x00\xff", reason="not UTF-8",
            message_id="m-2", now=NOW,
        )
        session.commit()
    html = client.get("/", headers=auth_header()).text
    table = re.search(r'<table id="dead-letters">.*?</table>', html, re.S)
    assert table is not None
    assert "invalid JSON" in table.group(0) and "not json at all" in table.group(0)
    assert "(base64) AP8=" in table.group(0)
    assert "30s ago" in table.group(0)
    assert "(2 waiting)" in html


def test_health_is_503_on_an_unmigrated_ledger(empty_database_url: str) -> None:
    config = DashboardConfig(database_url=empty_database_url, username=USER, password=PASSWORD)
    with serve(build_app(config)) as client:
        health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "error"
    assert "dsimport db upgrade" in health.json()["database"]


@pytest.mark.parametrize(
    "kwargs",
    [{"username": "", "password": "x"}, {"username": "a:b", "password": "x"}, {"username": "a", "password": ""}],
)
def test_config_refuses_a_page_without_a_usable_login(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        DashboardConfig(database_url="sqlite://", **kwargs)


def test_password_is_not_in_the_config_repr() -> None:
    assert PASSWORD not in repr(DashboardConfig(database_url="sqlite://", username=USER, password=PASSWORD))


def test_kinds_are_all_offered_in_the_filter(client: httpx.Client, ledger: Ledger) -> None:
    html = client.get("/", headers=auth_header()).text
    for kind in ImportKind:
        assert f'<option value="{kind.value}"' in html
