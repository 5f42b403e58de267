"""The official SDK (mistralai 2.5.0, the contract's judge; 3.7.0 for what 3.x added) and this client put the same
bytes on the wire."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api_client import DatasetsClient

from . import samples as s
from . import sdk3
from .harness import Wire, answer

mistral_client = pytest.importorskip("mistralai.client")

D = s.DATASET_ID
KEY = "sk-test"
PAYLOAD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}

# (id, our call, the SDK's call, status, reply)
PAIRS: list[tuple[str, Callable[[DatasetsClient], Any], Callable[[Any], Any], int, Any]] = [
    ("list", lambda c: c.list_datasets(), lambda m: m.beta.observability.datasets.list(), 200,
     {"datasets": {"count": 0}}),
    ("list-q", lambda c: c.list_datasets(page=2, page_size=10, q="a b&c/é"),
     lambda m: m.beta.observability.datasets.list(page=2, page_size=10, q="a b&c/é"), 200,
     {"datasets": {"count": 0}}),
    ("create", lambda c: c.create_dataset("My Dataset", "désc"),
     lambda m: m.beta.observability.datasets.create(name="My Dataset", description="désc"), 201, s.dataset()),
    ("fetch", lambda c: c.fetch_dataset("a/b c"),
     lambda m: m.beta.observability.datasets.fetch(dataset_id="a/b c"), 200, s.dataset()),
    ("update-empty", lambda c: c.update_dataset(D),
     lambda m: m.beta.observability.datasets.update(dataset_id=D), 200, s.dataset()),
    ("update-null", lambda c: c.update_dataset(D, name="n", description=None),
     lambda m: m.beta.observability.datasets.update(dataset_id=D, name="n", description=None), 200, s.dataset()),
    ("delete", lambda c: c.delete_dataset(D),
     lambda m: m.beta.observability.datasets.delete(dataset_id=D), 204, None),
    ("list-records", lambda c: c.list_records(D, page=4),
     lambda m: m.beta.observability.datasets.list_records(dataset_id=D, page=4), 200, {"records": {"count": 0}}),
    ("create-record", lambda c: c.create_record(D, PAYLOAD, {"label": "ok", "n": 1}),
     lambda m: m.beta.observability.datasets.create_record(
         dataset_id=D, payload=PAYLOAD, properties={"label": "ok", "n": 1}), 201, s.record()),
    ("from-campaign", lambda c: c.import_from_campaign(D, s.CAMPAIGN_ID),
     lambda m: m.beta.observability.datasets.import_from_campaign(dataset_id=D, campaign_id=s.CAMPAIGN_ID),
     202, s.task()),
    ("from-explorer", lambda c: c.import_from_explorer(D, ["evt-1", "evt-2"]),
     lambda m: m.beta.observability.datasets.import_from_explorer(
         dataset_id=D, completion_event_ids=["evt-1", "evt-2"]), 202, s.task()),
    ("from-file", lambda c: c.import_from_file(D, "file-abc"),
     lambda m: m.beta.observability.datasets.import_from_file(dataset_id=D, file_id="file-abc"), 202, s.task()),
    ("from-playground", lambda c: c.import_from_playground(D, ["conv_1"]),
     lambda m: m.beta.observability.datasets.import_from_playground(dataset_id=D, conversation_ids=["conv_1"]),
     202, s.task()),
    ("from-dataset", lambda c: c.import_from_dataset_records(D, ["r1", "r2"]),
     lambda m: m.beta.observability.datasets.import_from_dataset_records(
         dataset_id=D, dataset_record_ids=["r1", "r2"]), 202, s.task()),
    ("export", lambda c: c.export_to_jsonl(D),
     lambda m: m.beta.observability.datasets.export_to_jsonl(dataset_id=D), 200, {"file_url": "http://f/x"}),
    ("fetch-task", lambda c: c.fetch_task(D, s.TASK_ID),
     lambda m: m.beta.observability.datasets.fetch_task(dataset_id=D, task_id=s.TASK_ID), 200, s.task()),
    ("list-tasks", lambda c: c.list_tasks(D, page_size=5),
     lambda m: m.beta.observability.datasets.list_tasks(dataset_id=D, page_size=5), 200, {"tasks": {"count": 0}}),
    ("campaign", lambda c: c.fetch_campaign(s.CAMPAIGN_ID),
     lambda m: m.beta.observability.campaigns.fetch(campaign_id=s.CAMPAIGN_ID), 200, s.campaign()),
    ("campaign-status", lambda c: c.fetch_campaign_status(s.CAMPAIGN_ID),
     lambda m: m.beta.observability.campaigns.fetch_status(campaign_id=s.CAMPAIGN_ID), 200, {"status": "RUNNING"}),
    ("campaign-events", lambda c: c.list_campaign_events(s.CAMPAIGN_ID, page=2, page_size=7),
     lambda m: m.beta.observability.campaigns.list_events(campaign_id=s.CAMPAIGN_ID, page=2, page_size=7), 200,
     {"completion_events": {"count": 0}}),
    ("search-ids",
     lambda c: c.search_event_ids({"AND": [{"field": "created_at", "op": "gte", "value": "2025-01-01T00:00:00Z"}]}),
     lambda m: m.beta.observability.chat_completion_events.search_ids(
         search_params={"filters": {"AND": [{"field": "created_at", "op": "gte", "value": "2025-01-01T00:00:00Z"}]}}),
     200, {"completion_event_ids": []}),
    ("event", lambda c: c.fetch_event("evt-1"),
     lambda m: m.beta.observability.chat_completion_events.fetch(event_id="evt-1"), 200, s.event()),
    ("conversation", lambda c: c.fetch_conversation("conv_1"),
     lambda m: m.beta.conversations.get(conversation_id="conv_1"), 200, s.conversation()),
    ("conversation-messages", lambda c: c.fetch_conversation_messages("conv_1"),
     lambda m: m.beta.conversations.get_messages(conversation_id="conv_1"), 200, s.conversation_messages()),
]


def _wire_view(request: httpx.Request) -> tuple[str, str, str | None, bytes, str, str]:
    """What must match: method, target, content type, body, auth and accept headers."""
    content_type = request.headers.get("content-type")
    body = request.content
    boundary = re.search(r"boundary=([\w-]+)", content_type or "")
    if boundary:
        body = body.replace(boundary.group(1).encode(), b"BOUNDARY")
        content_type = content_type.replace(boundary.group(1), "BOUNDARY") if content_type else None
    return (
        request.method,
        request.url.raw_path.decode(),
        content_type,
        body,
        request.headers.get("authorization", ""),
        request.headers.get("accept", ""),
    )


def _sdk_request(call: Callable[[Any], Any], status: int, reply: Any) -> httpx.Request:
    wire = Wire(answer(status, reply))
    with httpx.Client(transport=httpx.MockTransport(wire.handle)) as http:
        sdk = mistral_client.Mistral(api_key=KEY, server_url="http://127.0.0.1:9/prefix", client=http)
        call(sdk)
    return wire.last


def _our_request(call: Callable[[DatasetsClient], Any], status: int, reply: Any) -> httpx.Request:
    wire = Wire(answer(status, reply))
    with DatasetsClient(KEY, base_url="http://127.0.0.1:9/prefix", transport=httpx.MockTransport(wire.handle)) as c:
        call(c)
    return wire.last


@pytest.mark.parametrize(("ours", "theirs", "status", "reply"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_request_matches_the_sdk(
    ours: Callable[[DatasetsClient], Any], theirs: Callable[[Any], Any], status: int, reply: Any
) -> None:
    assert _wire_view(_our_request(ours, status, reply)) == _wire_view(_sdk_request(theirs, status, reply))


def test_upload_matches_the_sdk() -> None:
    ours = _our_request(lambda c: c.upload_file("records.jsonl", b"{}\n", purpose="batch"), 200, s.file_object())
    theirs = _sdk_request(
        lambda m: m.files.upload(file={"file_name": "records.jsonl", "content": b"{}\n"}, purpose="batch"),
        200,
        s.file_object(),
    )
    assert _wire_view(ours) == _wire_view(theirs)


@pytest.mark.parametrize("key", ["Bearer abc", "bearer abc", "BEARER abc"])
def test_a_key_with_the_scheme_is_sent_unchanged_like_the_sdk(key: str) -> None:
    wire = Wire(answer(200, s.dataset()))
    with DatasetsClient(key, transport=httpx.MockTransport(wire.handle)) as client:
        client.fetch_dataset(D)
    theirs_wire = Wire(answer(200, s.dataset()))
    with httpx.Client(transport=httpx.MockTransport(theirs_wire.handle)) as http:
        mistral_client.Mistral(api_key=key, client=http).beta.observability.datasets.fetch(dataset_id=D)
    assert wire.last.headers["authorization"] == theirs_wire.last.headers["authorization"] == key


# SDK 3.x, recorded in its own interpreter (tests/api_client/sdk3.py): (id, our call, the SDK's method and kwargs,
# kwargs that are datetimes, status, reply)
SPAN_REFERENCES = [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
                   {"trace_id": "t/2 é", "span_id": "s2"}]  # fmt: skip
MAPPINGS = [
    {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}},
    {"target_field": "env", "source_field": {"namespace": "resource_attributes", "key": "deployment.environment"}},
]
EXPRESSION = "service_name = 'support' AND span_name ~ \"chat é\""
SDK3_PAIRS: list[tuple[str, Callable[[DatasetsClient], Any], str, dict[str, Any], list[str], int, Any]] = [
    ("from-spans",
     lambda c: c.start_import(D, "spans", {"span_references": SPAN_REFERENCES,
                                           "mapping_contract": {"mappings": MAPPINGS}}),
     "beta.observability.datasets.import_from_spans",
     {"dataset_id": D, "span_references": SPAN_REFERENCES, "mapping_contract": {"mappings": MAPPINGS}}, [],
     202, s.task()),
    ("search-spans-all", lambda c: c.search_spans(), "beta.observability.spans.search_spans", {}, [], 200,
     {"spans": {"results": []}}),
    ("search-spans",
     lambda c: c.search_spans(EXPRESSION, from_=datetime(2026, 1, 1, tzinfo=UTC),
                              to=datetime(2026, 1, 1, 1, 30, 0, 123456, tzinfo=UTC), page_size=100, cursor="c/2+="),
     "beta.observability.spans.search_spans",
     {"search_expression": EXPRESSION, "from_": "2026-01-01T00:00:00Z",
      "to": "2026-01-01T01:30:00.123456Z", "page_size": 100, "cursor": "c/2+="}, ["from_", "to"], 200,
     {"spans": {"results": [s.span()], "cursor": "c3"}}),
]  # fmt: skip


@pytest.fixture(scope="module")
def sdk3_requests() -> dict[str, tuple[str, str, str | None, bytes, str, str]]:
    if not sdk3.available():
        pytest.skip(f"no SDK 3.x interpreter at {sdk3.SDK3_PYTHON} (set DSIMPORT_TEST_SDK3_PYTHON)")
    calls = [
        {"method": method, "kwargs": kwargs, "datetimes": datetimes, "status": status, "reply": reply,
         "api_key": KEY, "server_url": "http://127.0.0.1:9/prefix"}
        for _, _, method, kwargs, datetimes, status, reply in SDK3_PAIRS
    ]  # fmt: skip
    return dict(zip([pair[0] for pair in SDK3_PAIRS], sdk3.record(calls), strict=True))


@pytest.mark.parametrize(("name", "ours", "status", "reply"), [(p[0], p[1], p[5], p[6]) for p in SDK3_PAIRS],
                         ids=[p[0] for p in SDK3_PAIRS])  # fmt: skip
def test_request_matches_the_sdk_3(
    sdk3_requests: dict[str, tuple[str, str, str | None, bytes, str, str]],
    name: str,
    ours: Callable[[DatasetsClient], Any],
    status: int,
    reply: Any,
) -> None:
    assert _wire_view(_our_request(ours, status, reply)) == sdk3_requests[name]
