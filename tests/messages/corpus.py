"""Messages for the tests: good ones of every kind, a corpus of bad entries, and Hypothesis strategies of both."""

# The corpus is a table: one entry per line reads better than lines folded at 120 characters.
# ruff: noqa: E501

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from triggers.messages.message_model import MAX_ID_CHARS, MAX_IDS

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"
RECORD = "58fe798a-0000-4000-8000-000000000001"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
MAPPING = {"mappings": [{"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}], "version": 1}
KINDS = ("campaign", "explorer", "file", "playground", "dataset", "spans")
SOURCES: dict[str, dict[str, Any]] = {
    "campaign": {"campaign_id": CAMPAIGN},
    "explorer": {"completion_event_ids": ["evt-1", "evt-2"]},
    "file": {"file_id": "file-abc"},
    "playground": {"conversation_ids": ["conv_1"]},
    "dataset": {"dataset_record_ids": [RECORD]},
    "spans": {"span_references": [{"trace_id": TRACE, "span_id": SPAN}], "mapping_contract": MAPPING},
}
# The field that names what is imported (spans also send their mapping contract).
SOURCE_FIELDS = {kind: next(iter(source)) for kind, source in SOURCES.items()}


def good(kind: str = "explorer", message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid message of ``kind``; ``fields`` override or add keys (which may make it invalid)."""
    message: dict[str, Any] = {"id": message_id or f"msg-{uuid.uuid4()}", "kind": kind, "dataset_id": DATASET}
    message.update(SOURCES[kind])
    message.update(fields)
    return message


def without(message: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in keys}


def encode(message: Any) -> bytes:
    return json.dumps(message).encode("utf-8")


@dataclass(frozen=True)
class BadEntry:
    """A stream entry that must be dead-lettered, with a piece of the reason it must get."""

    name: str
    fields: dict[bytes, bytes]
    reason: str

    @property
    def body(self) -> bytes | None:
        return self.fields.get(b"body")


def _body(name: str, body: bytes, reason: str) -> BadEntry:
    return BadEntry(name, {b"body": body}, reason)


def _message(name: str, message: Any, reason: str) -> BadEntry:
    return _body(name, encode(message), reason)


def bad_corpus(max_bytes: int = 64 * 1024) -> list[BadEntry]:
    """Every kind of badness the intake must survive; each entry is bad for one reason."""
    valid = good()
    text = json.dumps(valid)
    return [
        _body("invalid json", b'{"id": "a", kind: explorer}', "invalid JSON"),
        _body("truncated json", text[:-7].encode(), "invalid JSON"),
        _body("empty body", b"", "invalid JSON"),
        _body("blank body", b" \n\t ", "invalid JSON"),
        _body("trailing garbage", text.encode() + b" }", "invalid JSON"),
        _body("two objects", text.encode() + text.encode(), "invalid JSON"),
        _body("utf-8 bom", b"\xef\xbb\xbf" + text.encode(), "invalid JSON"),
        _body("nul byte", text.encode().replace(b'"kind"', b'"ki\x00nd"'), "invalid JSON"),
        _body("nested too deeply", b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        _body("json array", b'[{"id": "a"}]', "not a JSON object: got an array"),
        _body("json number", b"42", "not a JSON object: got a number"),
        _body("json null", b"null", "not a JSON object: got null"),
        _body("json string", b'"explorer"', "not a JSON object: got a string"),
        _body("json boolean", b"true", "not a JSON object: got a boolean"),
        _body("double-encoded json", json.dumps(text).encode(), "not a JSON object: got a string"),
        _message("missing id", without(valid, "id"), "schema: id: Field required"),
        _message("missing kind", without(valid, "kind"), "schema: kind: field required"),
        _message("missing dataset_id", without(valid, "dataset_id"), "schema: dataset_id: Field required"),
        _message("missing source field", without(valid, "completion_event_ids"), "completion_event_ids: Field required"),
        _message("empty id", good(message_id="") | {"id": ""}, "schema: id: String should have at least 1"),
        _message("too long id", good(message_id="x" * (MAX_ID_CHARS + 1)), "schema: id: String should have at most"),
        _message("id with a space", good(message_id="order 42"), "schema: id: String should match pattern"),
        _message("id with a control character", good(message_id="order\u000742"), "schema: id: String should match"),
        _message("id not ascii", good(message_id="commande-n°42"), "schema: id: String should match pattern"),
        _message("id a number", good() | {"id": 42}, "schema: id: Input should be a valid string"),
        _message("id an object", good() | {"id": {"value": "a"}}, "schema: id: Input should be a valid string"),
        _message("unknown kind", good() | {"kind": "teleport"}, "unknown kind \"teleport\""),
        _message("kind in capitals", good() | {"kind": "EXPLORER"}, "unknown kind \"EXPLORER\""),
        _message("kind a number", good() | {"kind": 3}, "unknown kind 3"),
        _message("kind null", good() | {"kind": None}, "unknown kind null"),
        _message("kind a list", good() | {"kind": ["explorer"]}, "unknown kind"),
        _message("dataset_id neither uuid nor slug", good(dataset_id="Not A Slug"), "schema: dataset_id: Value error, 'Not A Slug' is not a dataset UUID or slug"),
        _message("dataset slug with a slash", good(dataset_id="a/b"), "is not a dataset UUID or slug"),
        _message("dataset slug too long", good(dataset_id="s" * 65), "is not a dataset UUID or slug"),
        _message("dataset_id a number", good(dataset_id=12), "schema: dataset_id: Input should be a valid string"),
        _message("empty dataset_id", good(dataset_id=""), "schema: dataset_id: Value error, '' is not a dataset UUID or slug"),
        _message(
            "field of another kind",
            without(good("explorer"), "completion_event_ids") | {"campaign_id": CAMPAIGN},
            "completion_event_ids: Field required",
        ),
        _message("both source fields", good("campaign", file_id="f-1"), "schema: file_id: Extra inputs are not permitted"),
        _message("extra key", good(priority=1), "schema: priority: Extra inputs are not permitted"),
        _message("empty id list", good(completion_event_ids=[]), "List should have at least 1 item"),
        _message("too many ids", good(completion_event_ids=[f"e{n}" for n in range(MAX_IDS + 1)]), "List should have at most"),
        _message("ids of the wrong type", good(completion_event_ids=[1, 2]), "completion_event_ids[0]: Input should be a valid string"),
        _message("ids a string not a list", good(completion_event_ids="evt-1"), "completion_event_ids: Input should be a valid list"),
        _message("ids null", good(completion_event_ids=None), "completion_event_ids: Input should be a valid list"),
        _message("ids booleans", good("playground", conversation_ids=[True]), "conversation_ids[0]: Input should be a valid string"),
        _message("empty string id in list", good(completion_event_ids=["evt-1", ""]), "completion_event_ids[1]: String should"),
        _message("blank-edged source id", good(completion_event_ids=[" evt-1"]), "completion_event_ids[0]: String should match"),
        _message("too long source id", good(completion_event_ids=["e" * 257]), "completion_event_ids[0]: String should have at most"),
        _message("nested object for a string", good(completion_event_ids=[{"id": "evt-1"}]), "completion_event_ids[0]: Input should be a valid string"),
        _message("object for campaign_id", good("campaign", campaign_id={"id": CAMPAIGN}), "campaign_id: UUID input should be"),
        _message("campaign_id not a uuid", good("campaign", campaign_id="weekly"), "campaign_id: Input should be a valid UUID"),
        _message("file_id a list", good("file", file_id=["f-1"]), "file_id: Input should be a valid string"),
        _message("record ids not uuids", good("dataset", dataset_record_ids=["r-1"]), "dataset_record_ids[0]: Input should be a valid UUID"),
        _message("spans without a mapping contract", without(good("spans"), "mapping_contract"), "schema: mapping_contract: Field required"),
        _message("span reference without span_id", good("spans", span_references=[{"trace_id": TRACE}]), "span_references[0].span_id: Field required"),
        _message("span reference as text", good("spans", span_references=[f"{TRACE}:{SPAN}"]), "span_references[0]: Input should be a valid dictionary"),
        _message("mapping from an unknown namespace", good("spans", mapping_contract={"mappings": [{"target_field": "input", "source_field": {"namespace": "attributes", "key": "k"}}]}), "mapping_contract.mappings[0].source_field.namespace: Input should be"),
        _message("mapping contract version 2", good("spans", mapping_contract=MAPPING | {"version": 2}), "mapping_contract.version: Input should be 1"),
        _message("mapping contract without mappings", good("spans", mapping_contract={"mappings": [], "version": 1}), "mapping_contract.mappings: List should have at least 1 item"),
        _body("lone surrogate", text.replace("evt-1", "\\ud800").encode(), "completion_event_ids[0]: Input should be a valid string"),
        _body("NaN", text[:-1].encode() + b', "x": NaN}', "invalid JSON: NaN is not a JSON number"),
        _body("Infinity", text.replace('"evt-1"', "Infinity").encode(), "invalid JSON: Infinity is not a JSON number"),
        _body("-Infinity", b'{"id": -Infinity}', "invalid JSON: -Infinity is not a JSON number"),
        _body("duplicate key", b'{"id": "a", ' + text[1:].encode(), "invalid JSON: duplicate key 'id'"),
        _body("oversized body", encode(good(completion_event_ids=["e" * 200] * 400)) + b" " * max_bytes, "too large"),
        _body("invalid utf-8", b"\xff\xfe" + text.encode(), "not UTF-8"),
        _body("latin-1 text", text.replace("evt-1", "\u00e9vt").encode("latin-1"), "not UTF-8"),
        _body("truncated utf-8 sequence", text.encode()[:-2] + b"\xe2\x82", "not UTF-8"),
        BadEntry("missing body field", {b"data": text.encode()}, "no body"),
        BadEntry("body under another name", {b"Body": text.encode()}, "no body"),
        BadEntry("payload field", {b"payload": text.encode(), b"type": b"import"}, "no body"),
    ]


# --- Hypothesis ------------------------------------------------------------------------------------------------

message_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=MAX_ID_CHARS)
source_ids = st.text(
    alphabet=st.characters(categories=("L", "N"), include_characters="-_.:"), min_size=1, max_size=64
)
uuids = st.uuids().map(str)


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    source: Any
    if kind == "campaign":
        source = draw(uuids)
    elif kind == "file":
        source = draw(source_ids)
    elif kind == "dataset":
        source = draw(st.lists(uuids, min_size=1, max_size=20))
    elif kind == "spans":
        references = st.fixed_dictionaries({"trace_id": source_ids, "span_id": source_ids})
        source = draw(st.lists(references, min_size=1, max_size=20))
    else:
        source = draw(st.lists(source_ids, min_size=1, max_size=20))
    message = {"id": draw(message_ids), "kind": kind, "dataset_id": draw(uuids), SOURCE_FIELDS[kind]: source}
    if kind == "spans":
        mapping = st.fixed_dictionaries(
            {
                "target_field": st.text(min_size=1, max_size=20),
                "source_field": st.fixed_dictionaries(
                    {"namespace": st.sampled_from(["span_attributes", "resource_attributes"]),
                     "key": st.text(min_size=1, max_size=20)}
                ),
            }
        )  # fmt: skip
        message["mapping_contract"] = {"mappings": draw(st.lists(mapping, min_size=1, max_size=3)), "version": 1}
    return message


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
wrong_values = st.one_of(
    json_scalars,
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    st.lists(json_scalars, min_size=1, max_size=3),
)


@st.composite
def invalid_bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are certainly not a valid request: a valid message broken in one way, or noise."""
    message = draw(valid_messages())
    source_field = SOURCE_FIELDS[message["kind"]]
    how = draw(
        st.sampled_from(
            ["drop", "extra", "wrong type", "kind", "truncate", "empty list", "noise", "not object", "bad id"]
        )
    )
    if how == "drop":
        key = draw(st.sampled_from(["id", "kind", "dataset_id", source_field]))
        return encode(without(message, key))
    if how == "extra":
        key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in message))
        return encode(message | {key: draw(wrong_values)})
    if how == "wrong type":
        key = draw(st.sampled_from(["id", "dataset_id", source_field]))
        return encode(message | {key: draw(wrong_values)})
    if how == "kind":
        kind = draw(st.one_of(st.text(max_size=12), json_scalars).filter(lambda k: k not in KINDS))
        return encode(message | {"kind": kind})
    if how == "truncate":
        text = encode(message)
        return text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    if how == "empty list" and isinstance(message[source_field], list):
        return encode(message | {source_field: []})
    if how == "not object":
        not_object = st.one_of(json_scalars, st.lists(json_scalars, max_size=3), st.just(json.dumps(message)))
        return encode(draw(not_object))
    if how == "bad id":
        too_long = st.text(min_size=MAX_ID_CHARS + 1, max_size=MAX_ID_CHARS + 5)
        bad_id = draw(st.one_of(st.just(""), too_long, st.just("a b")))
        return encode(message | {"id": bad_id})
    noise = draw(st.binary(min_size=0, max_size=64))
    # Noise that happens to be a JSON object could in theory be valid; none of 64 random bytes is, but be sure.
    return b"\xff" + noise
