"""deploy/grafana/dsimport.json: a Grafana dashboard whose every query reads metrics the jobs page's /metrics exposes;
deploy/prometheus/dsimport-rules.yml: example alert rules, held to the same check.

The metric names are read out of each PromQL expression (label matchers, ranges, groupings, function calls and
keywords set aside) and compared with the sample names of a real scrape, with the ledger and the workers' numbers
both present, so a renamed metric or a typo in the dashboard fails here rather than as an empty panel.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from jobs import metrics
from store.models import ScheduleSource
from store.schedules import create_schedule
from triggers.schedules.specs import build_definition

from .conftest import NOW, PASSWORD, USER, Ledger
from .server import serve

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dsimport.json"
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "dsimport-rules.yml"
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
# A number (with a duration unit, "5m") is one token, so its unit is not taken for a name.
_TOKEN = re.compile(r"\d+(?:\.\d+)?[A-Za-z]*|[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set()
    for match in _TOKEN.finditer(text):
        rest = text[match.end() :].lstrip()
        if match.group(0)[0].isdigit() or match.group(0) in _KEYWORDS or rest.startswith("("):
            continue  # a number, a keyword or a function call
        names.add(match.group(0))
    return names


def _expressions(board: dict[str, Any]) -> list[str]:
    panels = list(board["panels"])
    for panel in board["panels"]:
        panels.extend(panel.get("panels", []))  # rows hold their own panels
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_the_parser_finds_names_and_only_names() -> None:
    expr = 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{a="b}"}[5m]))) / on (op) time() - y offset 5m'
    assert metric_names(expr) == {"x_bucket", "y"}


@pytest.fixture
def exposed(ledger: Ledger, database_url: str, metrics_redis: str, session_factory: sessionmaker[Session]) -> set[str]:
    """The sample names of one scrape with every source present: the jobs, a window schedule, the workers' numbers."""
    with session_factory() as session:
        definition = build_definition(
            "window", kind="explorer-window", dataset="ds-1", every="1m", options={"since": "2026-03-01T00:00:00Z"}
        )
        create_schedule(session, definition, source=ScheduleSource.CLI, now=NOW - timedelta(hours=1))
        session.commit()
    metrics.install(metrics_redis)
    try:
        metrics.record_poll(duration_s=0.2, claimed=2, api_calls=2, errors=1, now=1_700_000_000.0)
        metrics.record_api_call("submit", error=True)
        metrics.record_lease_conflicts("submit")
        metrics.record_beat_tick(now=1_700_000_001.0)
    finally:
        metrics.install(None)
    config = DashboardConfig(
        database_url=database_url, username=USER, password=PASSWORD, metrics_redis_url=metrics_redis
    )
    with serve(build_app(config, now=lambda: NOW)) as client:
        scrape = client.get("/metrics").text
    names = {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples}
    assert "dsimport_schedule_watermark_lag_seconds" in names  # the window schedule's
    return names


def test_every_metric_the_dashboard_queries_is_exposed(exposed: set[str]) -> None:
    board = json.loads(DASHBOARD.read_text())
    expressions = _expressions(board)
    assert len(expressions) >= 10
    queried = set()
    for expr in expressions:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        queried |= names
    assert queried - exposed == set(), f"queried but not exposed: {sorted(queried - exposed)}"
    # Every family /metrics exposes has a panel.
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in exposed}
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in queried}
    assert families - shown == set(), f"exposed but on no panel: {sorted(families - shown)}"


def test_every_metric_the_example_alert_rules_read_is_exposed(exposed: set[str]) -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {"DsimportScheduleWatermarkLagging", "DsimportPartialImports"}
    queried = set()
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, f"no metric in {rule['expr']!r}"
        queried |= names
    assert {"dsimport_schedule_watermark_lagging", "dsimport_jobs_partial"} <= queried
    assert queried - exposed == set(), f"alerted on but not exposed: {sorted(queried - exposed)}"


@pytest.mark.parametrize("key", ["title", "uid", "panels", "schemaVersion"])
def test_the_dashboard_is_importable(key: str) -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board[key]
    uids = {target["datasource"]["uid"] for panel in board["panels"] for target in panel["targets"]}
    assert uids == {"${DS_PROMETHEUS}"}  # one data source, chosen on import
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
