"""The import kinds: validate the request, resolve the source now, plan the records.

Missing sources are refused synchronously (404/400) so a client learns at once; a source that
exists but is malformed (a bad JSONL line) yields a task that ends FAILED. Spans are the exception
the 3.x API defines: an unavailable span reference is skipped, counted in the task's
``result.skipped_record_count``. Callers hold ``world.lock``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import (
    CAMPAIGN_NO_MATCHING_EVENTS,
    CAMPAIGN_NOT_FOUND,
    CONVERSATION_NOT_FOUND,
    DATASET_RECORD_NOT_FOUND,
    EVENT_NOT_FOUND,
    FILE_NOT_FOUND,
    observability_error,
)
from .lifecycle import create_task, settle_all
from .models import PlannedRecord, Task
from .sources import conversation_record, event_record, parse_jsonl, visible_event_ids
from .telemetry import parse_mapping_contract, parse_span_references, span_record
from .web import require_str, require_str_list
from .world import World

__all__ = ["IMPORT_KINDS", "start_import"]

Plan = tuple[list[PlannedRecord], int, tuple[str, float] | None]


def start_import(world: World, kind: str, dataset_ref: str, body: Mapping[str, Any]) -> Task:
    """Validate ``body`` for ``kind``, check the target dataset (its id or slug), plan and register the task."""
    planner = IMPORT_KINDS[kind]
    argument = _ARGUMENTS[kind](body)
    dataset_id = world.dataset_for_path(dataset_ref).id
    plan, requested, failure = planner(world, argument)
    return create_task(world, dataset_id=dataset_id, kind=kind, plan=plan, requested=requested, failure=failure)


def _missing(code: str, noun: str, ids: list[str]) -> None:
    if ids:
        shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
        raise observability_error(404, code, f"{noun} not found: {shown}")


def _plan_campaign(world: World, campaign_id: Any) -> Plan:
    campaign = world.campaigns.get(campaign_id)
    if campaign is None or campaign.deleted_at is not None:
        raise observability_error(404, CAMPAIGN_NOT_FOUND, f"Campaign {campaign_id} not found")
    ids = visible_event_ids(campaign, world.now())
    if not ids:
        raise observability_error(400, CAMPAIGN_NO_MATCHING_EVENTS, f"Campaign {campaign_id} has no selected events")
    # Selected events that have since disappeared are counted as skipped.
    plan = [event_record(world.events[i]) for i in ids if i in world.events]
    return plan, len(ids), None


def _plan_explorer(world: World, event_ids: Any) -> Plan:
    _missing(EVENT_NOT_FOUND, "Chat completion events", [i for i in event_ids if i not in world.events])
    return [event_record(world.events[i]) for i in event_ids], len(event_ids), None


def _plan_file(world: World, file_id: Any) -> Plan:
    stored = world.files.get(file_id)
    if stored is None:
        raise observability_error(404, FILE_NOT_FOUND, f"File {file_id} not found")
    return parse_jsonl(stored.id, stored.content)


def _plan_playground(world: World, conversation_ids: Any) -> Plan:
    missing = [i for i in conversation_ids if i not in world.conversations]
    _missing(CONVERSATION_NOT_FOUND, "Conversations", missing)
    plan = [conversation_record(world.conversations[i]) for i in conversation_ids]
    return plan, len(conversation_ids), None


def _plan_dataset(world: World, record_ids: Any) -> Plan:
    # Records of finished-but-unread tasks count as existing.
    settle_all(world, world.now())

    def live(record_id: str) -> bool:
        record = world.records.get(record_id)
        if record is None:
            return False
        dataset = world.datasets.get(record.dataset_id)
        return dataset is not None and dataset.deleted_at is None

    _missing(DATASET_RECORD_NOT_FOUND, "Dataset records", [i for i in record_ids if not live(i)])
    plan: list[PlannedRecord] = []
    for record_id in record_ids:
        record = world.records[record_id]
        plan.append(
            PlannedRecord(
                payload=dict(record.payload),
                properties=dict(record.properties),
                source=record.source,
                origin=record.origin or f"record:{record.id}",
            )
        )
    return plan, len(record_ids), None


def _plan_spans(world: World, argument: Any) -> Plan:
    references, rules = argument
    # Unavailable references (unknown, or another tenant's) are skipped without telling which.
    plan = [
        span_record(world.spans[(ref.trace_id, ref.span_id)], rules)
        for ref in references
        if (ref.trace_id, ref.span_id) in world.spans
    ]
    return plan, len(references), None


IMPORT_KINDS: dict[str, Callable[[World, Any], Plan]] = {
    "campaign": _plan_campaign,
    "explorer": _plan_explorer,
    "file": _plan_file,
    "playground": _plan_playground,
    "dataset": _plan_dataset,
    "spans": _plan_spans,
}

_ARGUMENTS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "campaign": lambda body: require_str(body, "campaign_id", uuid_format=True),
    "explorer": lambda body: require_str_list(body, "completion_event_ids"),
    "file": lambda body: require_str(body, "file_id"),
    "playground": lambda body: require_str_list(body, "conversation_ids"),
    "dataset": lambda body: require_str_list(body, "dataset_record_ids", uuid_format=True),
    "spans": lambda body: (parse_span_references(body), parse_mapping_contract(body)),
}
