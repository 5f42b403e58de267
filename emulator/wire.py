"""Exact JSON shapes of the API's responses (field names and required keys per SDK 2.5.0,
plus ``slug`` and ``result`` from later SDKs, which 2.5.0 ignores)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .clock import iso, iso_or_none
from .config import KNOWN_STATUSES
from .models import Campaign, Conversation, Dataset, Event, Record, StoredFile, Task

__all__ = [
    "TaskView",
    "campaign_json",
    "conversation_json",
    "conversation_messages_json",
    "dataset_json",
    "dumps",
    "event_json",
    "event_preview_json",
    "file_json",
    "page_json",
    "record_json",
    "task_body",
    "task_page_body",
    "task_text",
]

JsonObject = dict[str, Any]

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: object) -> bytes:
    return _encoder.encode(value).encode()


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task as seen at one instant."""

    status: str
    progress: int | None
    message: str | None
    updated_at: float
    result: JsonObject | None


def dataset_json(dataset: Dataset) -> JsonObject:
    return {
        "id": dataset.id,
        "created_at": iso(dataset.created_at),
        "updated_at": iso(dataset.updated_at),
        "deleted_at": iso_or_none(dataset.deleted_at),
        "name": dataset.name,
        "description": dataset.description,
        "owner_id": dataset.owner_id,
        "workspace_id": dataset.workspace_id,
        "slug": dataset.slug,
    }


def record_json(record: Record) -> JsonObject:
    return {
        "id": record.id,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "deleted_at": None,
        "dataset_id": record.dataset_id,
        "payload": record.payload,
        "properties": record.properties,
        "source": record.source,
    }


_STATUS_TEXT = {status: _encoder.encode(status) for status in KNOWN_STATUSES}


def _task_head(task: Task) -> str:
    if task.head_cache is None:
        head = _encoder.encode(
            {
                "id": task.id,
                "created_at": iso(task.created_at),
                "deleted_at": None,
                "creator_id": task.creator_id,
                "dataset_id": task.dataset_id,
                "workspace_id": task.workspace_id,
            }
        )
        # Keep the object open so the changing fields can be appended per read.
        task.head_cache = head[:-1] + ","
    return task.head_cache


def task_text(task: Task, view: TaskView) -> str:
    """The task's JSON object as text (the fetch hot path builds it from a cached head)."""
    status = _STATUS_TEXT.get(view.status) or _encoder.encode(view.status)
    return (
        _task_head(task)
        + '"updated_at":"'
        + iso(view.updated_at)
        + '","status":'
        + status
        + ',"progress":'
        + ("null" if view.progress is None else str(view.progress))
        + ',"message":'
        + ("null" if view.message is None else _encoder.encode(view.message))
        + ',"result":'
        + ("null" if view.result is None else _encoder.encode(view.result))
        + "}"
    )


def task_body(task: Task, view: TaskView) -> bytes:
    return task_text(task, view).encode()


def task_page_body(texts: Sequence[str], count: int, next_url: str | None, previous_url: str | None) -> bytes:
    return (
        '{"tasks":{"count":'
        + str(count)
        + ',"results":['
        + ",".join(texts)
        + '],"next":'
        + _encoder.encode(next_url)
        + ',"previous":'
        + _encoder.encode(previous_url)
        + "}}"
    ).encode()


def page_json(results: Iterable[object], count: int, next_url: str | None, previous_url: str | None) -> JsonObject:
    return {"count": count, "results": list(results), "next": next_url, "previous": previous_url}


def campaign_json(campaign: Campaign) -> JsonObject:
    return {
        "id": campaign.id,
        "created_at": iso(campaign.created_at),
        "updated_at": iso(campaign.updated_at),
        "deleted_at": iso_or_none(campaign.deleted_at),
        "name": campaign.name,
        "owner_id": campaign.owner_id,
        "workspace_id": campaign.workspace_id,
        "description": campaign.description,
        "max_nb_events": campaign.max_nb_events,
        "search_params": campaign.search_params,
        "judge": campaign.judge,
    }


def event_json(event: Event) -> JsonObject:
    return event.data


def event_preview_json(event: Event, extra_fields: Sequence[str] | None = None) -> JsonObject:
    data = event.data
    extra: JsonObject = data.get("extra_fields") or {}
    if extra_fields is not None:
        extra = {key: extra.get(key) for key in extra_fields}
    return {
        "event_id": data["event_id"],
        "correlation_id": data["correlation_id"],
        "created_at": data["created_at"],
        "extra_fields": extra,
        "nb_input_tokens": data["nb_input_tokens"],
        "nb_output_tokens": data["nb_output_tokens"],
    }


def conversation_json(conversation: Conversation) -> JsonObject:
    body: JsonObject = {
        "object": "conversation",
        "id": conversation.id,
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
        "name": conversation.name,
        "description": conversation.description,
        "metadata": conversation.metadata,
    }
    if conversation.agent_id is not None:
        body["agent_id"] = conversation.agent_id
    else:
        body["model"] = conversation.model or "mistral-medium-latest"
        body["instructions"] = conversation.instructions
    return body


def conversation_messages_json(conversation: Conversation) -> JsonObject:
    entries: list[JsonObject] = []
    for index, message in enumerate(conversation.messages):
        role = message.get("role", "user")
        entry: JsonObject = {
            "object": "entry",
            "type": "message.output" if role == "assistant" else "message.input",
            "role": role,
            "content": message.get("content", ""),
            "created_at": iso(conversation.created_at + index * 0.001),
            "id": f"msg_{conversation.id.removeprefix('conv_')[:24]}{index:04d}",
        }
        if role == "assistant" and conversation.agent_id is None:
            entry["model"] = conversation.model or "mistral-medium-latest"
        entries.append(entry)
    return {"object": "conversation.messages", "conversation_id": conversation.id, "messages": entries}


def file_json(stored: StoredFile, *, with_deleted: bool = False) -> JsonObject:
    content = stored.content
    num_lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    body: JsonObject = {
        "id": stored.id,
        "object": "file",
        "bytes": len(content),
        "created_at": stored.created_at,
        "filename": stored.filename,
        "purpose": stored.purpose,
        "sample_type": stored.sample_type,
        "source": stored.source,
        "num_lines": num_lines,
        "mimetype": stored.mimetype,
        "signature": None,
        "expires_at": stored.expires_at,
        "visibility": stored.visibility,
    }
    if with_deleted:
        body["deleted"] = False
    return body
