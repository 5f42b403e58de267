"""What makes two records the same item: the keys ``--skip-existing`` compares, for a record and for an item.

Two kinds of key, one namespace:

- **payload keys** (``payload:<sha256>``), where we know the record's content before importing it: a JSONL file's
  lines, and the records copied from another dataset. The hash is of the payload in canonical JSON (keys sorted,
  no spaces, UTF-8), so the same content written with other spacing or key order is the same item.
- **origin keys** (``event:<id>``, ``conversation:<id>``, ``span:<trace>:<span>``), where the API builds the record
  from something it has (a completion event, a playground conversation, a telemetry span) and we only name it.

A record listed from the API yields its payload key and the origin keys its ``properties`` carry. [INFERENCE] The
reference page and the SDK models (2.5.0 and 3.7.0) type a record's ``properties`` as a free-form object and say
nothing of what an import writes there; the emulator writes ``event_id`` (explorer and campaign imports),
``conversation_id`` (playground) and ``trace_id``/``span_id`` (spans, where the 3.x API says the record keeps its
span reference). A record whose properties carry none of them is still known by its payload.

[INFERENCE] How the API reads a JSONL line into a payload is not in the contract either; we read it as the
emulator does (:func:`file_line_payload`): ``{"payload": {...}}`` is the payload itself, otherwise the line minus
its ``properties`` and ``source``.

Pure functions: no I/O, so the same keys come out of the worker, the preview and the tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_KEY_CHARS",
    "FileLine",
    "canonical_json",
    "file_line_payload",
    "origin_key",
    "payload_key",
    "read_jsonl_lines",
    "record_keys",
]

MAX_KEY_CHARS = 255
"""The ledger's column width; a longer origin key is stored as its hash (``origin:<sha256>``)."""

# The properties an API-built record names its origin by, and the key each gives.
_ORIGIN_PROPERTIES = (("event_id", "event"), ("conversation_id", "conversation"))


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 (so formatting never makes two items)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def payload_key(payload: Mapping[str, Any]) -> str:
    return "payload:" + hashlib.sha256(canonical_json(dict(payload))).hexdigest()


def _bounded(key: str) -> str:
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "origin:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def origin_key(kind: str, item: Any) -> str | None:
    """The origin key of one item of an import of ``kind`` (its item field's value), or None for kinds whose
    records we know by payload (file, dataset) or not at all (campaign: its events, listed first)."""
    if kind in ("explorer", "campaign"):
        return _bounded(f"event:{item}")
    if kind == "playground":
        return _bounded(f"conversation:{item}")
    if kind == "spans" and isinstance(item, Mapping):
        return _bounded(f"span:{item.get('trace_id')}:{item.get('span_id')}")
    return None


def record_keys(payload: Mapping[str, Any], properties: Mapping[str, Any]) -> list[str]:
    """Every key a record held by a dataset answers to: its payload key, then the origin keys of its properties."""
    keys = [payload_key(payload)]
    for prop, prefix in _ORIGIN_PROPERTIES:
        value = properties.get(prop)
        if isinstance(value, str) and value:
            keys.append(_bounded(f"{prefix}:{value}"))
    trace_id, span_id = properties.get("trace_id"), properties.get("span_id")
    if isinstance(trace_id, str) and isinstance(span_id, str) and trace_id and span_id:
        keys.append(_bounded(f"span:{trace_id}:{span_id}"))
    return keys


def file_line_payload(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The payload the API makes of one parsed JSONL line (see the module's [INFERENCE])."""
    inner = obj.get("payload")
    if isinstance(inner, Mapping):
        return dict(inner)
    return {key: value for key, value in obj.items() if key not in ("properties", "source")}


class FileLine:
    """One non-blank line of a JSONL file: its raw bytes and, when it parses to an object, its payload key."""

    __slots__ = ("key", "raw")

    def __init__(self, raw: bytes, key: str | None) -> None:
        self.raw = raw
        self.key = key


def read_jsonl_lines(content: bytes) -> list[FileLine]:
    """The non-blank lines of ``content``, each with its payload key (None for a line that is not a JSON object:
    such a line is kept as it is, and the import reports it the way it always does)."""
    lines: list[FileLine] = []
    for raw in content.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            lines.append(FileLine(raw, None))
            continue
        lines.append(FileLine(raw, payload_key(file_line_payload(obj)) if isinstance(obj, dict) else None))
    return lines
