"""The source endpoints imports read from (contract §5): campaigns, explorer events, files, conversations, spans.

Same shape as :mod:`api_client.operations`: each endpoint described once, one request builder per method.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter

from .errors import InvalidRequestError
from .filters import iso_utc
from .models import Page
from .operations import page_query
from .pagination import PageWalk
from .responses import JsonBody, RawBody
from .source_models import (
    Campaign,
    ChatCompletionEvent,
    ChatCompletionEventPreview,
    Conversation,
    ConversationMessages,
    FileObject,
    SpanFeed,
)
from .spec import Endpoint, RequestSpec

__all__ = [
    "DOWNLOAD_FILE",
    "FETCH_CAMPAIGN",
    "FETCH_CAMPAIGN_STATUS",
    "FETCH_CONVERSATION",
    "FETCH_CONVERSATION_MESSAGES",
    "FETCH_EVENT",
    "LIST_CAMPAIGN_EVENTS",
    "SEARCH_EVENT_IDS",
    "SEARCH_SPANS",
    "UPLOAD_FILE",
    "download_file",
    "fetch_campaign",
    "fetch_campaign_status",
    "fetch_conversation",
    "fetch_conversation_messages",
    "fetch_event",
    "iter_campaign_events",
    "list_campaign_events",
    "search_event_ids",
    "search_spans",
    "upload_file",
]

_CAMPAIGN = "/v1/observability/campaigns/{campaign_id}"
_EVENTS = "/v1/observability/chat-completion-events"
_CONVERSATION = "/v1/conversations/{conversation_id}"

FETCH_CAMPAIGN: Final = Endpoint("fetch_campaign", "GET", _CAMPAIGN, 200, JsonBody(TypeAdapter(Campaign)))
FETCH_CAMPAIGN_STATUS: Final = Endpoint(
    "fetch_campaign_status", "GET", _CAMPAIGN + "/status", 200, JsonBody(TypeAdapter(str), key="status")
)
LIST_CAMPAIGN_EVENTS: Final = Endpoint(
    "list_campaign_events",
    "GET",
    _CAMPAIGN + "/selected-events",
    200,
    JsonBody(TypeAdapter(Page[ChatCompletionEventPreview]), key="completion_events"),
)
# A POST that only reads: safe to retry.
SEARCH_EVENT_IDS: Final = Endpoint(
    "search_event_ids",
    "POST",
    _EVENTS + "/search-ids",
    200,
    JsonBody(TypeAdapter(list[str]), key="completion_event_ids"),
)
FETCH_EVENT: Final = Endpoint(
    "fetch_event", "GET", _EVENTS + "/{event_id}", 200, JsonBody(TypeAdapter(ChatCompletionEvent))
)
DOWNLOAD_FILE: Final = Endpoint("download_file", "GET", "/v1/files/{file_id}/content", 200, RawBody())
UPLOAD_FILE: Final = Endpoint("upload_file", "POST", "/v1/files", 200, JsonBody(TypeAdapter(FileObject)), creates=True)
FETCH_CONVERSATION: Final = Endpoint(
    "fetch_conversation", "GET", _CONVERSATION, 200, JsonBody(TypeAdapter(Conversation))
)
# A POST that only reads: safe to retry.
SEARCH_SPANS: Final = Endpoint(
    "search_spans", "POST", "/v1/observability/spans/search", 200, JsonBody(TypeAdapter(SpanFeed), key="spans")
)
FETCH_CONVERSATION_MESSAGES: Final = Endpoint(
    "fetch_conversation_messages",
    "GET",
    _CONVERSATION + "/messages",
    200,
    JsonBody(TypeAdapter(ConversationMessages)),
)


def fetch_campaign(campaign_id: str) -> RequestSpec[Campaign]:
    """One campaign (its judge and filters as plain dicts)."""
    return FETCH_CAMPAIGN.request({"campaign_id": campaign_id})


def fetch_campaign_status(campaign_id: str) -> RequestSpec[str]:
    """A campaign's status: a task status string (see ``TaskStatuses``); unknown values are returned as is."""
    return FETCH_CAMPAIGN_STATUS.request({"campaign_id": campaign_id})


