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
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


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


def span(**overrides: Any) -> dict[str, Any]:
    """A span as the 3.x spans search returns it: every key the SDK's ``GetSpan`` requires."""
    text_keys = (
        "customer_id organization_id workspace_id user_id parent_span_id trace_state span_kind status_message "
        "error_type operation_name provider_name request_model response_model response_id output_type "
        "conversation_id data_source_id agent_id agent_name agent_version agent_description workflow_name "
        "prompt_name tool_name tool_type tool_call_id input_messages output_messages system_instructions "
        "tool_definitions tool_call_arguments tool_call_result scope_name scope_version"
    ).split()
    count_keys = (
        "duration_ns request_choice_count request_max_tokens request_seed usage_input_tokens usage_output_tokens "
        "usage_cache_read_input_tokens usage_cache_creation_input_tokens"
    ).split()
    body: dict[str, Any] = {key: "" for key in text_keys}
    body.update({key: 0 for key in count_keys})
    body.update(
        {
            "trace_id": TRACE_ID,
            "span_id": SPAN_ID,
            "start_time": STAMP,
            "end_time": STAMP,
            "span_name": "chat mistral-small",
            "service_name": "support-bot",
            "status_code": "Ok",
            "request_temperature": None,
            "request_top_p": None,
            "request_top_k": None,
            "request_presence_penalty": None,
            "request_frequency_penalty": None,
            "request_stop_sequences": [],
            "request_encoding_formats": [],
            "response_finish_reasons": [],
            "resource_attributes": {"deployment.environment": "prod"},
            "span_attributes": {"gen_ai.prompt": "hi"},
        }
    )
    return {**body, **overrides}
