"""``request-record-missing``: a COMPLETED job's items against the records in its dataset, built by hand for each
kind of item, then read from a real emulator where a completed import's record is deleted behind the ledger's back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer

from .record_checker import check_completed_records

DATASET = "00000000-0000-0000-0000-00000000000d"


def _job(job_id: str, kind: str, params: dict[str, Any], *, task: str | None = None) -> dict[str, Any]:
    return {"id": job_id, "key": f"message:{job_id}", "kind": kind, "dataset_id": DATASET, "params": params,
            "status": "COMPLETED", "remote_task_id": task}  # fmt: skip


def _records(*origins: str) -> dict[str, list[dict[str, Any]]]:
    return {DATASET: [{"id": f"rec-{n}", "origin": origin, "created_at": "x"} for n, origin in enumerate(origins)]}


def _check(
    jobs: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]], tasks: dict[str, dict[str, Any]]
) -> tuple[list[tuple[str, str]], list[str], int]:
    violations: list[tuple[str, str]] = []
    notes: list[str] = []
    checked = check_completed_records(
        jobs, records, tasks, {}, lambda kind, line: violations.append((kind, line)), notes.append,
        judged_elsewhere=lambda job: False, history=lambda job: "-",
    )  # fmt: skip
    return violations, notes, checked


REFS = [{"trace_id": "t1", "span_id": "s1"}, {"trace_id": "t1", "span_id": "s2"}, {"trace_id": "t9", "span_id": "s9"}]


def test_spans_the_api_skipped_are_a_note_the_others_must_be_held() -> None:
    job = _job("j-spans", "spans", {"span_references": REFS, "mapping_contract": {}}, task="task-s")
    # The API planned two of the three references (t9:s9 is unavailable) and counts one skipped.
    tasks = {"task-s": {"kind": "spans", "origins": ["span:t1:s1", "span:t1:s2"], "requested": 3}}
    violations, notes, checked = _check([job], _records("span:t1:s1", "span:t1:s2"), tasks)
    assert violations == [] and checked == 3
    assert any("1 item(s) skipped by the API" in note and "span:t9:s9" in note for note in notes)
    # A planned span without its record is lost, skipped count or not.
    violations, _, _ = _check([job], _records("span:t1:s1"), tasks)
    assert [kind for kind, _ in violations] == ["request-record-missing"] and "span:t1:s2" in violations[0][1]
    # An item left out although the API counted nothing skipped is not explained: missing.
    tasks["task-s"]["requested"] = 2
    violations, _, _ = _check([job], _records("span:t1:s1", "span:t1:s2"), tasks)
    assert [line for _, line in violations] and "span:t9:s9" in violations[0][1]


def test_a_campaign_s_items_are_the_events_its_task_planned() -> None:
    # Three selected events, one deleted since the selection: the API planned two and skipped one.
    job = _job("j-camp", "campaign", {"campaign_id": "c-1"}, task="task-c")
    tasks = {"task-c": {"kind": "campaign", "origins": ["event:a", "event:b"], "requested": 3}}
    assert _check([job], _records("event:a", "event:b"), tasks)[0] == []
    violations, _, _ = _check([job], _records("event:a"), tasks)
    assert len(violations) == 1 and "event:b has no record" in violations[0][1]


def test_a_dataset_the_inventory_did_not_list_is_a_note_and_unfinished_jobs_are_not_judged() -> None:
    job = _job("j-evt", "explorer", {"completion_event_ids": ["e1"]}, task="task-e")
    violations, notes, checked = _check([job], {}, {})
    assert violations == [] and checked == 0 and any("not checked against their records" in n for n in notes)
    job["status"] = "RUNNING"
    assert _check([job], _records(), {})[0] == []


# --- against the emulator -----------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(task_duration_s=0.2) as server:
        yield server


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_record_deleted_after_its_import_completed_is_flagged(emulator: EmulatorServer) -> None:
    emulator.seed(
        {
            "events": [{"event_id": f"e{n}", "request_messages": [{"role": "user", "content": f"q{n}"}],
                        "response_messages": []} for n in range(3)],
            "traces": [{"trace_id": "trace-1", "spans": [{"span_id": "span-1"}]}],
        }
    )  # fmt: skip
    with DatasetsClient(emulator.api_key, base_url=emulator.url) as client:
        dataset = client.create_dataset("target", "").id
        events = client.import_from_explorer(dataset, ["e0", "e1", "e2"])
        mapping = {"mappings": [{"target_field": "input", "source_field": {"namespace": "span_attributes",
                                                                           "key": "k"}}]}  # fmt: skip
        references = [{"trace_id": "trace-1", "span_id": "span-1"}, {"trace_id": "gone", "span_id": "gone"}]
        spans = client.start_import(dataset, "spans", {"span_references": references, "mapping_contract": mapping})
        jobs = [
            {"id": "job-events", "key": "message:events", "kind": "explorer", "dataset_id": dataset,
             "params": {"completion_event_ids": ["e0", "e1", "e2"]}, "status": "COMPLETED",
             "remote_task_id": events.id},
            {"id": "job-spans", "key": "message:spans", "kind": "spans", "dataset_id": dataset,
             "params": {"span_references": [{"trace_id": "trace-1", "span_id": "span-1"},
                                            {"trace_id": "gone", "span_id": "gone"}]},
             "status": "COMPLETED", "remote_task_id": spans.id},
        ]  # fmt: skip
        for task_id in (events.id, spans.id):
            while client.fetch_task(dataset, task_id).status != "COMPLETED":
                emulator.advance_clock(1)

        def verdict() -> tuple[list[tuple[str, str]], list[str], int]:
            inventory = emulator.inventory([dataset])
            violations: list[tuple[str, str]] = []
            notes: list[str] = []
            checked = check_completed_records(
                jobs, inventory["records"], emulator.task_origins(), {},
                lambda kind, line: violations.append((kind, line)), notes.append,
                judged_elsewhere=lambda job: False, history=lambda job: "-",
            )  # fmt: skip
            return violations, notes, checked

        violations, notes, checked = verdict()
        assert violations == [] and checked == 5
        assert any("skipped by the API" in note and "span:gone:gone" in note for note in notes)
        # The import completed; then one of its records disappears (the ledger still says COMPLETED).
        held = emulator.inventory([dataset])["records"][dataset]
        client.delete_record(next(record["id"] for record in held if record["origin"] == "event:e1"))
        violations, _, _ = verdict()
        assert [kind for kind, _ in violations] == ["request-record-missing"]
        assert "event:e1 has no record" in violations[0][1]
