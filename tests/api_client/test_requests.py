"""Every method sends the request of contract §2/§8: method, path, query in order, compact JSON body, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from api_client import (
    Campaign,
    ChatCompletionEvent,
    ChatCompletionEventPreview,
    Conversation,
    ConversationMessages,
    ConversationPayload,
    Dataset,
    DatasetImportTask,
    DatasetRecord,
    ExportDatasetResponse,
    FileObject,
    InvalidRequestError,
    JudgeOutput,
    Page,
    SpanFeed,
)

from . import samples as s
from .harness import API_KEY, answer

D = s.DATASET_ID
DS = f"/v1/observability/datasets/{D}"
RS = f"/v1/observability/dataset-records/{s.RECORD_ID}"


@dataclass
class Case:
    call: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    status: int
    reply: Any
    method: str
    target: str  # raw path and query, as on the request line
    body: bytes | None
    returns: type | None
    id: str = field(default="")


PAYLOAD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
# The contract's version is sent even when left out, as the SDK does.
SPANS_BODY = {
    "span_references": [{"trace_id": "t1", "span_id": "s1"}],
    "mapping_contract": {
        "mappings": [
            {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}
        ]
    },
}

CASES = [
    Case("list_datasets", (), {}, 200, {"datasets": s.page([s.dataset()])}, "GET",
         "/v1/observability/datasets?page_size=50&page=1", None, Page, "list"),
    Case("list_datasets", (), {"page_size": 10, "page": 2, "q": "abc"}, 200, {"datasets": {"count": 87}}, "GET",
         "/v1/observability/datasets?page_size=10&page=2&q=abc", None, Page, "list-q"),
    Case("create_dataset", ("My Dataset", "desc"), {}, 201, s.dataset(), "POST",
         "/v1/observability/datasets", b'{"name":"My Dataset","description":"desc"}', Dataset, "create"),
    Case("fetch_dataset", (D,), {}, 200, s.dataset(), "GET", DS, None, Dataset, "fetch"),
    Case("update_dataset", (D,), {}, 200, s.dataset(), "PATCH", DS, b"{}", Dataset, "update-nothing"),
    Case("update_dataset", (D,), {"name": "renamed"}, 200, s.dataset(), "PATCH", DS, b'{"name":"renamed"}',
         Dataset, "update-name"),
    Case("update_dataset", (D,), {"description": None}, 200, s.dataset(), "PATCH", DS, b'{"description":null}',
         Dataset, "update-null"),
    Case("delete_dataset", (D,), {}, 204, None, "DELETE", DS, None, None, "delete"),
    Case("list_records", (D,), {}, 200, {"records": s.page([s.record()])}, "GET",
         f"{DS}/records?page_size=50&page=1", None, Page, "list-records"),
    Case("create_record", (D, PAYLOAD, {"label": "ok"}), {}, 201, s.record(), "POST", f"{DS}/records",
         b'{"payload":{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]},'
         b'"properties":{"label":"ok"}}', DatasetRecord, "create-record"),
    Case("import_from_campaign", (D, s.CAMPAIGN_ID), {}, 202, s.task(), "POST", f"{DS}/imports/from-campaign",
         b'{"campaign_id":"71a2e42d-7414-4fe6-89cb-44a2122b6f6b"}', DatasetImportTask, "from-campaign"),
    Case("import_from_explorer", (D, ["evt-1", "evt-2"]), {}, 202, s.task(), "POST",
         f"{DS}/imports/from-explorer", b'{"completion_event_ids":["evt-1","evt-2"]}', DatasetImportTask,
         "from-explorer"),
    Case("import_from_file", (D, "file-abc"), {}, 202, s.task(), "POST", f"{DS}/imports/from-file",
         b'{"file_id":"file-abc"}', DatasetImportTask, "from-file"),
    Case("import_from_playground", (D, ["conv_1"]), {}, 202, s.task(), "POST", f"{DS}/imports/from-playground",
         b'{"conversation_ids":["conv_1"]}', DatasetImportTask, "from-playground"),
    Case("import_from_dataset_records", (D, ["58fe798a-1"]), {}, 202, s.task(), "POST",
         f"{DS}/imports/from-dataset", b'{"dataset_record_ids":["58fe798a-1"]}', DatasetImportTask,
         "from-dataset"),
    Case("start_import", (D, "explorer", {"completion_event_ids": ("e",)}), {}, 202, s.task(), "POST",
         f"{DS}/imports/from-explorer", b'{"completion_event_ids":["e"]}', DatasetImportTask, "start-import"),
    Case("start_import", (D, "spans", SPANS_BODY), {}, 202, s.task(), "POST", f"{DS}/imports/from-spans",
         b'{"span_references":[{"trace_id":"t1","span_id":"s1"}],"mapping_contract":{"mappings":[{"target_field":'
         b'"input","source_field":{"namespace":"span_attributes","key":"gen_ai.prompt"}}],"version":1}}',
         DatasetImportTask, "from-spans"),
    Case("export_to_jsonl", (D,), {}, 200, {"file_url": "http://files.local/x.jsonl?sig=1"}, "GET",
         f"{DS}/exports/to-jsonl", None, ExportDatasetResponse, "export"),
    Case("fetch_task", (D, s.TASK_ID), {}, 200, s.task(), "GET", f"{DS}/tasks/{s.TASK_ID}", None,
         DatasetImportTask, "fetch-task"),
    Case("list_tasks", (D,), {"page_size": 5}, 200, {"tasks": s.page([s.task()])}, "GET",
         f"{DS}/tasks?page_size=5&page=1", None, Page, "list-tasks"),
    Case("fetch_record", (s.RECORD_ID,), {}, 200, s.record(), "GET", RS, None, DatasetRecord, "fetch-record"),
    Case("delete_record", (s.RECORD_ID,), {}, 204, None, "DELETE", RS, None, None, "delete-record"),
    Case("bulk_delete_records", (["r1", "r2"],), {}, 204, None, "POST", "/v1/observability/dataset-records/bulk-delete",
         b'{"dataset_record_ids":["r1","r2"]}', None, "bulk-delete-records"),
    Case("update_record_payload", (s.RECORD_ID, {"input": {"q": 1}, "expected": "a"}), {}, 204, None, "PUT",
         f"{RS}/payload", b'{"payload":{"input":{"q":1},"expected":"a"}}', None, "update-record-payload"),
    Case("update_record_properties", (s.RECORD_ID, {"label": "ok"}), {}, 204, None, "PUT", f"{RS}/properties",
         b'{"properties":{"label":"ok"}}', None, "update-record-properties"),
    Case("judge_record", (s.RECORD_ID, s.JUDGE), {}, 200, {"analysis": "fine", "answer": "good"}, "POST",
         f"{RS}/live-judging",
         b'{"judge_definition":{"name":"tone","description":"d","model_name":"mistral-small-latest",'
         b'"output":{"options":[{"value":"good","description":"polite"}],"type":"CLASSIFICATION"},'
         b'"instructions":"Rate the tone.","tools":[]}}', JudgeOutput, "judge-record"),
    Case("create_record", (D, {"input": "spans carry no messages"}), {"source": "TELEMETRY_SPAN"}, 201,
         s.record(payload={"input": "spans carry no messages"}, source="TELEMETRY_SPAN"), "POST", f"{DS}/records",
         b'{"payload":{"input":"spans carry no messages"},"source":"TELEMETRY_SPAN"}', DatasetRecord,
         "create-record-3x"),
    Case("fetch_dataset", ("my-dataset",), {}, 200, s.dataset(slug="my-dataset"), "GET",
         "/v1/observability/datasets/my-dataset", None, Dataset, "fetch-by-slug"),
    Case("list_tasks", ("my-dataset",), {}, 200, {"tasks": s.page([s.task()])}, "GET",
         "/v1/observability/datasets/my-dataset/tasks?page_size=50&page=1", None, Page, "list-tasks-by-slug"),
    Case("fetch_campaign", (s.CAMPAIGN_ID,), {}, 200, s.campaign(), "GET",
         f"/v1/observability/campaigns/{s.CAMPAIGN_ID}", None, Campaign, "campaign"),
    Case("fetch_campaign_status", (s.CAMPAIGN_ID,), {}, 200, {"status": "COMPLETED"}, "GET",
         f"/v1/observability/campaigns/{s.CAMPAIGN_ID}/status", None, str, "campaign-status"),
    Case("list_campaign_events", (s.CAMPAIGN_ID,), {"page": 3}, 200,
         {"completion_events": s.page([s.event_preview()])}, "GET",
         f"/v1/observability/campaigns/{s.CAMPAIGN_ID}/selected-events?page_size=50&page=3", None, Page,
         "campaign-events"),
    Case("search_event_ids", ({"field": "model", "op": "eq", "value": "m"},), {}, 200,
         {"completion_event_ids": ["e1", "e2"]}, "POST", "/v1/observability/chat-completion-events/search-ids",
         b'{"search_params":{"filters":{"field":"model","op":"eq","value":"m"}}}', list, "search-ids"),
    Case("search_event_ids", (None,), {}, 200, {"completion_event_ids": []}, "POST",
         "/v1/observability/chat-completion-events/search-ids", b'{"search_params":{"filters":null}}', list,
         "search-ids-all"),
    Case("search_spans", (), {}, 200, {"spans": {"results": [s.span()], "cursor": "c2"}}, "POST",
         "/v1/observability/spans/search?page_size=50", b"{}", SpanFeed, "search-spans-all"),
    Case("search_spans", ("service_name = 'chat'",),
         {"from_": datetime(2026, 1, 1, tzinfo=UTC), "to": datetime(2026, 1, 1, 1, 30, 0, 123456, tzinfo=UTC),
          "page_size": 100, "cursor": "c/2"}, 200, {"spans": {"results": []}}, "POST",
         "/v1/observability/spans/search?from=2026-01-01T00%3A00%3A00Z&to=2026-01-01T01%3A30%3A00.123456Z"
         "&page_size=100&cursor=c%2F2", b'{"search_expression":"service_name = \'chat\'"}', SpanFeed,
         "search-spans"),
    Case("fetch_event", ("evt-1",), {}, 200, s.event(), "GET", "/v1/observability/chat-completion-events/evt-1",
         None, ChatCompletionEvent, "event"),
    Case("fetch_conversation", ("conv_1",), {}, 200, s.conversation(), "GET", "/v1/conversations/conv_1", None,
         Conversation, "conversation"),
    Case("fetch_conversation_messages", ("conv_1",), {}, 200, s.conversation_messages(), "GET",
         "/v1/conversations/conv_1/messages", None, ConversationMessages, "conversation-messages"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_endpoint_sends_the_contract_request(api: Any, case: Case) -> None:
    harness = api(answer(case.status, case.reply))
    result = harness.call(case.call, *case.args, **case.kwargs)

    request = harness.wire.last
    assert request.method == case.method
    assert request.url.raw_path.decode() == case.target
    assert request.url.host == "api.mistral.ai"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == "dsimport/0.1"
    if case.body is None:
        assert request.content == b""
        assert "content-type" not in request.headers
    else:
        assert request.content == case.body
        assert request.headers["content-type"] == "application/json"
    if case.returns is None:
        assert result is None
    else:
        assert isinstance(result, case.returns)


def test_pages_decode_their_items(api: Any) -> None:
    harness = api(answer(200, {"campaign_events": None, "completion_events": s.page([s.event_preview("e9")])}))
    page = harness.call("list_campaign_events", s.CAMPAIGN_ID)
    assert page.count == 1
    assert isinstance(page.results[0], ChatCompletionEventPreview)
    assert page.results[0].event_id == "e9"


def test_create_record_accepts_a_model_and_keeps_extra_payload_keys(api: Any) -> None:
    harness = api(answer(201, s.record()))
    payload = ConversationPayload.model_validate({"messages": [{"role": "user", "content": "x"}], "meta": {"k": 1}})
    harness.call("create_record", D, payload, {})
    assert harness.wire.json_body() == {
        "payload": {"messages": [{"role": "user", "content": "x"}], "meta": {"k": 1}},
        "properties": {},
    }


def test_upload_file_sends_multipart_parts_in_the_sdk_order(api: Any) -> None:
    harness = api(answer(200, s.file_object()))
    result = harness.call("upload_file", "records.jsonl", b'{"messages":[]}\n', purpose="batch")

    request = harness.wire.last
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/files"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content.decode()
    assert body.index('name="visibility"\r\n\r\nworkspace') < body.index('name="purpose"\r\n\r\nbatch')
    assert body.index('name="purpose"') < body.index('name="file"; filename="records.jsonl"')
    assert '{"messages":[]}\n' in body
    assert isinstance(result, FileObject)
    assert result.size_bytes == 42


def test_upload_file_without_purpose_sends_no_purpose_part(api: Any) -> None:
    harness = api(answer(200, s.file_object()))
    harness.call("upload_file", "records.jsonl", b"{}\n")
    body = harness.wire.last.content.decode()
    assert 'name="visibility"' in body
    assert 'name="purpose"' not in body


def test_path_parameters_escape_spaces_but_not_slashes(api: Any) -> None:
    harness = api(answer(200, s.dataset()))
    harness.call("fetch_dataset", "a/b c")
    assert harness.wire.last.url.raw_path == b"/v1/observability/datasets/a/b%20c"


def test_base_url_path_prefix_is_kept(api: Any) -> None:
    harness = api(answer(200, s.task()), base_url="http://127.0.0.1:8123/prefix/")
    harness.call("fetch_task", D, s.TASK_ID)
    url = harness.wire.last.url
    assert (url.scheme, url.host, url.port) == ("http", "127.0.0.1", 8123)
    assert url.raw_path.decode() == f"/prefix{DS}/tasks/{s.TASK_ID}"


def test_query_values_are_encoded(api: Any) -> None:
    harness = api(answer(200, {"datasets": {"count": 0}}))
    harness.call("list_datasets", q="a b&c")
    assert harness.wire.last.url.raw_path == b"/v1/observability/datasets?page_size=50&page=1&q=a+b%26c"


def test_start_import_accepts_a_str_enum_kind(api: Any) -> None:
    from enum import StrEnum

    class Kind(StrEnum):
        FILE = "file"

    harness = api(answer(202, s.task()))
    harness.call("start_import", D, Kind.FILE, {"file_id": "file-abc"})
    assert harness.wire.last.url.raw_path.decode() == f"{DS}/imports/from-file"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("fetch_dataset", ("",)),
        ("fetch_task", (D, "")),
        ("start_import", (D, "teleport", {"file_id": "f"})),
        ("start_import", (D, "spans", {"span_references": []})),
        ("start_import", (D, "spans", {**SPANS_BODY, "span_references": []})),
        ("start_import", (D, "spans", {**SPANS_BODY, "span_references": ["t1:s1"]})),
        ("start_import", (D, "spans", {**SPANS_BODY, "mapping_contract": {"mappings": [], "version": 1}})),
        ("start_import", (D, "spans", {**SPANS_BODY, "mapping_contract": {"mappings": [], "version": 2}})),
        ("start_import", (D, "file", {})),
        ("start_import", (D, "file", {"file_id": "f", "extra": 1})),
        ("start_import", (D, "file", {"file_id": ["f"]})),
        ("start_import", (D, "explorer", {"completion_event_ids": "evt-1"})),
        ("start_import", (D, "explorer", {"completion_event_ids": [1, 2]})),
        ("import_from_playground", (D, "conv_1")),
        ("create_record", (D, ["not", "an", "object"], {})),
        ("create_record", (D, {1: "key not a string"}, {})),
        ("create_record", (D, {"messages": []}, ["not", "a", "dict"])),
        ("create_record", (D, {"messages": []}, {"when": object()})),
        ("fetch_record", ("",)),
        ("bulk_delete_records", ("r1",)),
        ("bulk_delete_records", ([""],)),
        ("update_record_payload", (s.RECORD_ID, "not an object")),
        ("update_record_properties", (s.RECORD_ID, None)),
        ("judge_record", (s.RECORD_ID, {"name": "judge without the rest"})),
        ("list_datasets", ("1",)),
        ("search_spans", (42,)),
        ("upload_file", ("", b"x")),
        ("upload_file", ("f.jsonl", "text, not bytes")),
    ],
)
def test_bad_arguments_are_refused_before_sending(api: Any, call: str, args: tuple[Any, ...]) -> None:
    harness = api(answer(500, {}))
    with pytest.raises(InvalidRequestError) as caught:
        harness.call(call, *args)
    assert isinstance(caught.value, ValueError)
    assert caught.value.status_code is None
    assert harness.wire.requests == []


def test_a_spans_search_refuses_a_page_size_below_one(api: Any) -> None:
    harness = api(answer(500, {}))
    with pytest.raises(InvalidRequestError, match="page_size must be a positive int"):
        harness.call("search_spans", page_size=0)
    assert harness.wire.requests == []


def test_a_spans_page_keeps_what_an_import_needs_and_ignores_the_rest(api: Any) -> None:
    harness = api(answer(200, {"spans": {"results": [s.span(usage_input_tokens=12)], "next": None, "cursor": None}}))
    page = harness.call("search_spans", "x")
    assert [(span.trace_id, span.span_id) for span in page.results] == [(s.TRACE_ID, s.SPAN_ID)]
    assert page.results[0].span_attributes == {"gen_ai.prompt": "hi"}
    assert page.cursor is None
