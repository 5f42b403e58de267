"""Conversations (CONTRACT.md §5.3), the source of ``from-playground`` imports.

These routes follow the Conversations API's error style: ``{"detail": "..."}`` for 404 and the
FastAPI list body for 422. ``start`` answers with an echo instead of running a model.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .clock import iso
from .errors import http_validation_error, plain_error
from .models import Conversation
from .web import Operations, json_object, json_response, page_params
from .wire import conversation_json, conversation_messages_json
from .world import World

__all__ = ["conversation_routes"]

CONVERSATIONS = "/v1/conversations"
DEFAULT_MODEL = "mistral-medium-latest"


def conversation_routes(world: World, ops: Operations) -> list[Route]:
    lock = world.lock

    def find(request: Request) -> Conversation:
        conversation_id = request.path_params["conversation_id"]
        conversation = world.conversations.get(conversation_id)
        if conversation is None:
            raise plain_error(404, f"Conversation {conversation_id} not found")
        return conversation

    async def fetch_conversation(request: Request) -> Response:
        with lock:
            return json_response(conversation_json(find(request)))

    async def fetch_conversation_messages(request: Request) -> Response:
        with lock:
            return json_response(conversation_messages_json(find(request)))

    async def list_conversations(request: Request) -> Response:
        page, size = page_params(request, default_size=100, first_page=0, fastapi_style=True)
        with lock:
            items = sorted(reversed(world.conversations.values()), key=lambda c: c.created_at, reverse=True)
            body = [conversation_json(c) for c in items[page * size : (page + 1) * size]]
        return json_response(body)

    async def start_conversation(request: Request) -> Response:
        body = await json_object(request, fastapi_style=True)
        messages = _input_messages(body.get("inputs"))
        agent_id = _optional_str(body, "agent_id")
        model = _optional_str(body, "model")
        if agent_id is None and model is None:
            model = DEFAULT_MODEL
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise http_validation_error(["body", "metadata"], "Input should be a valid dictionary", "dict_type")
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        reply = f"Echo: {last_user}" if isinstance(last_user, str) else "Echo"
        with lock:
            now = world.now()
            conversation = Conversation(
                id="conv_" + uuid.uuid4().hex,
                created_at=now,
                updated_at=now,
                messages=[*messages, {"role": "assistant", "content": reply}],
                model=model,
                agent_id=agent_id,
                name=_optional_str(body, "name"),
                description=_optional_str(body, "description"),
                instructions=_optional_str(body, "instructions"),
                metadata=metadata,
            )
            if body.get("store", True) is not False:
                world.conversations[conversation.id] = conversation
        output: dict[str, Any] = {
            "object": "entry",
            "type": "message.output",
            "role": "assistant",
            "content": reply,
            "created_at": iso(now),
            "completed_at": iso(now),
            "id": "msg_" + uuid.uuid4().hex[:24],
        }
        if agent_id is not None:
            output["agent_id"] = agent_id
        else:
            output["model"] = model
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(reply.split())
        return json_response(
            {
                "object": "conversation.response",
                "conversation_id": conversation.id,
                "outputs": [output],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def route(path: str, name: str, handler: Any, method: str) -> Route:
        return Route(path, ops.wrap(name, handler), methods=[method], name=name)

    return [
        route(CONVERSATIONS, "start_conversation", start_conversation, "POST"),
        route(CONVERSATIONS, "list_conversations", list_conversations, "GET"),
        route(CONVERSATIONS + "/{conversation_id}", "fetch_conversation", fetch_conversation, "GET"),
        route(
            CONVERSATIONS + "/{conversation_id}/messages",
            "fetch_conversation_messages",
            fetch_conversation_messages,
            "GET",
        ),
    ]


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise http_validation_error(["body", key], "Input should be a valid string", "string_type")
    return value


def _input_messages(inputs: object) -> list[dict[str, Any]]:
    """``inputs`` as chat messages: a string is one user message; entries keep role and content."""
    if isinstance(inputs, str):
        return [{"role": "user", "content": inputs}]
    if not isinstance(inputs, list) or not inputs:
        raise http_validation_error(["body", "inputs"], "Field required", "missing")
    messages: list[dict[str, Any]] = []
    for index, entry in enumerate(inputs):
        if not isinstance(entry, dict) or "content" not in entry:
            raise http_validation_error(["body", "inputs", index], "Input should be a message entry")
        if entry.get("type", "message.input") in ("message.input", "message.output"):
            messages.append({"role": entry.get("role", "user"), "content": entry["content"]})
    return messages
