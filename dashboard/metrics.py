"""``/metrics``: the ledger's and the workers' numbers in the Prometheus text format.

Built fresh on every scrape from two sources: the ledger (job counts by status and kind, how late the oldest due
poll is, dead letters waiting, schedules) and the Redis hash the workers publish (:mod:`jobs.metrics`: poll round
latency, API calls and errors, last poll and beat tick). Either source may be down; what it would have given is
then left out and its ``*_up`` gauge says 0. Only counts are exported, never a job's data, so the endpoint needs no
login.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.metrics import POLL_BUCKETS_S, WorkerMetrics
from triggers.schedules.lag import is_lagging

__all__ = ["CONTENT_TYPE", "LedgerNumbers", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class LedgerNumbers:
    """What /metrics reads from the ledger."""

    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due_poll: datetime | None = None
    dead_letters_waiting: int = 0
    schedules: dict[str, int] = field(default_factory=dict)
    webhook_deliveries: dict[str, int] = field(default_factory=dict)
    partial_jobs: dict[str, int] = field(default_factory=dict)
    duplicates_skipped: dict[str, int] = field(default_factory=dict)
    """Completed jobs that imported fewer records than they requested, by kind."""
    watermark_lags: dict[str, float] = field(default_factory=dict)
    """Seconds each window schedule's watermark trails the clock, by schedule name."""
    watermark_lag_alert_s: float = 0.0


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


def render(ledger: LedgerNumbers | None, worker: WorkerMetrics | None, *, now: datetime) -> bytes:
    """The exposition text for one scrape; a None source was unreachable."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*_ledger_families(ledger, now), *_worker_families(worker)]))
    return generate_latest(registry)


def _up(name: str, doc: str, up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=1.0 if up else 0.0)


def _ledger_families(ledger: LedgerNumbers | None, now: datetime) -> Iterator[Metric]:
    yield _up("dsimport_ledger_up", "1 when the ledger could be read for this scrape.", ledger is not None)
    if ledger is None:
        return
    jobs = GaugeMetricFamily(
        "dsimport_jobs", "Import jobs in the ledger, by status and kind.", labels=["status", "kind"]
    )
    for (status, kind), count in sorted(ledger.jobs.items()):
        jobs.add_metric([status, kind], float(count))
    yield jobs
    lag = 0.0 if ledger.oldest_due_poll is None else max(0.0, (now - ledger.oldest_due_poll).total_seconds())
    yield GaugeMetricFamily(
        "dsimport_poll_lag_seconds",
        "How long the most overdue running job has waited past its poll time (0: none is overdue).",
        value=lag,
    )
    yield GaugeMetricFamily(
        "dsimport_dead_letters_waiting", "Refused import requests not retried yet.", value=ledger.dead_letters_waiting
    )
    schedules = GaugeMetricFamily("dsimport_schedules", "Beat schedules, by state.", labels=["state"])
    for state in ("active", "paused", "finished"):
        schedules.add_metric([state], float(ledger.schedules.get(state, 0)))
    yield schedules
    deliveries = GaugeMetricFamily(
        "dsimport_webhook_deliveries",
        "Webhook deliveries in the ledger's outbox, by status (pending, delivered, failed: given up).",
        labels=["status"],
    )
    for status, count in sorted(ledger.webhook_deliveries.items()):
        deliveries.add_metric([status], float(count))
    yield deliveries
    yield from _outcome_families(ledger)


def _outcome_families(ledger: LedgerNumbers) -> Iterator[Metric]:
    partial = GaugeMetricFamily(
        "dsimport_jobs_partial",
        "Completed import jobs that imported fewer records than they requested (the API skipped some), by kind.",
        labels=["kind"],
    )
    for kind, count in sorted(ledger.partial_jobs.items()):
        partial.add_metric([kind], float(count))
    yield partial
    duplicates = GaugeMetricFamily(
        "dsimport_duplicates_skipped",
        "Items --skip-existing left out because the target held them already, over the jobs kept, by kind.",
        labels=["kind"],
    )
    for kind, count in sorted(ledger.duplicates_skipped.items()):
        duplicates.add_metric([kind], float(count))
    yield duplicates
    lag = GaugeMetricFamily(
        "dsimport_schedule_watermark_lag_seconds",
        "How far a window schedule's watermark trails the clock (now - watermark), by schedule.",
        labels=["schedule"],
    )
    lagging = GaugeMetricFamily(
        "dsimport_schedule_watermark_lagging",
        "1 when a window schedule's watermark lag is past DSIMPORT_WATERMARK_LAG_ALERT_S, by schedule.",
        labels=["schedule"],
    )
    for name, seconds in sorted(ledger.watermark_lags.items()):
        lag.add_metric([name], seconds)
        lagging.add_metric([name], 1.0 if is_lagging(seconds, ledger.watermark_lag_alert_s) else 0.0)
    yield lag
    yield lagging
    yield GaugeMetricFamily(
        "dsimport_schedule_watermark_lag_alert_seconds",
        "The watermark lag past which a schedule counts as lagging (0: never).",
        value=ledger.watermark_lag_alert_s,
    )


def _worker_families(worker: WorkerMetrics | None) -> Iterator[Metric]:
    yield _up("dsimport_worker_metrics_up", "1 when the workers' published metrics could be read.", worker is not None)
    if worker is None:
        return
    buckets = [(str(le), float(worker.poll_buckets.get(str(le), 0))) for le in POLL_BUCKETS_S]
    buckets.append(("+Inf", float(worker.poll_buckets.get("+Inf", worker.poll_rounds))))
    yield HistogramMetricFamily(
        "dsimport_poll_round_seconds",
        "Duration of poll task runs that had due jobs (claim, observe, write back).",
        buckets=buckets,
        sum_value=worker.poll_seconds_sum,
    )
    yield CounterMetricFamily("dsimport_poll_jobs", "Job observations made by the poller.", value=worker.poll_jobs)
    calls = CounterMetricFamily("dsimport_api_calls", "Calls to the Datasets API, by operation.", labels=["operation"])
    errors = CounterMetricFamily(
        "dsimport_api_errors", "Datasets API calls that failed (HTTP error or transport), by operation.",
        labels=["operation"],
    )
    for operation in sorted(worker.api_calls):
        calls.add_metric([operation], float(worker.api_calls[operation]))
        errors.add_metric([operation], float(worker.api_errors.get(operation, 0)))
    yield calls
    yield errors
    conflicts = CounterMetricFamily(
        "dsimport_lease_conflicts",
        "Conditional ledger writes that lost to another worker's claim and did nothing, by where.",
        labels=["where"],
    )
    for where, count in sorted(worker.lease_conflicts.items()):
        conflicts.add_metric([where], float(count))
    yield conflicts
    if worker.last_poll_at is not None:
        yield GaugeMetricFamily(
            "dsimport_last_poll_timestamp_seconds", "When a worker last ran the poll task.", value=worker.last_poll_at
        )
    if worker.beat_last_tick_at is not None:
        yield GaugeMetricFamily(
            "dsimport_beat_last_tick_timestamp_seconds", "When beat last sent the poll task.",
            value=worker.beat_last_tick_at,
        )
