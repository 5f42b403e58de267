"""Import sources: campaign status over time, and how events, conversations and JSONL lines
become records."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .clock import iso
from .errors import DATASET_RECORD_FORMAT_ERROR
from .models import Campaign, Conversation, Event, PlannedRecord
from .world import OWNER_ID, WORKSPACE_ID, new_id

__all__ = [
    "campaign_status",
    "conversation_record",
    "default_judge",
    "event_record",
    "normalise_event",
    "parse_jsonl",
    "visible_event_ids",
]

JsonObject = dict[str, Any]


def campaign_status(campaign: Campaign, now: float) -> str:
    if campaign.completes_after_s is not None and now >= campaign.started_at + campaign.completes_after_s:
        return "COMPLETED"
    return campaign.status


def visible_event_ids(campaign: Campaign, now: float) -> list[str]:
    """Selected events found so far: a timed campaign reveals them in proportion to elapsed time."""
    ids = campaign.selected_event_ids
    if campaign.completes_after_s is None or campaign_status(campaign, now) == "COMPLETED":
        return list(ids)
    share = (now - campaign.started_at) / campaign.completes_after_s if campaign.completes_after_s else 1.0
    return list(ids[: max(0, min(len(ids), math.floor(len(ids) * share)))])


def default_judge(judge_id: str | None, now: float) -> JsonObject:
    return {
        "id": judge_id or new_id(),
        "created_at": iso(now),
        "updated_at": iso(now),
        "deleted_at": None,
        "owner_id": OWNER_ID,
        "workspace_id": WORKSPACE_ID,
        "name": "Emulator judge",
        "description": "Labels answers as good or bad",
        "model_name": "mistral-small-latest",
        "output": {
            "type": "CLASSIFICATION",
            "options": [
                {"value": "good", "description": "The answer is helpful and correct"},
                {"value": "bad", "description": "The answer is wrong or unhelpful"},
            ],
        },
        "instructions": "Judge the assistant's last answer.",
        "tools": [],
    }


def normalise_event(raw: Mapping[str, Any], created_ts: float) -> Event:
    """A fixture event completed with defaults into the full ``ChatCompletionEvent`` shape."""
    request_messages = list(raw.get("request_messages") or [])
    response_messages = list(raw.get("response_messages") or [])
    data: JsonObject = {
        "event_id": str(raw["event_id"]),
        "correlation_id": str(raw.get("correlation_id") or new_id()),
        "created_at": iso(created_ts),
        "extra_fields": dict(raw.get("extra_fields") or {}),
        "nb_input_tokens": int(raw.get("nb_input_tokens") or 0),
        "nb_output_tokens": int(raw.get("nb_output_tokens") or 0),
        "enabled_tools": list(raw.get("enabled_tools") or []),
        "request_messages": request_messages,
        "response_messages": response_messages,
        "nb_messages": int(raw.get("nb_messages") or len(request_messages) + len(response_messages)),
        "chat_transcription_events": list(raw.get("chat_transcription_events") or []),
    }
    return Event(data=data, created_ts=created_ts)


def event_record(event: Event) -> PlannedRecord:
    data = event.data
    return PlannedRecord(
        payload={"messages": [*data["request_messages"], *data["response_messages"]]},
        properties={"event_id": data["event_id"], "correlation_id": data["correlation_id"]},
        source="EXPLORER",
        origin=f"event:{data['event_id']}",
    )


def conversation_record(conversation: Conversation) -> PlannedRecord:
    messages: list[JsonObject] = []
    if conversation.instructions:
        messages.append({"role": "system", "content": conversation.instructions})
    messages.extend(dict(m) for m in conversation.messages)
    return PlannedRecord(
        payload={"messages": messages},
        properties={"conversation_id": conversation.id},
        source="PLAYGROUND",
        origin=f"conversation:{conversation.id}",
    )


def parse_jsonl(file_id: str, content: bytes) -> tuple[list[PlannedRecord], int, tuple[str, float] | None]:
    """Records from an uploaded JSONL file: (records, requested count, failure or None).

    Each non-blank line is ``{"messages": [...], "properties"?: {...}}`` (other top-level keys stay
    in the payload) or the export shape ``{"payload": {...any object}, "properties"?: {...}}``. The first bad
    line fails the whole import; the failure carries the share of lines read before it.
    """
    lines = content.split(b"\n")
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    planned: list[PlannedRecord] = []
    for position, (line_no, raw) in enumerate(numbered):
        try:
            payload, properties = _parse_line(raw)
        except ValueError as exc:
            message = f"{DATASET_RECORD_FORMAT_ERROR}: line {line_no}: {exc}"
            return [], len(numbered), (message, position / len(numbered))
        planned.append(PlannedRecord(payload, properties, "UPLOADED_FILE", f"file:{file_id}:{line_no}"))
    return planned, len(numbered), None


def _parse_line(raw: bytes) -> tuple[JsonObject, JsonObject]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError("not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if "payload" in obj:
        # The export shape: the payload is any object (3.x records are free-form).
        payload = obj["payload"]
        if not isinstance(payload, dict):
            raise ValueError("'payload' must be an object")
    else:
        payload = {k: v for k, v in obj.items() if k not in ("properties", "source")}
        messages = payload.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a list of objects")
    properties = obj.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ValueError("'properties' must be an object")
    return payload, properties
