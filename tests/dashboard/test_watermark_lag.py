"""A window schedule's watermark lag (now - watermark): measured, flagged past DSIMPORT_WATERMARK_LAG_ALERT_S on the
jobs page, in `schedules list` and on /metrics, and never for schedules that keep no watermark or no longer fire."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from dashboard import DashboardConfig, build_app
from store.models import Schedule, ScheduleSource
from store.schedules import create_schedule
from triggers.schedules.lag import is_lagging, watermark_lag_s
from triggers.schedules.specs import build_definition

from .conftest import NOW, PASSWORD, USER, auth_header
from .server import serve

DATASET = "c596c123-a5dc-5c3d-874e-a0637431a226"


def _add(session: Session, name: str, kind: str, *, watermark: datetime | None, now: datetime) -> Schedule:
    options = {"campaign": "367af2a3-ca62-5c10-bb37-5e45aa2e6206"} if kind == "campaign" else {}
    definition = build_definition(name, kind=kind, dataset=DATASET, every="1m", options=options)
    schedule = create_schedule(session, definition, source=ScheduleSource.CLI, now=now - timedelta(days=1))
    schedule.watermark = watermark
    return schedule


def _three_schedules(session_factory: sessionmaker[Session], now: datetime) -> None:
    """``behind``: two hours behind; ``current``: a minute behind; ``plain``: a campaign schedule, no watermark."""
    with session_factory() as session:
        _add(session, "behind", "explorer-window", watermark=now - timedelta(hours=2), now=now)
        _add(session, "current", "explorer-window", watermark=now - timedelta(minutes=1), now=now)
        _add(session, "plain", "campaign", watermark=None, now=now)
        session.commit()


def test_lag_is_measured_for_live_window_schedules_only() -> None:
    window = Schedule(kind="explorer-window", watermark=NOW - timedelta(seconds=90))
    assert watermark_lag_s(window, NOW) == 90.0
    assert watermark_lag_s(Schedule(kind="explorer-window", watermark=NOW + timedelta(seconds=5)), NOW) == 0.0
    assert watermark_lag_s(Schedule(kind="explorer-window", watermark=None), NOW) is None
    assert watermark_lag_s(Schedule(kind="plain", watermark=NOW - timedelta(days=3)), NOW) is None
    finished = Schedule(kind="spans-window", watermark=NOW - timedelta(days=3), finished_at=NOW)
    assert watermark_lag_s(finished, NOW) is None
    assert is_lagging(3601.0, 3600.0) and not is_lagging(3600.0, 3600.0)
    assert not is_lagging(None, 3600.0) and not is_lagging(10**9, 0.0)  # 0 turns the alert off


def test_the_jobs_page_flags_a_lagging_schedule(session_factory: sessionmaker[Session], database_url: str) -> None:
    _three_schedules(session_factory, NOW)
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, watermark_lag_alert_s=3600)
    with serve(build_app(config, now=lambda: NOW)) as client:
        html = client.get("/", headers=auth_header()).text
        scrape = client.get("/metrics").text

    def row(name: str) -> str:
        found = re.search(rf'<tr data-schedule="{name}">.*?</tr>', html, re.S)
        assert found is not None
        return found.group(0)

    assert 'data-lagging="1"' in row("behind") and "lagging" in row("behind") and "2h 00m" in row("behind")
    assert "lagging" not in row("current") and "1m 00s" in row("current")
    assert "lagging" not in row("plain")

    samples = {
        (s.name, s.labels.get("schedule")): s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
    }
    assert samples[("dsimport_schedule_watermark_lag_seconds", "behind")] == 7200.0
    assert samples[("dsimport_schedule_watermark_lag_seconds", "current")] == 60.0
    assert samples[("dsimport_schedule_watermark_lagging", "behind")] == 1.0
    assert samples[("dsimport_schedule_watermark_lagging", "current")] == 0.0
    assert ("dsimport_schedule_watermark_lag_seconds", "plain") not in samples
    assert samples[("dsimport_schedule_watermark_lag_alert_seconds", None)] == 3600.0


def test_schedules_list_flags_a_lagging_schedule(
    session_factory: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _three_schedules(session_factory, datetime.now(UTC))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DSIMPORT_WATERMARK_LAG_ALERT_S", "3600")
    assert main(["schedules", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["behind"]["lagging"] is True and rows["behind"]["watermark_lag_s"] >= 7200
    assert rows["current"]["lagging"] is False and 60 <= rows["current"]["watermark_lag_s"] < 3600
    assert rows["plain"]["watermark_lag_s"] is None and rows["plain"]["lagging"] is False
    assert main(["schedules", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["behind"].endswith("LAGGING") and "LAGGING" not in lines["current"]
    # Raised past the lag, the threshold flags nothing.
    monkeypatch.setenv("DSIMPORT_WATERMARK_LAG_ALERT_S", "86400")
    assert main(["schedules", "list"]) == 0
    assert "LAGGING" not in capsys.readouterr().out
