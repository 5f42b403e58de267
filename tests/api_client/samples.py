"""Bodies the API sends, shaped as the 2.5.0 SDK accepts them (contract §3, §5)."""

from __future__ import annotations

from typing import Any

DATASET_ID = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
TASK_ID = "1713cde2-dea1-410d-851e-8cea964ffa14"
CAMPAIGN_ID = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"
RECORD_ID = "58fe798a-0000-4000-8000-000000000001"
# A live-judging definition (3.x CreateJudgeRequest), keys deliberately not in the SDK's order.
JUDGE: dict[str, Any] = {
    "tools": [],
    "name": "tone",
    "description": "d",
    "model_name": "mistral-small-latest",
    "instructions": "Rate the tone.",
    "output": {"type": "CLASSIFICATION", "options": [{"description": "polite", "value": "good"}]},
}
STAMP = "2025-10-07T20:56:01.974Z"


def dataset(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": DATASET_ID,
        "created_at": STAMP,
        "updated_at": STAMP,
        "deleted_at": None,
        "name": "My Dataset",
        "description": "desc",
        "owner_id": "user-1",
        "workspace_id": "ws-1",
    }
    return {**body, **overrides}


def record(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": RECORD_ID,
        "created_at": STAMP,
        "updated_at": STAMP,
        "deleted_at": None,
        "dataset_id": DATASET_ID,
        "payload": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        "properties": {"label": "ok"},
        "source": "DIRECT_INPUT",
    }
    return {**body, **overrides}


def task(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": TASK_ID,
        "created_at": STAMP,
        "updated_at": STAMP,
        "deleted_at": None,
        "creator_id": "user-1",
        "dataset_id": DATASET_ID,
        "workspace_id": "ws-1",
        "status": "RUNNING",
        "progress": 0,
        "message": None,
    }
    return {**body, **overrides}


def page(items: list[dict[str, Any]], count: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"count": len(items) if count is None else count, "results": items, **extra}


def campaign(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": CAMPAIGN_ID,
        "created_at": STAMP,
        "updated_at": STAMP,
        "deleted_at": None,
        "name": "c",
        "owner_id": "user-1",
        "workspace_id": "ws-1",
        "description": "d",
        "max_nb_events": 10,
        "search_params": {"filters": None},
        "judge": {
            "id": "j",
            "created_at": STAMP,
            "updated_at": STAMP,
            "deleted_at": None,
            "owner_id": "user-1",
            "workspace_id": "ws-1",
            "name": "judge",
            "description": "d",
            "model_name": "mistral-small-latest",
            "instructions": "score it",
            "tools": [],
            "output": {"type": "REGRESSION", "min_description": "bad", "max_description": "good"},
        },
    }
    return {**body, **overrides}


def event_preview(event_id: str = "evt-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "event_id": event_id,
        "correlation_id": "corr-1",
        "created_at": STAMP,
        "extra_fields": {"model": "mistral-small", "score": 0.5, "tags": ["a"], "missing": None},
        "nb_input_tokens": 10,
        "nb_output_tokens": 5,
    }
    return {**body, **overrides}


def event(event_id: str = "evt-1", **overrides: Any) -> dict[str, Any]:
    body = {
        **event_preview(event_id),
        "enabled_tools": [],
        "request_messages": [{"role": "user", "content": "hi"}],
        "response_messages": [{"role": "assistant", "content": "hello"}],
        "nb_messages": 2,
        "chat_transcription_events": [],
    }
    return {**body, **overrides}


def file_object(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": "file-abc",
        "object": "file",
        "bytes": 42,
        "created_at": 1759870561,
        "filename": "records.jsonl",
        "purpose": "batch",
        "sample_type": "instruct",
        "source": "upload",
    }
    return {**body, **overrides}


def conversation(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": "conv_1",
        "created_at": STAMP,
        "updated_at": STAMP,
        "model": "mistral-small-latest",
        "object": "conversation",
    }
    return {**body, **overrides}


def conversation_messages(**overrides: Any) -> dict[str, Any]:
    body = {
        "conversation_id": "conv_1",
        "object": "conversation.messages",
        "messages": [
            {"role": "user", "content": "hi", "object": "entry", "type": "message.input"},
            {"role": "assistant", "content": "hello", "object": "entry", "type": "message.output"},
        ],
    }
    return {**body, **overrides}
