"""Each import kind end to end: real worker and beat on the real Redis, the emulator on a socket, both ledgers."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.jobs import job_events
from store.models import ImportKind, JobStatus

from .service import Requester, ServiceProcesses, wait_for_jobs

pytestmark = pytest.mark.integration


def _event(event_id: str, text: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "request_messages": [{"role": "user", "content": f"question {text}"}],
        "response_messages": [{"role": "assistant", "content": f"answer {text}"}],
    }


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MAPPING = {
    "mappings": [
        {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}},
        {"target_field": "env", "source_field": {"namespace": "resource_attributes", "key": "deployment.environment"}},
    ]
}


def seed_world(emulator: EmulatorServer, api: DatasetsClient) -> dict[str, str]:
    events = [_event(f"evt-{n}", str(n)) for n in range(5)]
    emulator.seed(
        {
            "events": events,
            "campaigns": [
                {
                    "id": "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01",
                    "name": "weekly review",
                    "selected_event_ids": ["evt-3", "evt-4"],
                    "status": "COMPLETED",
                }
            ],
            "conversations": [
                {
                    "id": "conv_1",
                    "model": "mistral-small",
                    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                },
            ],
            "traces": [
                {
                    "trace_id": TRACE,
                    "service_name": "support-bot",
                    "resource_attributes": {"deployment.environment": "prod"},
                    "spans": [
                        {"span_id": "span-1", "span_attributes": {"gen_ai.prompt": "question 1"}},
                        {"span_id": "span-2", "offset_ms": 50, "span_attributes": {"gen_ai.prompt": '{"q": 2}'}},
                    ],
                }
            ],
        }
    )
    source = api.create_dataset("source", "records to copy")
    for n in range(2):
        api.create_record(source.id, {"messages": [{"role": "user", "content": f"r{n}"}]}, {"n": n})
    lines = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"line {n}"}]}) for n in range(3))
    uploaded = api.upload_file("records.jsonl", lines.encode())
    return {"source": source.id, "file_id": uploaded.id, "campaign": "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"}


def test_every_kind_completes_with_records_in_the_target(
    emulator: EmulatorServer,
    api: DatasetsClient,
    service: ServiceProcesses,
    requester: Requester,
) -> None:
    world = seed_world(emulator, api)
    target = api.create_dataset("target", "filled by imports")
    source_records = [r.id for r in api.iter_records(world["source"])]
    requests = {
        ImportKind.CAMPAIGN: {"campaign_id": world["campaign"]},
        ImportKind.EXPLORER: {"completion_event_ids": ["evt-0", "evt-1", "evt-2"]},
        ImportKind.FILE: {"file_id": world["file_id"]},
        ImportKind.PLAYGROUND: {"conversation_ids": ["conv_1"]},
        ImportKind.DATASET: {"dataset_record_ids": source_records},
        # The API skips a reference it cannot find.
        ImportKind.SPANS: {
            "span_references": [{"trace_id": TRACE, "span_id": span} for span in ("span-1", "span-2", "nowhere")],
            "mapping_contract": MAPPING,
        },
    }
    assert set(requests) == set(ImportKind)
    job_ids = {kind: requester.request(kind, target.id, params) for kind, params in requests.items()}
    jobs = wait_for_jobs(requester.sessions, job_ids.values(), timeout_s=60, on_timeout=service.logs)

    for kind, job_id in job_ids.items():
        job = jobs[job_id]
        assert job.status is JobStatus.COMPLETED, (kind, job.status, job.message, job.last_error)
        assert job.progress == 100
        assert job.remote_task_id is not None
    assert jobs[job_ids[ImportKind.EXPLORER]].imported_count == 3

    records = list(api.iter_records(target.id))
    sources = Counter(str(record.source) for record in records)
    # No two imports here share an origin, so these counts hold whether the emulator's dedupe_imports is off (its
    # default, as here) or on.
    # campaign (2 events) + explorer (3 events) come from the explorer; 3 file lines; 1 conversation; 2 copies;
    # 2 spans (the third reference names no span).
    assert sources == Counter(
        {"EXPLORER": 5, "UPLOADED_FILE": 3, "PLAYGROUND": 1, "DIRECT_INPUT": 2, "TELEMETRY_SPAN": 2}
    )
    spans = {record.properties["span_id"]: record for record in records if record.source == "TELEMETRY_SPAN"}
    # The mapping contract made each payload; JSON object text became an object.
    assert spans["span-1"].payload_dict() == {"input": "question 1", "env": "prod"}
    assert spans["span-2"].payload_dict() == {"input": {"q": 2}, "env": "prod"}
    assert spans["span-1"].properties["trace_id"] == TRACE
    spans_job = jobs[job_ids[ImportKind.SPANS]]
    assert (spans_job.requested_count, spans_job.imported_count, spans_job.skipped_count) == (3, 2, 1)

    with requester.sessions() as session:
        history = [(str(e.old_status), str(e.new_status)) for e in job_events(session, job_ids[ImportKind.FILE])]
    assert history == [
        ("None", "PENDING"),
        ("PENDING", "SUBMITTING"),
        ("SUBMITTING", "RUNNING"),
        ("RUNNING", "COMPLETED"),
    ]
    # Each remote import was started exactly once.
    assert sum(emulator.stats(include_tasks=False)["tasks_created"].values()) == len(ImportKind)


def test_a_bad_jsonl_line_fails_the_job_with_the_api_message(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    target = api.create_dataset("target", "d")
    bad = api.upload_file("bad.jsonl", b'{"messages": [{"role": "user", "content": "ok"}]}\n{not json\n')
    job_id = requester.request(ImportKind.FILE, target.id, {"file_id": bad.id})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=30, on_timeout=service.logs)[job_id]
    assert job.status is JobStatus.FAILED
    assert job.message is not None and "DATASET_RECORD_FORMAT_ERROR" in job.message


def test_a_refused_request_is_rejected_with_the_error_code(
    api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.CAMPAIGN, target.id, {"campaign_id": "0b7e8f0e-1f1e-4d7a-9a0e-3c5d1e0f9a77"})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=30, on_timeout=service.logs)[job_id]
    assert job.status is JobStatus.REJECTED
    assert job.error_code == "CAMPAIGN_NOT_FOUND"
    assert job.remote_task_id is None


@pytest.mark.parametrize(
    ("sequence", "terminal", "expected"),
    [
        (["RUNNING", "CONTINUED_AS_NEW", "RUNNING"], "COMPLETED", JobStatus.COMPLETED),
        (["UNKNOWN", "RUNNING", "UNKNOWN"], "FAILED", JobStatus.FAILED),
        (["RUNNING", "UNKNOWN"], "TIMED_OUT", JobStatus.TIMED_OUT),
    ],
)
def test_ambiguous_statuses_are_polled_through_to_the_real_end(
    emulator: EmulatorServer,
    api: DatasetsClient,
    service: ServiceProcesses,
    requester: Requester,
    sequence: list[str],
    terminal: str,
    expected: JobStatus,
) -> None:
    emulator.seed({"events": [_event("evt-x", "x")]})
    emulator.configure(status_sequence=sequence, terminal_status=terminal, task_duration_s=3.0)
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-x"]})
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=40, on_timeout=service.logs)[job_id]
    assert job.status is expected
    assert job.poll_count >= 2


def test_a_vanished_remote_task_makes_the_job_lost(
    emulator: EmulatorServer, api: DatasetsClient, service: ServiceProcesses, requester: Requester
) -> None:
    emulator.seed({"events": [_event("evt-y", "y")]})
    emulator.configure(task_duration_s=30.0)
    target = api.create_dataset("target", "d")
    job_id = requester.request(ImportKind.EXPLORER, target.id, {"completion_event_ids": ["evt-y"]})
    import time

    deadline = time.monotonic() + 20
    remote = None
    while remote is None and time.monotonic() < deadline:
        with requester.sessions() as session:
            from store.jobs import get_job

            job = get_job(session, job_id)
            remote = job.remote_task_id if job is not None else None
        time.sleep(0.2)
    assert remote is not None
    emulator.delete_task(remote)
    job = wait_for_jobs(requester.sessions, [job_id], timeout_s=30, on_timeout=service.logs)[job_id]
    assert job.status is JobStatus.LOST
