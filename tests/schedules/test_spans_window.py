"""spans-window fires, without a broker: the spans search walked page by page over the window, every span imported
once with the schedule's mapping contract, the watermark, failures and chunk retries. Both ledgers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from store.jobs import get_job_by_key
from store.models import ImportJob, ImportKind, JobStatus, RunStatus, ScheduleItem, ScheduleKind, ScheduleRun
from store.schedule_runs import list_runs
from store.schedules import get_schedule
from triggers.schedules import spans_window
from triggers.schedules.firing import FireOutcome, fire
from triggers.schedules.specs import InvalidSchedule, build_definition

from .conftest import NOW, TARGET, Harness, at

MAPPING = ["input=span_attributes:gen_ai.prompt", "env=resource_attributes:deployment.environment"]
CONTRACT = {
    "mappings": [
        {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}},
        {"target_field": "env", "source_field": {"namespace": "resource_attributes", "key": "deployment.environment"}},
    ],
    "version": 1,
}


def _add(harness: Harness, **options: Any) -> None:
    harness.add("spans", "spans-window", every="1m", since=NOW.isoformat(), mapping=MAPPING, **options)


def _job(harness: Harness, job_id: str) -> ImportJob:
    with harness.sessions() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _spans_of(harness: Harness, job_ids: list[str]) -> list[str]:
    return [f"{ref['trace_id']}:{ref['span_id']}" for job_id in job_ids
            for ref in _job(harness, job_id).params["span_references"]]  # fmt: skip


def _items(harness: Harness) -> list[str]:
    with harness.sessions() as session:
        return sorted(session.scalars(select(ScheduleItem.item_id)))


def _searches(harness: Harness) -> list[tuple[Any, ...]]:
    return [args for name, args in harness.api.calls if name == "search_spans"]


def test_the_definition_keeps_the_search_the_contract_and_the_chunk_size() -> None:
    definition = build_definition(
        "s", kind="spans-window", dataset=TARGET, every="1m", options={"search": " service_name = 'bot' ",
                                                                          "mapping": MAPPING, "chunk_size": 20}
    )  # fmt: skip
    assert (definition.kind, definition.import_kind) == (ScheduleKind.SPANS_WINDOW, ImportKind.SPANS)
    assert definition.params == {"search": "service_name = 'bot'", "mapping_contract": CONTRACT, "chunk_size": 20}
    for options, message in [
        ({}, "a spans-window schedule needs mapping"),
        ({"mapping": ["input"]}, "expected TARGET=NAMESPACE:KEY"),
        ({"mapping": {"mappings": []}}, "mapping.mappings: List should have at least 1 item"),
        ({"mapping": MAPPING, "search": ""}, "search must be a non-empty search expression"),
        ({"mapping": MAPPING, "filter": {"field": "a", "op": "eq", "value": 1}}, "does not take filter"),
    ]:
        with pytest.raises(InvalidSchedule, match=message):
            build_definition("s", kind="spans-window", dataset=TARGET, every="1m", options=options)


def test_each_span_is_imported_once_with_the_mapping_contract_and_the_watermark_follows(harness: Harness) -> None:
    _add(harness, search="service_name = 'bot'", chunk_size=2)
    harness.api.spans = {("t1", "s1"): at(10), ("t1", "s2"): at(20), ("t2", "s1"): at(59), ("t3", "s1"): at(60)}

    first = fire(harness.context, "spans", at(60))
    assert first.outcome == FireOutcome.SUBMITTED
    assert _spans_of(harness, first.job_ids) == ["t1:s1", "t1:s2", "t2:s1"]
    jobs = [_job(harness, job_id) for job_id in first.job_ids]
    assert [job.kind for job in jobs] == [ImportKind.SPANS, ImportKind.SPANS]
    assert all(job.params["mapping_contract"] == CONTRACT for job in jobs)
    assert [job.idempotency_key for job in jobs] == [f"schedule:spans:2026-03-01T12:01:00Z:{n}" for n in range(2)]
    assert harness.sent == first.job_ids
    # The search got the schedule's expression and the window as from and to.
    assert _searches(harness)[0][:3] == ("service_name = 'bot'", NOW, at(60))

    second = fire(harness.context, "spans", at(120))
    assert _spans_of(harness, second.job_ids) == ["t3:s1"]
    third = fire(harness.context, "spans", at(180))
    assert third.outcome == FireOutcome.EMPTY
    with harness.sessions() as session:
        schedule = get_schedule(session, "spans")
        assert schedule is not None and schedule.watermark == at(180)

    # A search that returns spans of earlier windows again (its bounds are the API's business) imports nothing twice.
    with harness.sessions() as session:
        schedule = get_schedule(session, "spans")
        assert schedule is not None
        schedule.watermark = NOW
        session.commit()
    harness.api.spans[("t4", "s1")] = at(30)
    again = fire(harness.context, "spans", at(240))
    assert _spans_of(harness, again.job_ids) == ["t4:s1"]
    assert _items(harness) == ["t1:s1", "t1:s2", "t2:s1", "t3:s1", "t4:s1"]


def test_every_page_of_the_search_is_read(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans_window, "SPANS_PAGE_SIZE", 2)
    _add(harness, chunk_size=100)
    harness.api.spans = {(f"t{n}", "s"): at(n) for n in range(5)}
    report = fire(harness.context, "spans", at(60))
    assert _spans_of(harness, report.job_ids) == [f"t{n}:s" for n in range(5)]
    assert [args[4] for args in _searches(harness)] == [None, "2", "4"]
    assert all(args[0] is None for args in _searches(harness))  # no --search: every span


def test_a_cursor_handed_out_twice_fails_the_run_and_records_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spans_window, "SPANS_PAGE_SIZE", 1)
    _add(harness)
    harness.api.spans = {("t1", "s"): at(1), ("t2", "s"): at(2)}
    harness.api.spans_cursor_repeats = True
    report = fire(harness.context, "spans", at(60))
    assert report.outcome == FireOutcome.FAILED and "cursor '1' twice" in (report.message or "")
    assert _items(harness) == []


def test_the_watermark_stays_when_the_search_fails_and_the_next_fire_covers_the_window(harness: Harness) -> None:
    _add(harness)
    harness.api.spans = {("t1", "s"): at(1), ("t2", "s"): at(70)}
    harness.api.fail_next = 1
    failed = fire(harness.context, "spans", at(60))
    assert failed.outcome == FireOutcome.FAILED and "search is down" in (failed.message or "")
    with harness.sessions() as session:
        schedule = get_schedule(session, "spans")
        assert schedule is not None and schedule.watermark == NOW
    recovered = fire(harness.context, "spans", at(120))
    assert _spans_of(harness, recovered.job_ids) == ["t1:s", "t2:s"]


def test_the_window_stops_the_settle_lag_before_the_fire(harness: Harness) -> None:
    harness.settle_lag_s = 30.0
    _add(harness)
    harness.api.spans = {("t1", "s"): at(10), ("late", "s"): at(50)}
    first = fire(harness.context, "spans", at(60))
    assert _spans_of(harness, first.job_ids) == ["t1:s"]
    second = fire(harness.context, "spans", at(120))
    assert _spans_of(harness, second.job_ids) == ["late:s"]
    assert [args[1:3] for args in _searches(harness)] == [(NOW, at(30)), (at(30), at(90))]


def test_a_failed_chunk_is_retried_with_its_mapping_contract(harness: Harness) -> None:
    _add(harness, chunk_size=2)
    harness.api.spans = {("t1", "s"): at(1), ("t2", "s"): at(2), ("t3", "s"): at(3)}
    first = fire(harness.context, "spans", at(60))
    failed = _job(harness, first.job_ids[0])
    with harness.sessions() as session:
        job = session.get(ImportJob, failed.id)
        assert job is not None
        job.status = JobStatus.FAILED
        session.commit()
    retried = fire(harness.context, "spans", at(120))
    with harness.sessions() as session:
        retry = get_job_by_key(session, f"{failed.idempotency_key}:retry:1")
        assert retry is not None
        assert retry.params == failed.params
        assert retry.id in retried.job_ids
    [run] = [r for r in _runs(harness) if r.fire_time == at(120)]
    assert run.status == RunStatus.SUBMITTED and "retry 1 of 3" in (run.message or "")


def _runs(harness: Harness) -> list[ScheduleRun]:
    with harness.sessions() as session:
        schedule = get_schedule(session, "spans")
        assert schedule is not None
        return list(list_runs(session, schedule.id, limit=100))
