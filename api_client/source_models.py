"""Objects of the APIs imports read from (contract §5): campaigns, explorer events, files, conversations, spans.

Only what an import orchestrator needs is typed closely; nested structures it never looks into (a campaign's
judge and filters, tool definitions, content chunks) stay plain dicts so a change there cannot break parsing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeAlias

from pydantic import Field, model_validator

from .models import ResponseModel

__all__ = [
    "Campaign",
    "ChatCompletionEvent",
    "ChatCompletionEventPreview",
    "ChatTranscriptionEvent",
    "Conversation",
    "ConversationMessages",
    "ExtraFieldValue",
    "FileObject",
    "MessageEntry",
    "MessageInputEntry",
    "MessageOutputEntry",
    "Span",
    "SpanFeed",
]


class Campaign(ResponseModel):
    """A judging campaign; its status comes from a separate endpoint, not from this object."""

    id: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    owner_id: str
    workspace_id: str
    description: str
    max_nb_events: int
    search_params: dict[str, Any]
    judge: dict[str, Any]


ExtraFieldValue: TypeAlias = bool | int | float | str | datetime | list[str] | dict[str, str] | None


class ChatCompletionEventPreview(ResponseModel):
    """A chat completion event as listed; ``event_id`` is what ``import_from_explorer`` takes."""

    event_id: str
    correlation_id: str
    created_at: datetime
    extra_fields: dict[str, ExtraFieldValue]
    nb_input_tokens: int
    nb_output_tokens: int


class ChatTranscriptionEvent(ResponseModel):
    """An audio transcription attached to a chat completion event."""

    audio_url: str
    model: str
    response_message: dict[str, Any]


class ChatCompletionEvent(ChatCompletionEventPreview):
    """A chat completion event with its messages."""

    enabled_tools: list[dict[str, Any]]
    request_messages: list[dict[str, Any]]
    response_messages: list[dict[str, Any]]
    nb_messages: int
    chat_transcription_events: list[ChatTranscriptionEvent]


class FileObject(ResponseModel):
    """An uploaded file (``CreateFileResponse``); the JSON key ``bytes`` is exposed as ``size_bytes``."""

    id: str
    object: str
    size_bytes: int = Field(alias="bytes")
    # Unix seconds, unlike the ISO strings of the Observability API.
    created_at: int
    filename: str
    purpose: str
    sample_type: str
    source: str
    num_lines: int | None = None
    mimetype: str | None = None
    signature: str | None = None
    expires_at: int | None = None
    visibility: str | None = None


class Conversation(ResponseModel):
    """A stored conversation: a model conversation (``model`` set) or an agent conversation (``agent_id`` set)."""

    id: str
    created_at: datetime
    updated_at: datetime
    model: str | None = None
    agent_id: str | None = None
    instructions: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    object: Literal["conversation"] = "conversation"

    @model_validator(mode="after")
    def _model_or_agent(self) -> Conversation:
        if self.model is None and self.agent_id is None:
            raise ValueError("a conversation has either a model or an agent_id")
        return self


class MessageInputEntry(ResponseModel):
    """A message sent to the model (``type`` ``message.input``)."""

    role: str
    content: str | list[dict[str, Any]]
    object: Literal["entry"] = "entry"
    type: Literal["message.input"] = "message.input"
    created_at: datetime | None = None
    completed_at: datetime | None = None
    id: str | None = None
    prefix: bool = False


class MessageOutputEntry(ResponseModel):
    """A message produced by the model or agent (``type`` ``message.output``)."""

    content: str | list[dict[str, Any]]
    object: Literal["entry"] = "entry"
    type: Literal["message.output"] = "message.output"
    created_at: datetime | None = None
    completed_at: datetime | None = None
    agent_id: str | None = None
    model: str | None = None
    id: str | None = None
    role: Literal["assistant"] = "assistant"


MessageEntry: TypeAlias = MessageInputEntry | MessageOutputEntry


class ConversationMessages(ResponseModel):
    """The messages of a conversation, in order."""

    conversation_id: str
    messages: list[MessageEntry]
    object: Literal["conversation.messages"] = "conversation.messages"


class Span(ResponseModel):
    """A telemetry span as the spans search returns it (SDK 3.x ``GetSpan``); ``trace_id`` and ``span_id`` are what
    a spans import takes. The SDK requires some fifty more keys: only those an import needs are read."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    span_name: str | None = None
    service_name: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    span_attributes: dict[str, str] = Field(default_factory=dict)
    resource_attributes: dict[str, str] = Field(default_factory=dict)


class SpanFeed(ResponseModel):
    """One page of a spans search (``FeedResultGetSpan``): the next page is asked for with ``cursor``."""

    results: list[Span] = Field(default_factory=list)
    next: str | None = None
    cursor: str | None = None
