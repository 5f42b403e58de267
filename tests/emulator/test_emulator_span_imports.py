"""POST .../imports/from-spans: mapped spans become TELEMETRY_SPAN records, unavailable references are skipped and
counted, and the task behaves as every other import's (statuses, faults, failures)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from emulator.fixtures import DEMO_CHAT_SPANS, DEMO_DATASET_ID
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"
UNKNOWN_SPAN = {"trace_id": "0" * 32, "span_id": "0" * 16}


def rule(target: str, key: str, namespace: str = "span_attributes") -> dict[str, Any]:
    return {"target_field": target, "source_field": {"namespace": namespace, "key": key}}


MAPPING = {
    "version": 1,
    "mappings": [
        rule("messages", "gen_ai.input.messages"),
        rule("answer", "gen_ai.output.messages"),
        rule("label", "app.label"),
        rule("rating", "app.rating"),
        rule("notes", "app.notes"),
        rule("tags", "app.tags"),
        rule("debug", "app.debug"),
        rule("missing", "no.such.attribute"),
        rule("environment", "deployment.environment", "resource_attributes"),
    ],
}


def refs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"trace_id": trace_id, "span_id": span_id} for trace_id, span_id in pairs]


def body(references: list[dict[str, str]], mapping: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"span_references": references, "mapping_contract": mapping or MAPPING}


def finish(emu: EmulatorServer, api: Api, dataset_id: str, task_id: str) -> dict[str, Any]:
    emu.advance_clock(10)
    return api.task(dataset_id, task_id)


def test_spans_become_records_and_unavailable_references_are_skipped(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset("From spans")
    task = api.start_import(dataset_id, "spans", body([*refs(*DEMO_CHAT_SPANS), UNKNOWN_SPAN]))
    assert (task["status"], task["progress"], task["result"]) == ("RUNNING", 0, None)
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "COMPLETED" and done["progress"] == 100
    assert done["result"] == {"requested_record_count": 5, "imported_record_count": 4, "skipped_record_count": 1}
    records = api.records(dataset_id)["results"]
    assert [(r["properties"]["trace_id"], r["properties"]["span_id"]) for r in records] == list(DEMO_CHAT_SPANS)
    assert {r["source"] for r in records} == {"TELEMETRY_SPAN"}
    assert records[0]["properties"] == {"trace_id": DEMO_CHAT_SPANS[0][0], "span_id": DEMO_CHAT_SPANS[0][1]}
    # v1 rules: JSON arrays become structure; blank, "[]" and missing sources leave the key out; scalar-looking
    # and malformed JSON text stays text.
    assert records[0]["payload"] == {
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "answer": [
            {"role": "assistant", "content": "Click 'Forgot password' on the sign-in page and follow the e-mail link."}
        ],
        "label": "good",
        "rating": "5",
        "debug": "{not json",
        "environment": "demo",
    }
    assert [r["payload"]["label"] for r in records] == ["good", "good", "bad", "good"]


def test_json_object_text_becomes_an_object(emu: EmulatorServer, api: Api) -> None:
    emu.seed(
        {
            "traces": [
                {
                    "trace_id": "1" * 32,
                    "spans": [{"span_id": "2" * 16, "span_attributes": {"ctx": ' {"a": [1, {"b": null}]} ', "n": "7"}}],
                }
            ]
        }
    )
    dataset_id = api.create_dataset()
    mapping = {"version": 1, "mappings": [rule("context", "ctx"), rule("n", "n")]}
    task = api.start_import(dataset_id, "spans", body(refs(("1" * 32, "2" * 16)), mapping))
    finish(emu, api, dataset_id, task["id"])
    assert api.records(dataset_id)["results"][0]["payload"] == {"context": {"a": [1, {"b": None}]}, "n": "7"}


def test_a_span_without_mapped_values_is_an_empty_record(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "spans", body(refs(DEMO_CHAT_SPANS[0]), {"version": 1, "mappings": []}))
    assert finish(emu, api, dataset_id, task["id"])["result"]["imported_record_count"] == 1
    assert api.records(dataset_id)["results"][0]["payload"] == {}


@pytest.mark.parametrize(
    ("dedupe", "first_imported", "again_imported", "held"),
    [
        pytest.param(False, 2, 2, 4, id="default-off-every-copy-held"),
        pytest.param(True, 1, 1, 2, id="dedupe-on-each-span-held-once"),
    ],
)
def test_a_repeated_span_is_held_twice_unless_dedupe_is_on(
    emu: EmulatorServer, api: Api, dedupe: bool, first_imported: int, again_imported: int, held: int
) -> None:
    emu.configure(dedupe_imports=dedupe)
    dataset_id = api.create_dataset()
    # One span twice in one request, then again beside a second span.
    first = api.start_import(dataset_id, "spans", body(refs(DEMO_CHAT_SPANS[0], DEMO_CHAT_SPANS[0])))
    assert finish(emu, api, dataset_id, first["id"])["result"] == {
        "requested_record_count": 2, "imported_record_count": first_imported,
        "skipped_record_count": 2 - first_imported,
    }  # fmt: skip
    again = api.start_import(dataset_id, "spans", body(refs(*DEMO_CHAT_SPANS[:2])))
    assert finish(emu, api, dataset_id, again["id"])["result"]["imported_record_count"] == again_imported
    assert api.records(dataset_id)["count"] == held
    origins = emu.task_origins()[again["id"]]
    assert origins["kind"] == "spans" and origins["origins"] == [f"span:{t}:{s}" for t, s in DEMO_CHAT_SPANS[:2]]


def test_only_unavailable_references_still_make_a_task(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "spans", body([UNKNOWN_SPAN, {"trace_id": "x", "span_id": "y"}]))
    assert finish(emu, api, dataset_id, task["id"])["result"] == {
        "requested_record_count": 2, "imported_record_count": 0, "skipped_record_count": 2,
    }  # fmt: skip


def test_slug_target(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset("Span Target")
    task = api.start_import("span-target", "spans", body(refs(DEMO_CHAT_SPANS[1])))
    assert task["dataset_id"] == dataset_id
    assert finish(emu, api, dataset_id, task["id"])["status"] == "COMPLETED"


def test_exported_span_records_import_back_from_a_file(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    source = api.create_dataset("Exported")
    task = api.start_import(source, "spans", body(refs(*DEMO_CHAT_SPANS)))
    finish(emu, api, source, task["id"])
    exported = httpx.get(client.get(f"{DATASETS}/{source}/exports/to-jsonl").json()["file_url"]).content
    uploaded = client.post("/v1/files", files={"file": ("spans.jsonl", exported)}, data={"purpose": "fine-tune"})
    target = api.create_dataset("Re-imported")
    file_task = api.start_import(target, "file", {"file_id": uploaded.json()["id"]})
    assert finish(emu, api, target, file_task["id"])["status"] == "COMPLETED"
    copies = api.records(target)["results"]
    originals = api.records(source)["results"]
    assert [c["payload"] for c in copies] == [o["payload"] for o in originals]  # free-form payloads survive
    assert [c["properties"] for c in copies] == [o["properties"] for o in originals]


@pytest.mark.parametrize(
    "request_body",
    [
        {"mapping_contract": MAPPING},
        {"span_references": "nope", "mapping_contract": MAPPING},
        {"span_references": [{"trace_id": "t"}], "mapping_contract": MAPPING},
        {"span_references": [["t", "s"]], "mapping_contract": MAPPING},
        {"span_references": []},
        body([], {"version": 2, "mappings": []}),
        body([], {"version": 1}),
        body([], {"version": 1, "mappings": [rule("a", "k", "span_events")]}),
        body([], {"version": 1, "mappings": [rule("", "k")]}),
        body([], {"version": 1, "mappings": [rule("a", "")]}),
        body([], {"version": 1, "mappings": [rule("a", "k"), rule("a", "j")]}),
        body([], {"version": 1, "mappings": [{"target_field": "a"}]}),
    ],
)
def test_malformed_requests_are_422(client: httpx.Client, request_body: dict[str, Any]) -> None:
    response = client.post(f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-spans", json=request_body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["error_code"] == "VALIDATION_ERROR"


def test_unknown_dataset_is_404(client: httpx.Client) -> None:
    response = client.post(f"{DATASETS}/no-such-slug/imports/from-spans", json=body(refs(DEMO_CHAT_SPANS[0])))
    assert response.status_code == 404 and response.json()["detail"]["error_code"] == "DATASET_NOT_FOUND"


def test_injected_faults_before_and_after_the_work(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    url = f"{DATASETS}/{dataset_id}/imports/from-spans"
    emu.configure(faults={"import_from_spans": {"status": 503, "next": 1, "retry_after_s": 1}})
    refused = client.post(url, json=body(refs(DEMO_CHAT_SPANS[0])))
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert emu.stats()["tasks_created"] == {}
    emu.configure(faults={"import_from_spans": {"status": 502, "next": 1, "phase": "after"}})
    lost = client.post(url, json=body(refs(DEMO_CHAT_SPANS[0])))
    assert lost.status_code == 502
    assert emu.stats()["tasks_created"] == {dataset_id: 1}  # the work was done, only the answer was lost
    assert emu.stats()["responses"]["import_from_spans"] == {"503": 1, "502": 1}


def test_injected_failure_and_status_sequence(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    emu.configure(failure_rate=1.0, status_sequence=["RUNNING", "CONTINUED_AS_NEW"])
    task = api.start_import(dataset_id, "spans", body(refs(*DEMO_CHAT_SPANS)))
    emu.advance_clock(0.1)
    assert api.task(dataset_id, task["id"])["status"] == "RUNNING"
    emu.advance_clock(9.9)
    failed = api.task(dataset_id, task["id"])
    assert failed["status"] == "FAILED" and failed["message"] and failed["result"] is None
    assert api.records(dataset_id)["count"] == 0


def test_spans_survive_a_state_file(emu: EmulatorServer, api: Api, tmp_path: Any) -> None:
    from emulator.clock import EmulatorClock
    from emulator.config import EmulatorSettings
    from emulator.persistence import load_state
    from emulator.world import World

    dataset_id = api.create_dataset()
    api.start_import(dataset_id, "spans", body(refs(*DEMO_CHAT_SPANS)))
    path = tmp_path / "state.json"
    emu.save(path)
    world = World(clock=EmulatorClock(start=emu.emulator.world.now() + 60, frozen=True), knobs=EmulatorSettings().knobs)
    load_state(world, path)
    assert world.spans.keys() == emu.emulator.world.spans.keys()
    assert json.dumps(world.spans[DEMO_CHAT_SPANS[0]].data) == json.dumps(
        emu.emulator.world.spans[DEMO_CHAT_SPANS[0]].data
    )
