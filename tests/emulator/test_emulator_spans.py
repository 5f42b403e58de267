"""POST /v1/observability/spans/search over the demo telemetry: GetSpan shape, cursor paging, the time window and
the search expression."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulator.clock import iso
from emulator.fixtures import DEMO_CHAT_SPANS, DEMO_SPAN_COUNT, DEMO_TRACE_IDS
from emulator.testing import EmulatorServer
from tests.emulator.conftest import T0

SEARCH = "/v1/observability/spans/search"
# Every key of GetSpan (SDK 3.7.0; 2.5.0 has all but service_account_id).
GET_SPAN_KEYS = {
    "customer_id", "organization_id", "workspace_id", "user_id", "trace_id", "span_id", "parent_span_id",
    "trace_state", "start_time", "end_time", "duration_ns", "span_name", "span_kind", "service_name", "status_code",
    "status_message", "error_type", "operation_name", "provider_name", "request_model", "response_model",
    "response_id", "output_type", "conversation_id", "data_source_id", "agent_id", "agent_name", "agent_version",
    "agent_description", "workflow_name", "prompt_name", "tool_name", "tool_type", "tool_call_id", "input_messages",
    "output_messages", "system_instructions", "tool_definitions", "tool_call_arguments", "tool_call_result",
    "request_choice_count", "request_max_tokens", "request_temperature", "request_top_p", "request_top_k",
    "request_presence_penalty", "request_frequency_penalty", "request_seed", "request_stop_sequences",
    "request_encoding_formats", "response_finish_reasons", "usage_input_tokens", "usage_output_tokens",
    "usage_cache_read_input_tokens", "usage_cache_creation_input_tokens", "resource_attributes", "span_attributes",
    "scope_name", "scope_version", "service_account_id",
}  # fmt: skip


def search(client: httpx.Client, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    response = client.post(SEARCH, json=body if body is not None else {}, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    page: dict[str, Any] = response.json()["spans"]
    assert set(page) == {"results", "next", "cursor"}
    return page


def expression(client: httpx.Client, text: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = search(client, {"search_expression": text})["results"]
    return results


def test_every_demo_span_newest_first_in_the_get_span_shape(client: httpx.Client) -> None:
    page = search(client)
    spans = page["results"]
    assert len(spans) == DEMO_SPAN_COUNT and page["cursor"] is None and page["next"] is None
    assert all(set(s) == GET_SPAN_KEYS for s in spans)
    starts = [s["start_time"] for s in spans]
    assert starts == sorted(starts, reverse=True)
    assert {s["trace_id"] for s in spans} == set(DEMO_TRACE_IDS)
    chat = next(s for s in spans if (s["trace_id"], s["span_id"]) == DEMO_CHAT_SPANS[3])
    assert chat["start_time"] == iso(T0 - 600 + 0.05) and chat["duration_ns"] == 700_000_000
    assert chat["status_code"] == "Ok" and chat["service_name"] == "support-bot"
    assert chat["resource_attributes"]["deployment.environment"] == "demo"
    assert all(isinstance(v, str) for s in spans for v in s["span_attributes"].values())


def test_cursor_pages_cover_every_span_once(client: httpx.Client) -> None:
    seen: list[tuple[str, str]] = []
    page = search(client, page_size=4)
    pages = 1
    while True:
        seen += [(s["trace_id"], s["span_id"]) for s in page["results"]]
        if page["cursor"] is None:
            break
        assert httpx.URL(page["next"]).params["cursor"] == page["cursor"]
        page = search(client, page_size=4, cursor=page["cursor"])
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == DEMO_SPAN_COUNT


def test_the_window_is_from_inclusive_to_exclusive_on_start_time(client: httpx.Client) -> None:
    # The second trace starts at T0-3600, the third at T0-1800.
    window = search(client, **{"from": iso(T0 - 3600), "to": iso(T0 - 1800)})["results"]
    assert {s["trace_id"] for s in window} == {DEMO_TRACE_IDS[1]} and len(window) == 2
    after = search(client, **{"from": "2026-01-01T00:00:00+00:00"})["results"]
    assert after == []
    naive = search(client, **{"from": "2025-12-31T23:50:00"})["results"]  # no zone: UTC
    assert {s["trace_id"] for s in naive} == {DEMO_TRACE_IDS[3]}


def test_spans_seeded_later_are_found(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.seed({"traces": [{"trace_id": "f" * 32, "created_at_offset_s": -1, "spans": [{"span_id": "e" * 16}]}]})
    newest = search(client, page_size=1)["results"][0]
    assert (newest["trace_id"], newest["span_id"]) == ("f" * 32, "e" * 16)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("span_name = 'chat mistral-small-latest'", 4),
        ('span_attributes.app.label = "bad"', 1),
        ("span_attributes.gen_ai.operation.name = execute_tool", 2),
        ("usage_input_tokens > 45", 3),
        ("usage_input_tokens >= 40 AND usage_input_tokens < 60", 2),
        ("span_kind = SERVER or span_kind = client", 4),  # values are exact, keywords any case
        ("NOT (span_kind = SERVER) AND service_name ~ support", 6),
        ("span_kind = CLIENT AND span_attributes.app.label = good OR span_name ~ execute_tool", 5),
        ("span_attributes.app.label != bad", 9),  # a missing attribute is "not equal"
        ("response_finish_reasons ~ stop", 4),
        ("resource_attributes.deployment.environment = demo", 10),
        (f"start_time >= '{iso(T0 - 1800)}'", 5),
        ("   ", 10),
    ],
)
def test_search_expression(client: httpx.Client, text: str, count: int) -> None:
    assert len(expression(client, text)) == count


def test_null_expression_matches_everything(client: httpx.Client) -> None:
    assert len(search(client, {"search_expression": None})["results"]) == DEMO_SPAN_COUNT


@pytest.mark.parametrize(
    "text",
    ["span_name =", "no_such_field = 1", "(span_name = a", "span_name = a b", "span_name == a", "AND", "x = 'open"],
)
def test_unparsable_expression_is_400(client: httpx.Client, text: str) -> None:
    response = client.post(SEARCH, json={"search_expression": text})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["error_code"] == "TRACES_FILTER_QUERY_PARSE_ERROR"


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"search_expression": 3}, {}),
        ({}, {"from": "yesterday"}),
        ({}, {"from": iso(T0), "to": iso(T0 - 1)}),
        ({}, {"page_size": 0}),
        ({}, {"page_size": 101}),
        ({}, {"cursor": "%%%"}),
    ],
)
def test_bad_query_or_body_is_422(client: httpx.Client, body: dict[str, Any], params: dict[str, Any]) -> None:
    response = client.post(SEARCH, json=body, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["error_code"] == "VALIDATION_ERROR"
