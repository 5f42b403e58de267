"""Campaigns, chat-completion events, conversations and files: the import sources."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulator.fixtures import (
    DEMO_CAMPAIGN_COMPLETED_ID,
    DEMO_CAMPAIGN_RUNNING_ID,
    DEMO_CONVERSATION_IDS,
    DEMO_FILE_ID,
)
from emulator.testing import EmulatorServer

CAMPAIGNS = "/v1/observability/campaigns"
EVENTS = "/v1/observability/chat-completion-events"
CAMPAIGN_KEYS = {
    "id", "created_at", "updated_at", "deleted_at", "name", "owner_id", "workspace_id", "description",
    "max_nb_events", "search_params", "judge",
}  # fmt: skip
PREVIEW_KEYS = {"event_id", "correlation_id", "created_at", "extra_fields", "nb_input_tokens", "nb_output_tokens"}
EVENT_KEYS = PREVIEW_KEYS | {
    "enabled_tools", "request_messages", "response_messages", "nb_messages", "chat_transcription_events",
}  # fmt: skip


def search_ids(client: httpx.Client, filters: Any) -> list[str]:
    response = client.post(f"{EVENTS}/search-ids", json={"search_params": {"filters": filters}})
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["completion_event_ids"]
    return ids


# Campaigns


def test_campaign_fetch_list_status_and_selected_events(client: httpx.Client) -> None:
    campaign = client.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_COMPLETED_ID}").json()
    assert set(campaign) == CAMPAIGN_KEYS and campaign["deleted_at"] is None
    assert campaign["judge"]["output"]["type"] == "CLASSIFICATION" and campaign["judge"]["deleted_at"] is None
    listed = client.get(CAMPAIGNS, params={"q": "large"}).json()["campaigns"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == DEMO_CAMPAIGN_COMPLETED_ID
    assert client.get(CAMPAIGNS).json()["campaigns"]["count"] == 3
    assert client.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_COMPLETED_ID}/status").json() == {"status": "COMPLETED"}
    events = client.get(f"{CAMPAIGNS}/{DEMO_CAMPAIGN_COMPLETED_ID}/selected-events", params={"page_size": 4})
    page = events.json()["completion_events"]
    assert page["count"] == 10 and len(page["results"]) == 4 and page["next"] and page["previous"] is None
    assert set(page["results"][0]) == PREVIEW_KEYS
    assert {e["extra_fields"]["model"] for e in page["results"]} == {"mistral-large-latest"}


def test_running_campaign_lists_only_events_found_so_far(emu: EmulatorServer, client: httpx.Client) -> None:
    url = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_RUNNING_ID}/selected-events"
    assert client.get(url).json()["completion_events"]["count"] == 0
    emu.advance_clock(30)
    assert client.get(url).json()["completion_events"]["count"] == 8


def test_create_campaign_selects_matching_events(emu: EmulatorServer, client: httpx.Client) -> None:
    body = {
        "search_params": {"filters": {"field": "extra_fields.user_id", "op": "eq", "value": "user-1"}},
        "judge_id": "judge-1",
        "name": "User one",
        "description": "events of user-1",
        "max_nb_events": 3,
    }
    response = client.post(CAMPAIGNS, json=body)
    assert response.status_code == 201
    campaign = response.json()
    assert set(campaign) == CAMPAIGN_KEYS and campaign["judge"]["id"] == "judge-1"
    assert campaign["search_params"] == body["search_params"] and campaign["max_nb_events"] == 3
    status_url = f"{CAMPAIGNS}/{campaign['id']}/status"
    assert client.get(status_url).json() == {"status": "RUNNING"}
    emu.advance_clock(5)
    assert client.get(status_url).json() == {"status": "COMPLETED"}
    events = client.get(f"{CAMPAIGNS}/{campaign['id']}/selected-events").json()["completion_events"]
    assert events["count"] == 3
    assert {e["extra_fields"]["user_id"] for e in events["results"]} == {"user-1"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"search_params": {}, "judge_id": "j", "name": "n", "description": "d", "max_nb_events": 1},
        {"search_params": {"filters": None}, "judge_id": "j", "name": "n", "description": "d", "max_nb_events": 0},
        {"search_params": {"filters": None}, "name": "n", "description": "d", "max_nb_events": 1},
    ],
)
def test_create_campaign_validation(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post(CAMPAIGNS, json=body)
    assert response.status_code == 422 and response.json()["detail"]["error_code"] == "VALIDATION_ERROR"


def test_delete_campaign_is_soft_and_404_after(client: httpx.Client) -> None:
    url = f"{CAMPAIGNS}/{DEMO_CAMPAIGN_COMPLETED_ID}"
    response = client.delete(url)
    assert response.status_code == 204 and response.content == b""
    for path in ("", "/status", "/selected-events"):
        gone = client.get(url + path)
        assert gone.status_code == 404 and gone.json()["detail"]["error_code"] == "CAMPAIGN_NOT_FOUND"
    assert client.get(f"{CAMPAIGNS}/nope").status_code == 422


# Chat-completion events


def test_fetch_event_full_shape_and_404(client: httpx.Client) -> None:
    event_id = search_ids(client, None)[0]
    event = client.get(f"{EVENTS}/{event_id}").json()
    assert set(event) == EVENT_KEYS and event["event_id"] == event_id
    assert event["nb_messages"] == len(event["request_messages"]) + len(event["response_messages"])
    missing = client.get(f"{EVENTS}/nope")
    assert missing.status_code == 404 and missing.json()["detail"]["error_code"] == "SEARCH_NOT_FOUND"


def test_search_is_a_cursor_feed_newest_first(client: httpx.Client) -> None:
    body = {"search_params": {"filters": None}}
    seen: list[dict[str, Any]] = []
    url: str | None = f"{EVENTS}/search?page_size=7"
    pages = 0
    while url:
        feed = client.post(url, json=body).json()["completion_events"]
        seen.extend(feed["results"])
        url, pages = feed["next"], pages + 1
        assert (feed["cursor"] is None) == (url is None)
    assert pages == 3 and len(seen) == 20 and len({e["event_id"] for e in seen}) == 20
    times = [e["created_at"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert set(seen[0]) == PREVIEW_KEYS


def test_search_extra_fields_selects_keys(client: httpx.Client) -> None:
    body = {"search_params": {"filters": None}, "extra_fields": ["model"]}
    results = client.post(f"{EVENTS}/search", json=body).json()["completion_events"]["results"]
    assert all(set(e["extra_fields"]) == {"model"} for e in results)


def test_search_ids_with_and_or_groups(client: httpx.Client) -> None:
    every = search_ids(client, None)
    assert len(every) == 20
    newest = client.get(f"{EVENTS}/{every[0]}").json()["created_at"]
    large = {"field": "extra_fields.model", "op": "eq", "value": "mistral-large-latest"}
    high = {"field": "nb_input_tokens", "op": "gte", "value": 100}
    assert len(search_ids(client, large)) == 10
    both = search_ids(client, {"AND": [large, high]})
    either = search_ids(client, {"OR": [large, high]})
    assert 0 < len(both) < 10 < len(either) < 20
    nested = search_ids(client, {"AND": [{"OR": [large, high]}, {"field": "created_at", "op": "lt", "value": newest}]})
    assert nested == [e for e in either if e != every[0]]


@pytest.mark.parametrize(
    ("search_params", "status", "code"),
    [
        ({}, 422, "VALIDATION_ERROR"),
        ({"filters": {"field": "x", "op": "sounds_like", "value": 1}}, 400, "SEARCH_BAD_REQUEST"),
        ({"filters": {"XOR": []}}, 422, "VALIDATION_ERROR"),
        ({"filters": {"field": "x", "op": "matches", "value": "("}}, 400, "SEARCH_BAD_REQUEST"),
    ],
)
def test_bad_filters(client: httpx.Client, search_params: Any, status: int, code: str) -> None:
    response = client.post(f"{EVENTS}/search-ids", json={"search_params": search_params})
    assert response.status_code == status and response.json()["detail"]["error_code"] == code


def test_bad_cursor_is_422(client: httpx.Client) -> None:
    response = client.post(f"{EVENTS}/search?cursor=%%%", json={"search_params": {"filters": None}})
    assert response.status_code == 422


# Conversations


def test_get_conversation_and_messages(client: httpx.Client) -> None:
    model_conv = client.get(f"/v1/conversations/{DEMO_CONVERSATION_IDS[0]}").json()
    assert model_conv["object"] == "conversation" and model_conv["model"] == "mistral-medium-latest"
    assert model_conv["instructions"] == "Answer briefly."
    agent_conv = client.get(f"/v1/conversations/{DEMO_CONVERSATION_IDS[2]}").json()
    assert agent_conv["agent_id"].startswith("ag_") and "model" not in agent_conv
    messages = client.get(f"/v1/conversations/{DEMO_CONVERSATION_IDS[1]}/messages").json()
    assert messages["object"] == "conversation.messages"
    assert messages["conversation_id"] == DEMO_CONVERSATION_IDS[1]
    assert [m["type"] for m in messages["messages"]] == ["message.input", "message.output"] * 2
    assert messages["messages"][1]["content"] == "Bonjour." and messages["messages"][1]["role"] == "assistant"
    missing = client.get("/v1/conversations/conv_nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "Conversation conv_nope not found"}


def test_list_conversations_is_a_zero_based_bare_array(client: httpx.Client) -> None:
    first = client.get("/v1/conversations", params={"page": 0, "page_size": 2}).json()
    second = client.get("/v1/conversations", params={"page": 1, "page_size": 2}).json()
    assert isinstance(first, list) and len(first) == 2 and len(second) == 1
    assert [c["id"] for c in first + second] == list(reversed(DEMO_CONVERSATION_IDS))
    bad = client.get("/v1/conversations", params={"page": -1})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], list)


def test_start_conversation_stores_it(client: httpx.Client) -> None:
    response = client.post("/v1/conversations", json={"inputs": "Hello there", "model": "mistral-small-latest"})
    assert response.status_code == 200
    started = response.json()
    assert started["object"] == "conversation.response"
    assert started["outputs"][0]["content"] == "Echo: Hello there"
    assert started["usage"]["total_tokens"] == started["usage"]["prompt_tokens"] + 3
    conversation_id = started["conversation_id"]
    messages = client.get(f"/v1/conversations/{conversation_id}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hello there"),
        ("assistant", "Echo: Hello there"),
    ]
    entries = [{"role": "user", "content": "one", "object": "entry", "type": "message.input"}]
    unstored = client.post("/v1/conversations", json={"inputs": entries, "store": False}).json()
    assert client.get(f"/v1/conversations/{unstored['conversation_id']}").status_code == 404
    invalid = client.post("/v1/conversations", json={"model": "m"})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "inputs"]


# Files


def test_upload_fetch_content_delete(client: httpx.Client) -> None:
    content = b'{"messages": []}\n{"messages": []}\n'
    response = client.post(
        "/v1/files",
        files={"file": ("records.jsonl", content, "application/jsonl")},
        data={"visibility": "workspace", "purpose": "batch"},
    )
    assert response.status_code == 200
    created = response.json()
    assert created["bytes"] == len(content) and created["object"] == "file"
    assert created["filename"] == "records.jsonl" and created["purpose"] == "batch"
    assert created["num_lines"] == 2 and created["source"] == "upload" and created["mimetype"] == "application/jsonl"
    assert isinstance(created["created_at"], int)
    file_id = created["id"]
    fetched = client.get(f"/v1/files/{file_id}").json()
    assert fetched["deleted"] is False and fetched["bytes"] == len(content)
    download = client.get(f"/v1/files/{file_id}/content")
    assert download.content == content and download.headers["content-type"] == "application/octet-stream"
    assert client.get("/v1/files").json()["total"] == 3
    deleted = client.delete(f"/v1/files/{file_id}")
    assert deleted.status_code == 200 and deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert client.get(f"/v1/files/{file_id}").status_code == 404


def test_upload_without_purpose_and_signed_url(client: httpx.Client) -> None:
    created = client.post("/v1/files", files={"file": ("a.jsonl", b"x")}).json()
    assert created["purpose"] == "fine-tune" and created["visibility"] == "workspace"
    url = client.get(f"/v1/files/{DEMO_FILE_ID}/url").json()["url"]
    assert httpx.get(url).text.count("\n") == 5
    assert client.post("/v1/files", data={"purpose": "batch"}).status_code == 422
