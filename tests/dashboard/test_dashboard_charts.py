"""The two charts: the numbers the database aggregates per bucket, and the SVG drawn from them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import chart_data, charts
from dashboard.ttl_cache import TtlCache
from store.models import JobStatus
from store.state_machine import apply_transition

from .conftest import NOW, add_job, auth_header

SVG = "{http://www.w3.org/2000/svg}"
# (minutes before NOW it ended, ending, seconds after the remote end it was recorded, dataset)
ENDINGS = [
    (3, JobStatus.COMPLETED, 1.0, "ds-a"),
    (3, JobStatus.COMPLETED, 3.0, "ds-a"),
    (3, JobStatus.FAILED, 9.0, "ds-b"),
    (3, JobStatus.LOST, None, "ds-a"),
    (10, JobStatus.COMPLETED, 2.0, "ds-b"),
    (10, JobStatus.REJECTED, None, "ds-b"),
    (400, JobStatus.COMPLETED, 5.0, "ds-a"),  # outside a six-hour window
]


def _end(session: Session, key: str, minutes_ago: int, status: JobStatus, lag_s: float | None, dataset: str) -> None:
    finished = NOW - timedelta(minutes=minutes_ago, seconds=-20)
    job = add_job(session, key, dataset_id=dataset, created=finished - timedelta(minutes=1))
    apply_transition(job, JobStatus.SUBMITTING, now=finished - timedelta(seconds=50))
    if status is not JobStatus.REJECTED:
        apply_transition(job, JobStatus.RUNNING, now=finished - timedelta(seconds=40))
    if lag_s is not None:
        job.remote_ended_at = finished - timedelta(seconds=lag_s)
    apply_transition(job, status, now=finished)


@pytest.fixture
def ended(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory() as session:
        for i, ending in enumerate(ENDINGS):
            _end(session, f"ended-{i}", *ending)
        add_job(session, "still-pending")
        session.commit()
    return session_factory


def _parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # noqa: S314 - our own output, parsed to check it
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def test_window_is_whole_buckets_ending_after_now() -> None:
    window = chart_data.chart_window(NOW + timedelta(seconds=30), 6)
    assert window.bucket_s == 60 and len(window.starts()) == 360
    assert window.start == datetime(2026, 3, 1, 6, 1, tzinfo=UTC) and window.end == NOW + timedelta(minutes=1)
    wide = chart_data.chart_window(NOW, 24)
    assert wide.bucket_s == 240 and len(wide.starts()) == 360
    with pytest.raises(ValueError):
        chart_data.chart_window(NOW, 0)


def test_finished_per_minute_by_outcome(ended: sessionmaker[Session]) -> None:
    window = chart_data.chart_window(NOW, 6)
    with ended() as session:
        buckets = chart_data.finished_per_bucket(session, window)
        only_b = chart_data.finished_per_bucket(session, window, dataset_id="ds-b")
    busy = {b.start: (b.completed, b.failed, b.other) for b in buckets if b.total}
    assert busy == {NOW - timedelta(minutes=3): (2, 1, 1), NOW - timedelta(minutes=10): (1, 0, 1)}
    assert len(buckets) == len(window.starts())
    assert {b.start: (b.completed, b.failed, b.other) for b in only_b if b.total} == {
        NOW - timedelta(minutes=3): (0, 1, 0),
        NOW - timedelta(minutes=10): (1, 0, 1),
    }

    root = _parse(charts.finished_chart(buckets, window, scope=""))
    bars = root.findall(f".//{SVG}rect[@data-outcome]")
    # One bar segment per non-zero (bucket, outcome): 3 + 2.
    assert sorted((b.get("data-start"), b.get("data-outcome"), b.get("data-count")) for b in bars) == sorted(
        [
            ((NOW - timedelta(minutes=3)).isoformat(), "completed", "2"),
            ((NOW - timedelta(minutes=3)).isoformat(), "failed", "1"),
            ((NOW - timedelta(minutes=3)).isoformat(), "other", "1"),
            ((NOW - timedelta(minutes=10)).isoformat(), "completed", "1"),
            ((NOW - timedelta(minutes=10)).isoformat(), "other", "1"),
        ]
    )
    assert all(bar.find(f"{SVG}title") is not None for bar in bars)  # a tooltip on each
    assert [e.get("data-legend") for e in root.findall(f".//{SVG}g[@data-legend]")] == [
        "COMPLETED", "FAILED", "other endings"
    ]
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "3 COMPLETED, 1 FAILED, 2 with another ending" in (desc.text or "")
    # The taller segment of the stack: two completed stand twice as high as one failed.
    heights = {
        b.get("data-outcome"): float(b.get("height") or 0) for b in bars if "11:57" in (b.get("data-start") or "")
    }
    assert heights["completed"] == pytest.approx(2 * heights["failed"], abs=0.2)


def test_detection_lag_median_and_max_per_bucket(ended: sessionmaker[Session]) -> None:
    window = chart_data.chart_window(NOW, 6)
    with ended() as session:
        lag = chart_data.detection_lag(session, window)
    # Jobs that ended with no remote ending (LOST, REJECTED) have no lag; the one outside the window is left out.
    assert [(b.start, b.count) for b in lag] == [(NOW - timedelta(minutes=10), 1), (NOW - timedelta(minutes=3), 3)]
    assert lag[1].median_s == pytest.approx(3.0, abs=0.01) and lag[1].max_s == pytest.approx(9.0, abs=0.01)
    assert lag[0].median_s == pytest.approx(2.0, abs=0.01)

    root = _parse(charts.detection_lag_chart(lag, window, scope=""))
    for series, values in (("median", [2.0, 3.0]), ("max", [2.0, 9.0])):
        group = root.find(f".//{SVG}g[@data-series='{series}']")
        assert group is not None
        points = group.findall(f"{SVG}circle")
        assert [float(p.get("data-value") or 0) for p in points] == pytest.approx(values, abs=0.01)
        polyline = group.find(f"{SVG}polyline")
        assert polyline is not None and len((polyline.get("points") or "").split()) == 2


def test_empty_charts_say_so() -> None:
    window = chart_data.chart_window(NOW, 1)
    finished = _parse(charts.finished_chart([chart_data.OutcomeBucket(s) for s in window.starts()], window, scope=""))
    assert finished.findall(f".//{SVG}rect[@data-outcome]") == []
    assert "no import finished in the last 1 hours" in ET.tostring(finished, encoding="unicode")
    lag = _parse(charts.detection_lag_chart([], window, scope=""))
    assert lag.findall(f".//{SVG}circle") == []


def test_text_in_a_chart_is_escaped() -> None:
    window = chart_data.chart_window(NOW, 1)
    markup = str(charts.finished_chart([], window, scope=" on <script>alert('x')</script> & co"))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    title = _parse(markup).find(f"{SVG}title")
    assert title is not None and title.text == "Imports finished on <script>alert('x')</script> & co"


def test_pages_embed_both_charts_and_take_hours(client: httpx.Client, ended: sessionmaker[Session]) -> None:
    page = client.get("/", headers=auth_header()).text
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) == 2
    finished, lag = (_parse(svg) for svg in svgs)
    assert len(finished.findall(f".//{SVG}rect[@data-outcome]")) == 5
    assert len(lag.findall(f".//{SVG}circle")) == 4
    assert "<script" not in page and "http" not in "".join(svgs).replace("http://www.w3.org/2000/svg", "")
    # Eight hours reach the job that ended 400 minutes ago; one dataset's page counts only its own jobs.
    wide = client.get("/?hours=8", headers=auth_header()).text
    assert len(_parse(re.findall(r"<svg .*?</svg>", wide, re.S)[0]).findall(f".//{SVG}rect[@data-outcome]")) == 6
    mine = client.get("/datasets/ds-b", headers=auth_header()).text
    desc = re.search(r'<desc id="chart-finished-desc">(.*?)</desc>', mine)
    assert desc is not None and "1 COMPLETED, 1 FAILED, 1 with another ending" in desc.group(1)



def test_a_drawn_chart_is_reused_for_its_ttl_then_drawn_anew() -> None:
    now = [0.0]
    draws: list[str] = []
    cache: TtlCache[str] = TtlCache(15, max_entries=2, clock=lambda: now[0])

    def draw(name: str) -> Callable[[], str]:
        return lambda: draws.append(name) or f"{name}-{len(draws)}"

    assert cache.get("all", draw("all")) == "all-1"
    now[0] = 14.9
    assert cache.get("all", draw("all")) == "all-1"  # the reloads of a few seconds draw nothing
    assert cache.get("ds-a", draw("ds-a")) == "ds-a-2"  # another scope is its own entry
    now[0] = 15.0
    assert cache.get("all", draw("all")) == "all-3"
    cache.get("ds-b", draw("ds-b"))  # a third entry pushes out the oldest (ds-a)
    assert cache.get("ds-a", draw("ds-a")) == "ds-a-5"


def test_only_a_chart_slow_to_draw_is_kept() -> None:
    now = [0.0]
    cache: TtlCache[int] = TtlCache(15, min_cost_s=0.1, clock=lambda: now[0])
    draws = []

    def draw(cost_s: float) -> Callable[[], int]:
        def run() -> int:
            now[0] += cost_s
            draws.append(cost_s)
            return len(draws)

        return run

    assert cache.get("quiet", draw(0.01)) == 1
    assert cache.get("quiet", draw(0.01)) == 2  # cheap: drawn afresh, never stale
    assert cache.get("busy", draw(0.5)) == 3
    assert cache.get("busy", draw(0.5)) == 3  # slow: kept for the reloads that follow
