"""The import kinds: one entry each. A new kind is a new member of :class:`ImportKind`, of :data:`ImportKindName`
and a new entry in :data:`IMPORT_KINDS`; the command line, the queue message, the schedules, the client and the
ledger take it from here.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Literal, get_args

from .fields import ID_LIST, ONE_ID, ONE_UUID, UUID_LIST
from .registry import BodyField, CommandGroup, ImportKindSpec, Option, Resolver, ScheduleRefusal
from .spans import MAPPING_CONTRACT, SPAN_REFERENCES

__all__ = ["IMPORT_KINDS", "ImportKind", "ImportKindName", "spec_of"]


class ImportKind(StrEnum):
    """Which import endpoint a job calls (stored in the ledger as this value)."""

    CAMPAIGN = "campaign"
    EXPLORER = "explorer"
    FILE = "file"
    PLAYGROUND = "playground"
    DATASET = "dataset"
    SPANS = "spans"


ImportKindName = Literal["campaign", "explorer", "file", "playground", "dataset", "spans"]
"""The same names, as a type a checker can see through (the client's ``start_import`` takes one)."""

_IMPORT, _SEND, _SCHEDULE = CommandGroup.IMPORT, CommandGroup.SEND, CommandGroup.SCHEDULE

_ENTRIES = (
    ImportKindSpec(
        name=ImportKind.CAMPAIGN,
        route="from-campaign",
        operation="import_from_campaign",
        about="Import the selected events of a campaign.",
        help={
            _IMPORT: "Import a campaign's selected completion events.",
            _SEND: "Request a campaign import.",
            _SCHEDULE: "Import a campaign on every fire.",
        },
        fields=(BodyField("campaign_id", ONE_UUID, schedule_key="campaign"),),
        options=(
            Option(
                "--campaign",
                "campaign_id",
                "Campaign whose selected events to import.",
                help_in={_SCHEDULE: "Campaign to import on every fire."},
            ),
        ),
    ),
    ImportKindSpec(
        name=ImportKind.EXPLORER,
        route="from-explorer",
        operation="import_from_explorer",
        about="Import chat-completion events by id.",
        help={
            _IMPORT: "Import chat-completion events from the explorer.",
            _SEND: "Request an import of chat-completion events.",
            _SCHEDULE: "Import the same explorer events on every fire.",
        },
        fields=(BodyField("completion_event_ids", ID_LIST, schedule_key="events"),),
        options=(
            Option("--event", "completion_event_ids", "Completion event id (repeatable)."),
            Option(
                "--filter",
                "completion_event_ids",
                "Import the events this explorer filter matches (JSON: a condition or an AND/OR group), "
                "searched now; see --dry-run.",
                resolver=Resolver.SEARCH_EVENTS,
                help_in={_SCHEDULE: "Not here: see explorer-window."},
                schedule_refusal=ScheduleRefusal(
                    "filter",
                    "to import the events a filter matches on a schedule, use kind explorer-window: it imports "
                    "each event once (dsimport schedules add NAME --every 1h explorer-window --dataset D --filter F)",
                ),
            ),
        ),
    ),
    ImportKindSpec(
        name=ImportKind.FILE,
        route="from-file",
        operation="import_from_file",
        about="Import a JSONL file already uploaded to the Files API.",
        help={
            _IMPORT: "Import a JSONL file (uploaded first with --path, or already uploaded with --file-id).",
            _SEND: "Request a file import (uploaded first with --path, or already uploaded with --file-id).",
            _SCHEDULE: "Import an uploaded file on every fire (upload it once with `dsimport import file --path`).",
        },
        fields=(BodyField("file_id", ONE_ID, schedule_key="file_id"),),
        options=(
            Option(
                "--path",
                "file_id",
                "JSONL file to upload, then import.",
                resolver=Resolver.UPLOAD_FILE,
                help_in={_SEND: "JSONL file to upload first."},
            ),
            Option("--file-id", "file_id", "Id of a file already uploaded."),
        ),
    ),
    ImportKindSpec(
        name=ImportKind.PLAYGROUND,
        route="from-playground",
        operation="import_from_playground",
        about="Import playground conversations by id.",
        help={
            _IMPORT: "Import playground conversations.",
            _SEND: "Request an import of playground conversations.",
            _SCHEDULE: "Import playground conversations on every fire.",
        },
        fields=(BodyField("conversation_ids", ID_LIST, schedule_key="conversations"),),
        options=(
            Option(
                "--conversation",
                "conversation_ids",
                "Conversation id (repeatable).",
                help_in={_IMPORT: "Playground conversation id (repeatable)."},
            ),
        ),
    ),
    ImportKindSpec(
        name=ImportKind.DATASET,
        route="from-dataset",
        operation="import_from_dataset_records",
        about="Copy records of another dataset by id.",
        help={
            _IMPORT: "Copy records of another dataset (named one by one, or all of one dataset).",
            _SEND: "Request a copy of records of another dataset.",
            _SCHEDULE: "Copy the same dataset records on every fire.",
        },
        fields=(BodyField("dataset_record_ids", UUID_LIST, schedule_key="records"),),
        options=(
            Option("--record", "dataset_record_ids", "Dataset record id (repeatable)."),
            Option(
                "--from-dataset",
                "dataset_record_ids",
                "Take all records of this dataset.",
                resolver=Resolver.RECORDS_OF_DATASET,
                help_in={_SCHEDULE: "Not here: see dataset-copy."},
                schedule_refusal=ScheduleRefusal(
                    "from_dataset",
                    "to copy a whole dataset on a schedule, use kind dataset-copy: it copies each record once "
                    "(dsimport schedules add NAME --every 1h dataset-copy --dataset D --from-dataset S)",
                ),
            ),
        ),
    ),
    ImportKindSpec(
        name=ImportKind.SPANS,
        route="from-spans",
        operation="import_from_spans",
        about="Import telemetry spans, each made into a record by the mapping contract.",
        help={
            _IMPORT: "Import telemetry spans, each made into a record by the --map rules.",
            _SEND: "Request an import of telemetry spans.",
            _SCHEDULE: "Import the same telemetry spans on every fire.",
        },
        fields=(
            BodyField("span_references", SPAN_REFERENCES, schedule_key="spans"),
            BodyField("mapping_contract", MAPPING_CONTRACT, schedule_key="mapping"),
        ),
        options=(
            Option("--span", "span_references", "Span to import, as TRACE_ID:SPAN_ID (repeatable)."),
            Option(
                "--filter",
                "span_references",
                "Import the spans this search expression finds (as spans-window's --search), searched now; "
                "see --dry-run.",
                resolver=Resolver.SEARCH_SPANS,
                help_in={_SCHEDULE: "Not here: see spans-window."},
                schedule_refusal=ScheduleRefusal(
                    "filter",
                    "to import the spans a search finds on a schedule, use kind spans-window: it imports each span "
                    "once (dsimport schedules add NAME --every 1h spans-window --dataset D --search S --map M)",
                ),
            ),
            Option(
                "--map",
                "mapping_contract",
                "Record field taken from a span attribute, as TARGET=NAMESPACE:KEY with NAMESPACE span_attributes "
                "or resource_attributes (repeatable).",
            ),
        ),
    ),
)

IMPORT_KINDS: MappingProxyType[ImportKind, ImportKindSpec] = MappingProxyType(
    {ImportKind(entry.name): entry for entry in _ENTRIES}
)
"""Every import kind's entry, in the order the command groups and the message schema list them."""


# Three lists of one set of names: a kind added to one and not the others fails on import, not in production.
if not set(get_args(ImportKindName)) == set(ImportKind) == set(IMPORT_KINDS):
    raise RuntimeError("ImportKind, ImportKindName and IMPORT_KINDS must name the same import kinds")


def spec_of(kind: str) -> ImportKindSpec:
    """The entry of ``kind`` (an :class:`ImportKind` or its value); :class:`ValueError` for an unknown kind."""
    return IMPORT_KINDS[ImportKind(kind)]
