"""The official SDK (mistralai 2.5.0, the contract's judge) and this client put the same bytes on the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api_client import DatasetsClient

from . import samples as s
from .harness import Wire, answer
from .wire import KEY, SERVER_URL, our_request, wire_view

mistral_client = pytest.importorskip("mistralai.client")

D = s.DATASET_ID
R = s.RECORD_ID
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
    # The record operations exist in 2.5.0 too (datasets.records), with a ConversationPayload for update_payload.
    ("fetch-record", lambda c: c.fetch_record(R),
     lambda m: m.beta.observability.datasets.records.fetch(dataset_record_id=R), 200, s.record()),
    ("delete-record", lambda c: c.delete_record(R),
     lambda m: m.beta.observability.datasets.records.delete(dataset_record_id=R), 204, None),
    ("bulk-delete-records", lambda c: c.bulk_delete_records([R, "r2"]),
     lambda m: m.beta.observability.datasets.records.bulk_delete(dataset_record_ids=[R, "r2"]), 204, None),
    ("update-record-payload", lambda c: c.update_record_payload(R, PAYLOAD),
     lambda m: m.beta.observability.datasets.records.update_payload(dataset_record_id=R, payload=PAYLOAD), 204,
     None),
    ("update-record-properties", lambda c: c.update_record_properties(R, {"label": "ok", "n": 1}),
     lambda m: m.beta.observability.datasets.records.update_properties(
         dataset_record_id=R, properties={"label": "ok", "n": 1}), 204, None),
    ("judge-record", lambda c: c.judge_record(R, s.JUDGE),
     lambda m: m.beta.observability.datasets.records.judge(dataset_record_id=R, judge_definition=s.JUDGE), 200,
     {"analysis": "a", "answer": "good"}),
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


def _sdk_request(call: Callable[[Any], Any], status: int, reply: Any) -> httpx.Request:
    wire = Wire(answer(status, reply))
    with httpx.Client(transport=httpx.MockTransport(wire.handle)) as http:
        sdk = mistral_client.Mistral(api_key=KEY, server_url=SERVER_URL, client=http)
        call(sdk)
    return wire.last


@pytest.mark.parametrize(("ours", "theirs", "status", "reply"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_request_matches_the_sdk(
    ours: Callable[[DatasetsClient], Any], theirs: Callable[[Any], Any], status: int, reply: Any
) -> None:
    assert wire_view(our_request(ours, status, reply)) == wire_view(_sdk_request(theirs, status, reply))


def test_upload_matches_the_sdk() -> None:
    ours = our_request(lambda c: c.upload_file("records.jsonl", b"{}\n", purpose="batch"), 200, s.file_object())
    theirs = _sdk_request(
        lambda m: m.files.upload(file={"file_name": "records.jsonl", "content": b"{}\n"}, purpose="batch"),
        200,
        s.file_object(),
    )
    assert wire_view(ours) == wire_view(theirs)


@pytest.mark.parametrize("key", ["Bearer abc", "bearer abc", "BEARER abc"])
def test_a_key_with_the_scheme_is_sent_unchanged_like_the_sdk(key: str) -> None:
    wire = Wire(answer(200, s.dataset()))
    with DatasetsClient(key, transport=httpx.MockTransport(wire.handle)) as client:
        client.fetch_dataset(D)
    theirs_wire = Wire(answer(200, s.dataset()))
    with httpx.Client(transport=httpx.MockTransport(theirs_wire.handle)) as http:
        mistral_client.Mistral(api_key=key, client=http).beta.observability.datasets.fetch(dataset_id=D)
    assert wire.last.headers["authorization"] == theirs_wire.last.headers["authorization"] == key
