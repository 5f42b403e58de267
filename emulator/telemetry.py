"""Telemetry spans: their wire shape (``GetSpan``), fixture traces, and the v1 mapping of a span to a record.

A trace is the spans that share a ``trace_id``. Span attribute values are strings on the wire
(``Dict[str, str]``), as OpenTelemetry exporters flatten them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import iso
from .errors import validation_error
from .models import PlannedRecord, Span
from .world import OWNER_ID, WORKSPACE_ID

__all__ = [
    "SPAN_NAMESPACES",
    "Mapping1",
    "SpanReference",
    "normalise_trace",
    "parse_mapping_contract",
    "parse_span_references",
    "span_origin",
    "span_record",
]

JsonObject = dict[str, Any]

SPAN_NAMESPACES = ("span_attributes", "resource_attributes")
MAPPING_CONTRACT_VERSION = 1

# Every required key of GetSpan with the value a span gets when its fixture leaves it out.
_SPAN_DEFAULTS: JsonObject = {
    "customer_id": "",
    "organization_id": "emulator-organization",
    "workspace_id": WORKSPACE_ID,
    "user_id": OWNER_ID,
    "parent_span_id": "",
    "trace_state": "",
    "span_name": "span",
    "span_kind": "INTERNAL",
    "service_name": "emulator-service",
    "status_code": "Unset",
    "status_message": "",
    "error_type": "",
    "operation_name": "",
    "provider_name": "",
    "request_model": "",
    "response_model": "",
    "response_id": "",
    "output_type": "",
    "conversation_id": "",
    "data_source_id": "",
    "agent_id": "",
    "agent_name": "",
    "agent_version": "",
    "agent_description": "",
    "workflow_name": "",
    "prompt_name": "",
    "tool_name": "",
    "tool_type": "",
    "tool_call_id": "",
    "input_messages": "",
    "output_messages": "",
    "system_instructions": "",
    "tool_definitions": "",
    "tool_call_arguments": "",
    "tool_call_result": "",
    "request_choice_count": 0,
    "request_max_tokens": 0,
    "request_temperature": None,
    "request_top_p": None,
    "request_top_k": None,
    "request_presence_penalty": None,
    "request_frequency_penalty": None,
    "request_seed": 0,
    "request_stop_sequences": [],
    "request_encoding_formats": [],
    "response_finish_reasons": [],
    "usage_input_tokens": 0,
    "usage_output_tokens": 0,
    "usage_cache_read_input_tokens": 0,
    "usage_cache_creation_input_tokens": 0,
    "resource_attributes": {},
    "span_attributes": {},
    "scope_name": "emulator",
    "scope_version": "1.0.0",
    "service_account_id": "",
}
# GetSpan keys a fixture trace passes down to each of its spans (a span's own value wins).
_TRACE_LEVEL = (
    "customer_id", "organization_id", "workspace_id", "user_id", "service_name", "conversation_id", "agent_id",
    "agent_name", "agent_version", "workflow_name", "resource_attributes", "scope_name", "scope_version",
)  # fmt: skip
SPAN_FIELDS = frozenset(_SPAN_DEFAULTS) | {"trace_id", "span_id", "start_time", "end_time", "duration_ns"}


def normalise_trace(raw: Mapping[str, Any], start_ts: float) -> list[Span]:
    """The spans of a fixture trace: ``{"trace_id", "spans": [{"span_id", "offset_ms"?, "duration_ms"?, ...}]}``.

    Each span starts ``offset_ms`` after the trace's start; any GetSpan key may be given on the span (or, for
    the keys of ``_TRACE_LEVEL``, on the trace).
    """
    trace_id = str(raw["trace_id"])
    spans = raw["spans"]
    if not isinstance(spans, list) or not spans:
        raise ValueError(f"trace {trace_id}: spans must be a non-empty list")
    inherited = {key: raw[key] for key in _TRACE_LEVEL if key in raw}
    result: list[Span] = []
    for item in spans:
        if not isinstance(item, Mapping):
            raise ValueError(f"trace {trace_id}: each span must be an object")
        unknown = set(item) - SPAN_FIELDS - {"offset_ms", "duration_ms"}
        if unknown:
            raise ValueError(f"trace {trace_id}: unknown span keys {sorted(unknown)}")
        span_start = start_ts + float(item.get("offset_ms", 0)) / 1000.0
        duration_ns = int(item.get("duration_ns", float(item.get("duration_ms", 100)) * 1_000_000))
        data: JsonObject = {"trace_id": trace_id, "span_id": str(item["span_id"])}
        data.update({key: _copy(value) for key, value in _SPAN_DEFAULTS.items()})
        data.update({key: _copy(value) for key, value in inherited.items()})
        data.update({key: _copy(value) for key, value in item.items() if key in SPAN_FIELDS})
        data["start_time"] = iso(span_start)
        data["end_time"] = iso(span_start + duration_ns / 1e9)
        data["duration_ns"] = duration_ns
        for namespace in SPAN_NAMESPACES:
            attributes = data[namespace]
            if not isinstance(attributes, dict):
                raise ValueError(f"span {data['span_id']}: {namespace} must be an object")
            # The wire type is Dict[str, str]: structured values travel as JSON text.
            data[namespace] = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in attributes.items()}
        result.append(Span(data=data, start_ts=span_start))
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# Import from spans -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpanReference:
    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class Mapping1:
    """One rule of a version 1 mapping contract: payload[target_field] <- span[namespace][key]."""

    target_field: str
    namespace: str
    key: str


def parse_span_references(body: Mapping[str, Any]) -> list[SpanReference]:
    value = body.get("span_references")
    if not isinstance(value, list):
        raise validation_error("body.span_references: Field required (a list of {trace_id, span_id})")
    references: list[SpanReference] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise validation_error(f"body.span_references.{index}: Input should be an object")
        trace_id, span_id = item.get("trace_id"), item.get("span_id")
        if not isinstance(trace_id, str) or not isinstance(span_id, str):
            raise validation_error(f"body.span_references.{index}: trace_id and span_id are required strings")
        references.append(SpanReference(trace_id, span_id))
    return references


def parse_mapping_contract(body: Mapping[str, Any]) -> list[Mapping1]:
    contract = body.get("mapping_contract")
    if not isinstance(contract, Mapping):
        raise validation_error("body.mapping_contract: Field required (an object)")
    version = contract.get("version", MAPPING_CONTRACT_VERSION)
    if version != MAPPING_CONTRACT_VERSION or isinstance(version, bool):
        raise validation_error(f"body.mapping_contract.version: Input should be {MAPPING_CONTRACT_VERSION}")
    mappings = contract.get("mappings")
    if not isinstance(mappings, list):
        raise validation_error("body.mapping_contract.mappings: Field required (a list)")
    rules: list[Mapping1] = []
    targets: set[str] = set()
    for index, item in enumerate(mappings):
        where = f"body.mapping_contract.mappings.{index}"
        if not isinstance(item, Mapping):
            raise validation_error(f"{where}: Input should be an object")
        target, source = item.get("target_field"), item.get("source_field")
        if not isinstance(target, str) or not target.strip():
            raise validation_error(f"{where}.target_field: Input should be a non-empty string")
        if target in targets:
            raise validation_error(f"{where}.target_field: {target!r} is mapped twice")
        if not isinstance(source, Mapping):
            raise validation_error(f"{where}.source_field: Field required (an object)")
        namespace, key = source.get("namespace"), source.get("key")
        if namespace not in SPAN_NAMESPACES:
            raise validation_error(f"{where}.source_field.namespace: Input should be 'span_attributes' or "
                                   "'resource_attributes'")  # fmt: skip
        if not isinstance(key, str) or not key:
            raise validation_error(f"{where}.source_field.key: Input should be a non-empty string")
        targets.add(target)
        rules.append(Mapping1(target, str(namespace), key))
    return rules


def span_origin(trace_id: str, span_id: str) -> str:
    return f"span:{trace_id}:{span_id}"


def span_record(span: Span, rules: list[Mapping1]) -> PlannedRecord:
    """The record a span becomes: the mapped payload, the span's ids as properties, source TELEMETRY_SPAN."""
    payload: JsonObject = {}
    for rule in rules:
        attributes = span.data.get(rule.namespace) or {}
        present, value = _mapped_value(attributes.get(rule.key))
        if present:
            payload[rule.target_field] = value
    return PlannedRecord(
        payload=payload,
        properties={"trace_id": span.trace_id, "span_id": span.span_id},
        source="TELEMETRY_SPAN",
        origin=span_origin(span.trace_id, span.span_id),
    )


def _mapped_value(raw: object) -> tuple[bool, Any]:
    """Version 1 rules: missing, null, blank or empty-array sources omit the key; JSON object and array text
    becomes structured; anything else (scalar-looking or malformed JSON included) stays the string it was."""
    if raw is None:
        return False, None
    if not isinstance(raw, str):
        return True, raw
    text = raw.strip()
    if not text:
        return False, None
    if text[0] in "[{":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return True, raw
        if isinstance(parsed, list) and not parsed:
            return False, None
        if isinstance(parsed, dict | list):
            return True, parsed
    return True, raw
