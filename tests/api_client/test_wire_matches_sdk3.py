"""Today's official SDK (mistralai 3.7.0) and this client put the same bytes on the wire.

3.7.0 cannot live beside the project's 2.5.0: it runs in the cached environment of tests/contract/sdk_venv.py
(``.cache/sdk-3.7.0``, built on first use, ``make sdk37`` ahead of time), where sdk_wire_recorder.py records the
request of every call below against a mock transport. The calls cover what 3.x added or changed: record operations,
free-form payloads, ``create_record``'s ``source`` and optional ``properties``, slugs in dataset paths; and the
operations 3.x kept, to show that nothing they send changed. Like the contract suite, this skips only when the
package index cannot be reached, and never under CI=true.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api_client import DatasetsClient
from tests.contract.sdk_venv import SDK_VERSION, SdkUnavailable, ensure_sdk_venv, may_skip

from . import samples as s
from .wire import WireView, our_request, wire_view

RECORDER = Path(__file__).with_name("sdk_wire_recorder.py")
D = s.DATASET_ID
R = s.RECORD_ID
SLUG = "my-dataset"
SPAN_PAYLOAD = {"input": {"question": "2+2?"}, "output": "4", "tags": ["a", 1, None, 2.5], "é": "ü"}
CHAT_PAYLOAD = {"messages": [{"role": "user", "content": "hi"}]}
REGRESSION = {**s.JUDGE, "output": {"type": "REGRESSION", "min_description": "rude", "max_description": "polite"}}
SCALED = {**REGRESSION, "output": {**REGRESSION["output"], "min": 1, "max": 5}}
# Telemetry export would POST to api.mistral.ai; an ambient key would be sent instead of the test's.
_SCRUBBED = ("MISTRAL_API_KEY", "MISTRAL_SDK_TELEMETRY", "MISTRAL_OTLP_TRACES_ENDPOINT")


SPAN_REFERENCES = [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
                   {"trace_id": "t/2 é", "span_id": "s2"}]  # fmt: skip
MAPPINGS = [
    {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}},
    {"target_field": "env", "source_field": {"namespace": "resource_attributes", "key": "deployment.environment"}},
]
EXPRESSION = "service_name = 'support' AND span_name ~ \"chat é\""


def span_record(**overrides: Any) -> dict[str, Any]:
    return s.record(payload=SPAN_PAYLOAD, source="TELEMETRY_SPAN", **overrides)


# (id, our call, the SDK's method under beta.observability, its keyword arguments, status, reply)
CASES: list[tuple[str, Callable[[DatasetsClient], Any], str, dict[str, Any], int, Any]] = [
    # What 3.x added: the records by their own id.
    ("fetch-record", lambda c: c.fetch_record(R), "datasets.records.fetch", {"dataset_record_id": R}, 200,
     span_record()),
    ("fetch-record-odd-id", lambda c: c.fetch_record("a/b c"), "datasets.records.fetch",
     {"dataset_record_id": "a/b c"}, 200, span_record()),
    ("delete-record", lambda c: c.delete_record(R), "datasets.records.delete", {"dataset_record_id": R}, 204, None),
    ("bulk-delete-records", lambda c: c.bulk_delete_records(iter([R, "r2"])), "datasets.records.bulk_delete",
     {"dataset_record_ids": [R, "r2"]}, 204, None),
    ("update-record-payload-free-form", lambda c: c.update_record_payload(R, SPAN_PAYLOAD),
     "datasets.records.update_payload", {"dataset_record_id": R, "payload": SPAN_PAYLOAD}, 204, None),
    ("update-record-payload-messages", lambda c: c.update_record_payload(R, CHAT_PAYLOAD),
     "datasets.records.update_payload", {"dataset_record_id": R, "payload": CHAT_PAYLOAD}, 204, None),
    ("update-record-properties", lambda c: c.update_record_properties(R, {"label": "ok", "n": 1}),
     "datasets.records.update_properties", {"dataset_record_id": R, "properties": {"label": "ok", "n": 1}}, 204,
     None),
    ("judge-classification", lambda c: c.judge_record(R, s.JUDGE), "datasets.records.judge",
     {"dataset_record_id": R, "judge_definition": s.JUDGE}, 200, {"analysis": "a", "answer": "good"}),
    ("judge-regression-defaults", lambda c: c.judge_record(R, REGRESSION), "datasets.records.judge",
     {"dataset_record_id": R, "judge_definition": REGRESSION}, 200, {"analysis": "a", "answer": 0.5}),
    ("judge-regression-scaled", lambda c: c.judge_record(R, SCALED), "datasets.records.judge",
     {"dataset_record_id": R, "judge_definition": SCALED}, 200, {"analysis": "a", "answer": 3}),
    # What 3.x added: spans, imported (from-spans) and searched (the source of a spans-window schedule).
    ("from-spans", lambda c: c.start_import(D, "spans", {"span_references": SPAN_REFERENCES,
                                                         "mapping_contract": {"mappings": MAPPINGS}}),
     "datasets.import_from_spans",
     {"dataset_id": D, "span_references": SPAN_REFERENCES, "mapping_contract": {"mappings": MAPPINGS}}, 202,
     s.task()),
    ("search-spans-all", lambda c: c.search_spans(), "spans.search_spans", {}, 200, {"spans": {"results": []}}),
    # The SDK takes datetimes; given as ISO text here (the recorder speaks JSON), its model parses them.
    ("search-spans", lambda c: c.search_spans(EXPRESSION, from_=datetime(2026, 1, 1, tzinfo=UTC),
                                              to=datetime(2026, 1, 1, 1, 30, 0, 123456, tzinfo=UTC), page_size=100,
                                              cursor="c/2+="),
     "spans.search_spans",
     {"search_expression": EXPRESSION, "from_": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:30:00.123456Z",
      "page_size": 100, "cursor": "c/2+="}, 200, {"spans": {"results": [s.span()], "cursor": "c3"}}),
    # What 3.x changed: create_record (free-form payload, optional properties, source), slugs in paths.
    ("create-record-span", lambda c: c.create_record(D, SPAN_PAYLOAD, {"trace_id": "t"}, source="TELEMETRY_SPAN"),
     "datasets.create_record",
     {"dataset_id": D, "payload": SPAN_PAYLOAD, "properties": {"trace_id": "t"}, "source": "TELEMETRY_SPAN"}, 201,
     span_record()),
    # The SDK sends its default source; ours sends what it is given.
    ("create-record-defaults", lambda c: c.create_record(D, CHAT_PAYLOAD, source="DIRECT_INPUT"),
     "datasets.create_record", {"dataset_id": D, "payload": CHAT_PAYLOAD}, 201, s.record()),
    ("fetch-by-slug", lambda c: c.fetch_dataset(SLUG), "datasets.fetch", {"dataset_id": SLUG}, 200,
     s.dataset(slug=SLUG)),
    ("list-records-by-slug", lambda c: c.list_records(SLUG, page=2), "datasets.list_records",
     {"dataset_id": SLUG, "page": 2}, 200, {"records": s.page([span_record(), s.record()])}),
    ("list-tasks-by-slug", lambda c: c.list_tasks(SLUG, page_size=5), "datasets.list_tasks",
     {"dataset_id": SLUG, "page_size": 5}, 200, {"tasks": {"count": 0}}),
    ("fetch-task-by-slug", lambda c: c.fetch_task(SLUG, s.TASK_ID), "datasets.fetch_task",
     {"dataset_id": SLUG, "task_id": s.TASK_ID}, 200, s.task()),
    ("from-file-by-slug", lambda c: c.import_from_file(SLUG, "file-abc"), "datasets.import_from_file",
     {"dataset_id": SLUG, "file_id": "file-abc"}, 202, s.task()),
    # What 3.x kept: the same requests as before.
    ("list", lambda c: c.list_datasets(), "datasets.list", {}, 200, {"datasets": {"count": 0}}),
    ("list-q", lambda c: c.list_datasets(page=2, page_size=10, q="a b&c/é"), "datasets.list",
     {"page": 2, "page_size": 10, "q": "a b&c/é"}, 200, {"datasets": {"count": 0}}),
    ("create", lambda c: c.create_dataset("My Dataset", "désc"), "datasets.create",
     {"name": "My Dataset", "description": "désc"}, 201, s.dataset(slug="my-dataset")),
    ("update-null", lambda c: c.update_dataset(D, name="n", description=None), "datasets.update",
     {"dataset_id": D, "name": "n", "description": None}, 200, s.dataset(slug="n")),
    ("delete", lambda c: c.delete_dataset(D), "datasets.delete", {"dataset_id": D}, 204, None),
    ("from-playground", lambda c: c.import_from_playground(D, ["conv_1"]), "datasets.import_from_playground",
     {"dataset_id": D, "conversation_ids": ["conv_1"]}, 202, s.task()),
    ("from-dataset", lambda c: c.import_from_dataset_records(D, ["r1", "r2"]),
     "datasets.import_from_dataset_records", {"dataset_id": D, "dataset_record_ids": ["r1", "r2"]}, 202, s.task()),
    ("export", lambda c: c.export_to_jsonl(D), "datasets.export_to_jsonl", {"dataset_id": D}, 200,
     {"file_url": "http://f/x"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def sdk3_requests() -> dict[str, Any]:
    """Every case's request as SDK 3.7.0 sends it, recorded in one run of the recorder."""
    try:
        python = ensure_sdk_venv(SDK_VERSION)
    except SdkUnavailable as exc:
        if not may_skip(str(exc), ci=os.environ.get("CI") == "true"):
            pytest.fail(f"SDK {SDK_VERSION} environment could not be built: {exc}")
        pytest.skip(f"SDK {SDK_VERSION} not installable (package index unreachable): {exc}")
    cases = [
        {"id": case_id, "call": call, "kwargs": kwargs, "status": status, "reply": reply}
        for case_id, _, call, kwargs, status, reply in CASES
    ]
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    done = subprocess.run(
        [str(python), str(RECORDER)], input=json.dumps(cases), capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, f"the recorder crashed:\n{done.stderr[-4000:]}"
    recorded: dict[str, Any] = json.loads(done.stdout)
    return recorded


def sdk3_view(recorded: dict[str, Any]) -> WireView:
    assert "error" not in recorded, recorded.get("error")
    return (
        recorded["method"],
        recorded["target"],
        recorded["content_type"],
        base64.b64decode(recorded["body"]),
        recorded["authorization"],
        recorded["accept"],
    )


@pytest.mark.parametrize(("case_id", "ours", "status", "reply"), [(c[0], c[1], c[4], c[5]) for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_request_matches_sdk_3_7(
    sdk3_requests: dict[str, Any],
    case_id: str,
    ours: Callable[[DatasetsClient], Any],
    status: int,
    reply: Any,
) -> None:
    assert wire_view(our_request(ours, status, reply)) == sdk3_view(sdk3_requests[case_id])
