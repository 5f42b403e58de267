"""The jobs page's two charts, drawn on the server as plain SVG (no script, nothing fetched from elsewhere).

The SVG is built with ElementTree, which escapes every text and attribute value, so a dataset name in a title
stays text. Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what it
shows (for screen readers), axis labels and a legend; every bar and point has its own ``<title>`` (the browser
shows it as a tooltip). Bars and points carry ``data-`` attributes with their numbers, which the tests read.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import datetime

from markupsafe import Markup

from .chart_data import ChartWindow, LagBucket, OutcomeBucket
from .formatting import duration

__all__ = ["OUTCOME_COLOURS", "detection_lag_chart", "finished_chart"]

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 42
OUTCOME_COLOURS = {"completed": "#2e9e55", "failed": "#d64541", "other": "#e0a030"}
OUTCOME_LABELS = {"completed": "COMPLETED", "failed": "FAILED", "other": "other endings"}
LAG_COLOURS = {"median": "#2f6fde", "max": "#a32019"}
X_TICKS = 6


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


class _Frame:
    """The plot area of one chart: maps bucket index and value to x and y, and draws the axes."""

    def __init__(self, chart_id: str, title: str, description: str, window: ChartWindow, top_value: float) -> None:
        self.window = window
        self.slots = max(1, len(window.starts()))
        self.top_value = top_value if top_value > 0 else 1.0
        self.svg = ET.Element(
            "svg",
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "id": chart_id,
                "class": "chart",
                "viewBox": f"0 0 {WIDTH} {HEIGHT}",
                # As wide as the page allows, the drawing scaled to it (the viewBox keeps its proportions).
                "width": "100%",
                "role": "img",
                "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
                "font-family": "system-ui, sans-serif",
                "font-size": "11",
            },
        )
        ET.SubElement(self.svg, "title", {"id": f"{chart_id}-title"}).text = title
        ET.SubElement(self.svg, "desc", {"id": f"{chart_id}-desc"}).text = description
        # The title again, visible (an SVG <title> is only a tooltip); the screen reader has it once already.
        ET.SubElement(
            self.svg,
            "text",
            {"x": str(WIDTH - RIGHT), "y": "18", "text-anchor": "end", "font-weight": "600", "font-size": "13",
             "aria-hidden": "true"},
        ).text = title
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = HEIGHT - TOP - BOTTOM

    def x(self, index: float) -> float:
        return LEFT + self.plot_w * index / self.slots

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - value / self.top_value)

    def axes(self, y_label: str, y_text: Callable[[float], str]) -> None:
        grid = ET.SubElement(self.svg, "g", {"class": "axes", "stroke": "#c9ced8"})
        ET.SubElement(grid, "line", _line(LEFT, TOP + self.plot_h, LEFT + self.plot_w, TOP + self.plot_h))
        ET.SubElement(grid, "line", _line(LEFT, TOP, LEFT, TOP + self.plot_h))
        labels = ET.SubElement(self.svg, "g", {"class": "labels", "fill": "#4a5263"})
        for fraction in (0.0, 0.5, 1.0):
            value = self.top_value * fraction
            y = self.y(value)
            ET.SubElement(grid, "line", {**_line(LEFT, y, LEFT + self.plot_w, y), "stroke-dasharray": "2 3"})
            ET.SubElement(labels, "text", {"x": str(LEFT - 6), "y": f"{y + 4:.1f}", "text-anchor": "end"}).text = (
                y_text(value)
            )
        starts = self.window.starts()
        step = max(1, math.ceil(len(starts) / X_TICKS))
        for index in range(0, len(starts), step):
            ET.SubElement(
                labels, "text", {"x": f"{self.x(index):.1f}", "y": str(TOP + self.plot_h + 16), "text-anchor": "middle"}
            ).text = starts[index].strftime("%H:%M")
        ET.SubElement(
            labels, "text", {"x": f"{LEFT + self.plot_w / 2:.1f}", "y": str(HEIGHT - 6), "text-anchor": "middle"}
        ).text = f"time (UTC), {_bucket_words(self.window.bucket_s)} per bucket"
        ET.SubElement(
            labels,
            "text",
            {"x": "14", "y": f"{TOP + self.plot_h / 2:.1f}", "text-anchor": "middle",
             "transform": f"rotate(-90 14 {TOP + self.plot_h / 2:.1f})"},
        ).text = y_label

    def legend(self, entries: Sequence[tuple[str, str]]) -> None:
        legend = ET.SubElement(self.svg, "g", {"class": "legend"})
        x = float(LEFT)
        for label, colour in entries:
            item = ET.SubElement(legend, "g", {"data-legend": label})
            ET.SubElement(item, "rect", {"x": f"{x:.1f}", "y": "8", "width": "12", "height": "12", "fill": colour})
            ET.SubElement(item, "text", {"x": f"{x + 16:.1f}", "y": "18"}).text = label
            x += 28 + 7 * len(label)

    def empty(self, text: str) -> None:
        ET.SubElement(
            self.svg,
            "text",
            {"class": "empty", "x": f"{LEFT + self.plot_w / 2:.1f}", "y": f"{TOP + self.plot_h / 2:.1f}",
             "text-anchor": "middle", "fill": "#6b7385"},
        ).text = text

    def markup(self) -> Markup:
        # ElementTree escaped every text and attribute: the string is safe to put in the page as it is.
        return Markup(ET.tostring(self.svg, encoding="unicode"))  # noqa: S704



def _line(x1: float, y1: float, x2: float, y2: float) -> dict[str, str]:
    return {"x1": f"{x1:.1f}", "y1": f"{y1:.1f}", "x2": f"{x2:.1f}", "y2": f"{y2:.1f}"}


def _bucket_words(bucket_s: int) -> str:
    minutes = bucket_s // 60
    return "one minute" if minutes == 1 else f"{minutes} minutes"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``: round axis labels."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def finished_chart(buckets: Sequence[OutcomeBucket], window: ChartWindow, *, scope: str) -> Markup:
    """Stacked bars: how many imports ended in each bucket, COMPLETED, FAILED and the other endings."""
    total = sum(b.total for b in buckets)
    hours = (window.end - window.start).total_seconds() / 3600
    description = (
        f"Imports finished{scope} per {_bucket_words(window.bucket_s)} over the last {_fmt(hours)} hours, by outcome: "
        f"{sum(b.completed for b in buckets)} COMPLETED, {sum(b.failed for b in buckets)} FAILED, "
        f"{sum(b.other for b in buckets)} with another ending."
    )
    frame = _Frame("chart-finished", f"Imports finished{scope}", description, window,
                   _nice_ceiling(max((b.total for b in buckets), default=0)))
    frame.axes("imports", _fmt)
    frame.legend([(OUTCOME_LABELS[k], colour) for k, colour in OUTCOME_COLOURS.items()])
    if total == 0:
        frame.empty(f"no import finished in the last {_fmt(hours)} hours")
        return frame.markup()
    bars = ET.SubElement(frame.svg, "g", {"class": "bars"})
    index_of = {start: i for i, start in enumerate(window.starts())}
    bar_w = max(1.0, frame.plot_w / frame.slots - 1)
    for bucket in buckets:
        if bucket.total == 0 or bucket.start not in index_of:
            continue
        x = frame.x(index_of[bucket.start])
        base = 0
        for outcome in OUTCOME_COLOURS:
            count = getattr(bucket, outcome)
            if not count:
                continue
            y_top, y_bottom = frame.y(base + count), frame.y(base)
            rect = ET.SubElement(
                bars,
                "rect",
                {"x": f"{x:.1f}", "y": f"{y_top:.1f}", "width": f"{bar_w:.1f}", "height": f"{y_bottom - y_top:.1f}",
                 "fill": OUTCOME_COLOURS[outcome], "data-outcome": outcome, "data-count": str(count),
                 "data-start": bucket.start.isoformat()},
            )
            ET.SubElement(rect, "title").text = f"{_when(bucket.start)}: {count} {OUTCOME_LABELS[outcome]}"
            base += count
    return frame.markup()


def detection_lag_chart(buckets: Sequence[LagBucket], window: ChartWindow, *, scope: str) -> Markup:
    """Two lines over the buckets where jobs ended: the median and the longest detection lag."""
    hours = (window.end - window.start).total_seconds() / 3600
    ended = sum(b.count for b in buckets)
    worst = max((b.max_s for b in buckets), default=0.0)
    description = (
        f"Detection lag{scope} over the last {_fmt(hours)} hours: how long after a remote task ended the ledger "
        f"recorded its ending, median and maximum per {_bucket_words(window.bucket_s)}, over {ended} jobs"
        + (f"; the longest was {_fmt(worst)} s." if ended else ".")
    )
    frame = _Frame("chart-lag", f"Detection lag{scope}", description, window, _nice_ceiling(worst))
    frame.axes("lag (seconds)", lambda v: f"{_fmt(v)} s")
    frame.legend([("median", LAG_COLOURS["median"]), ("max", LAG_COLOURS["max"])])
    if not buckets:
        frame.empty(f"no remote task ended in the last {_fmt(hours)} hours")
        return frame.markup()
    index_of = {start: i for i, start in enumerate(window.starts())}
    half = frame.plot_w / frame.slots / 2
    for series in ("median", "max"):
        group = ET.SubElement(frame.svg, "g", {"class": f"series-{series}", "data-series": series})
        points = []
        for bucket in buckets:
            if bucket.start not in index_of:
                continue
            value = bucket.median_s if series == "median" else bucket.max_s
            x, y = frame.x(index_of[bucket.start]) + half, frame.y(max(0.0, value))
            points.append(f"{x:.1f},{y:.1f}")
            dot = ET.SubElement(
                group, "circle",
                {"cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": "3", "fill": LAG_COLOURS[series],
                 "data-value": f"{value:.3f}", "data-start": bucket.start.isoformat()},
            )
            ET.SubElement(dot, "title").text = (
                f"{_when(bucket.start)}: {series} {duration(value) if value >= 60 else _fmt(value) + ' s'}"
                f" over {bucket.count} jobs"
            )
        group.insert(0, ET.Element(
            "polyline",
            {"points": " ".join(points), "fill": "none", "stroke": LAG_COLOURS[series], "stroke-width": "1.5"},
        ))
    return frame.markup()