def list_campaign_events(
    campaign_id: str, page: int = 1, page_size: int = 50
) -> RequestSpec[Page[ChatCompletionEventPreview]]:
    """One page of the events a campaign selected (1-based ``page``)."""
    return LIST_CAMPAIGN_EVENTS.request({"campaign_id": campaign_id}, query=page_query(page, page_size))


def iter_campaign_events(campaign_id: str, page_size: int = 100) -> PageWalk[ChatCompletionEventPreview]:
    """Every event a campaign selected, page after page."""
    return PageWalk(lambda page: list_campaign_events(campaign_id, page, page_size), page_size)


def search_event_ids(filters: dict[str, Any] | None) -> RequestSpec[list[str]]:
    """Ids of the chat completion events matching ``filters`` (see ``time_window_filter``); None matches all."""
    return SEARCH_EVENT_IDS.request(json_body={"search_params": {"filters": filters}})


def search_spans(
    search_expression: str | None = None,
    *,
    from_: datetime | None = None,
    to: datetime | None = None,
    page_size: int = 50,
    cursor: str | None = None,
) -> RequestSpec[SpanFeed]:
    """One page of the spans matching ``search_expression`` (None matches all) between ``from_`` and ``to``;
    the next page is asked for with the ``cursor`` this page returned. Query ``from``, ``to``, ``page_size``,
    ``cursor`` in the SDK's order, each sent only when set (``page_size`` always)."""
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        raise InvalidRequestError(f"search_spans: page_size must be a positive int, got {page_size!r}")
    if search_expression is not None and not isinstance(search_expression, str):
        raise InvalidRequestError(f"search_spans: search_expression must be a string, got {search_expression!r}")
    query = [(name, iso_utc(moment)) for name, moment in (("from", from_), ("to", to)) if moment is not None]
    query.append(("page_size", str(page_size)))
    if cursor is not None:
        query.append(("cursor", cursor))
    body = {} if search_expression is None else {"search_expression": search_expression}
    return SEARCH_SPANS.request(query=tuple(query), json_body=body)


def fetch_event(event_id: str) -> RequestSpec[ChatCompletionEvent]:
    """One chat completion event with its messages."""
    return FETCH_EVENT.request({"event_id": event_id})


def upload_file(file_name: str, content: bytes, *, purpose: str | None = None) -> RequestSpec[FileObject]:
    """Upload a file (multipart; parts ``visibility=workspace``, ``purpose`` when given, then ``file``).
    Not retried by default: a retry could store the file twice.
    """
    if not isinstance(file_name, str) or not file_name:
        raise InvalidRequestError(f"upload_file: file_name must be a non-empty string, got {file_name!r}")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise InvalidRequestError(f"upload_file: content must be bytes, got {type(content).__name__}")
    form = [("visibility", "workspace")]
    if purpose is not None:
        form.append(("purpose", purpose))
    # The SDK labels the part application/octet-stream whatever the file name.
    part = (file_name, bytes(content), "application/octet-stream")
    return UPLOAD_FILE.request(form=tuple(form), files=(("file", part),))


def download_file(file_id: str) -> RequestSpec[bytes]:
    """The bytes of an uploaded file (the Files API's ``GET /v1/files/{file_id}/content``)."""
    return DOWNLOAD_FILE.request({"file_id": file_id})


def fetch_conversation(conversation_id: str) -> RequestSpec[Conversation]:
    """One playground conversation."""
    return FETCH_CONVERSATION.request({"conversation_id": conversation_id})


def fetch_conversation_messages(conversation_id: str) -> RequestSpec[ConversationMessages]:
    """The messages of a playground conversation, in order."""
    return FETCH_CONVERSATION_MESSAGES.request({"conversation_id": conversation_id})
