"""Campaigns (CONTRACT.md §5.1) and chat-completion events, the "Explorer" (§5.2)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import (
    CAMPAIGN_NOT_FOUND,
    EVENT_NOT_FOUND,
    VALIDATION_ERROR,
    observability_error,
    validation_error,
)
from .filters import FilterError, Predicate, compile_filter_payload
from .models import Campaign, Event
from .sources import campaign_status, default_judge, visible_event_ids
from .web import (
    Operations,
    json_object,
    json_response,
    name_search_page,
    no_content,
    page_links,
    page_params,
    path_uuid,
    require_str,
)
from .wire import campaign_json, event_json, event_preview_json, page_json
from .world import OWNER_ID, WORKSPACE_ID, World, new_id

__all__ = ["source_routes"]

CAMPAIGNS = "/v1/observability/campaigns"
EVENTS = "/v1/observability/chat-completion-events"


def compile_or_problem(search_params: object) -> Predicate:
    try:
        return compile_filter_payload(search_params)
    except FilterError as exc:
        code = VALIDATION_ERROR if exc.status == 422 else "SEARCH_BAD_REQUEST"
        raise observability_error(exc.status, code, str(exc)) from exc


def matching_events(world: World, predicate: Predicate) -> list[Event]:
    """Events matching a filter, newest first (ties broken by id, descending, for stable cursors)."""
    found = [e for e in world.events.values() if predicate(e.data)]
    found.sort(key=lambda e: (e.created_ts, e.event_id), reverse=True)
    return found


def source_routes(world: World, ops: Operations) -> list[Route]:
    lock = world.lock

    def live_campaign(request: Request) -> Campaign:
        campaign_id = path_uuid(request, "campaign_id")
        campaign = world.campaigns.get(campaign_id)
        if campaign is None or campaign.deleted_at is not None:
            raise observability_error(404, CAMPAIGN_NOT_FOUND, f"Campaign {campaign_id} not found")
        return campaign

    async def create_campaign(request: Request) -> Response:
        body = await json_object(request)
        predicate = compile_or_problem(body.get("search_params"))
        judge_id = require_str(body, "judge_id")
        name = require_str(body, "name")
        description = require_str(body, "description")
        max_nb_events = body.get("max_nb_events")
        if not isinstance(max_nb_events, int) or isinstance(max_nb_events, bool) or max_nb_events < 1:
            raise validation_error("body.max_nb_events: Input should be an integer >= 1")
        with lock:
            now = world.now()
            selected = [e.event_id for e in matching_events(world, predicate)[:max_nb_events]]
            campaign = Campaign(
                id=new_id(),
                name=name,
                description=description,
                max_nb_events=max_nb_events,
                search_params=body["search_params"],
                judge=default_judge(judge_id, now),
                selected_event_ids=selected,
                owner_id=OWNER_ID,
                workspace_id=WORKSPACE_ID,
                created_at=now,
                updated_at=now,
                status="RUNNING",
                started_at=now,
                completes_after_s=world.knobs.campaign_duration_s,
            )
            world.campaigns[campaign.id] = campaign
            return json_response(campaign_json(campaign), 201)

    async def list_campaigns(request: Request) -> Response:
        with lock:
            return name_search_page(request, world.campaigns.values(), key="campaigns", to_json=campaign_json)

    async def fetch_campaign(request: Request) -> Response:
        with lock:
            return json_response(campaign_json(live_campaign(request)))

    async def delete_campaign(request: Request) -> Response:
        with lock:
            campaign = live_campaign(request)
            campaign.deleted_at = campaign.updated_at = world.now()
        return no_content()

    async def fetch_campaign_status(request: Request) -> Response:
        with lock:
            return json_response({"status": campaign_status(live_campaign(request), world.now())})

    async def list_campaign_events(request: Request) -> Response:
        page, size = page_params(request)
        with lock:
            campaign = live_campaign(request)
            ids = [i for i in visible_event_ids(campaign, world.now()) if i in world.events]
            results = [event_preview_json(world.events[i]) for i in ids[(page - 1) * size : page * size]]
        next_url, previous_url = page_links(request, page, size, len(ids))
        return json_response({"completion_events": page_json(results, len(ids), next_url, previous_url)})

    async def fetch_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        with lock:
            event = world.events.get(event_id)
            if event is None:
                raise observability_error(404, EVENT_NOT_FOUND, f"Chat completion event {event_id} not found")
            return json_response(event_json(event))

    async def search_events(request: Request) -> Response:
        body = await json_object(request)
        predicate = compile_or_problem(body.get("search_params"))
        extra_fields = _extra_fields(body)
        _, size = page_params(request)
        after = _decode_cursor(request.query_params.get("cursor"))
        with lock:
            found = matching_events(world, predicate)
            if after is not None:
                found = [e for e in found if (e.created_ts, e.event_id) < after]
            chunk = found[:size]
            results = [event_preview_json(e, extra_fields) for e in chunk]
        cursor = next_url = None
        if len(found) > size:
            cursor = _encode_cursor(chunk[-1])
            next_url = str(request.url.include_query_params(cursor=cursor, page_size=size))
        return json_response({"completion_events": {"results": results, "next": next_url, "cursor": cursor}})

    async def search_event_ids(request: Request) -> Response:
        body = await json_object(request)
        predicate = compile_or_problem(body.get("search_params"))
        _extra_fields(body)
        with lock:
            ids = [e.event_id for e in matching_events(world, predicate)]
        return json_response({"completion_event_ids": ids})

    def route(path: str, name: str, handler: Any, method: str) -> Route:
        return Route(path, ops.wrap(name, handler), methods=[method], name=name)

    return [
        route(CAMPAIGNS, "create_campaign", create_campaign, "POST"),
        route(CAMPAIGNS, "list_campaigns", list_campaigns, "GET"),
        route(CAMPAIGNS + "/{campaign_id}", "fetch_campaign", fetch_campaign, "GET"),
        route(CAMPAIGNS + "/{campaign_id}", "delete_campaign", delete_campaign, "DELETE"),
        route(CAMPAIGNS + "/{campaign_id}/status", "fetch_campaign_status", fetch_campaign_status, "GET"),
        route(CAMPAIGNS + "/{campaign_id}/selected-events", "list_campaign_events", list_campaign_events, "GET"),
        route(EVENTS + "/search", "search_events", search_events, "POST"),
        route(EVENTS + "/search-ids", "search_event_ids", search_event_ids, "POST"),
        route(EVENTS + "/{event_id}", "fetch_event", fetch_event, "GET"),
    ]


def _extra_fields(body: dict[str, Any]) -> list[str] | None:
    value = body.get("extra_fields")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error("body.extra_fields: Input should be a list of strings or null")
    return value


def _encode_cursor(event: Event) -> str:
    raw = json.dumps([event.created_ts, event.event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, event_id = json.loads(base64.urlsafe_b64decode(padded))
        return float(ts), str(event_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise validation_error(f"query.cursor: invalid cursor {cursor!r}") from exc
