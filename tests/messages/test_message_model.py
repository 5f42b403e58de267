"""The request model and its parser: every kind parses, every kind of bad input is refused with a clear reason."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.request_import import InvalidImportRequest, validate_params
from triggers.messages.message_model import (
    CampaignRequest,
    DatasetRequest,
    ExplorerRequest,
    InvalidMessage,
    idempotency_key,
    parse_message,
    parse_payload,
)

from .corpus import DATASET, KINDS, SOURCES, BadEntry, bad_corpus, encode, good, invalid_bodies, valid_messages

CORPUS = bad_corpus()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_into_the_params_the_ledger_stores(kind: str) -> None:
    request = parse_message(encode(good(kind, message_id="order-42")))
    assert request.kind == kind
    assert request.id == "order-42"
    assert str(request.dataset_id) == DATASET
    assert request.params() == SOURCES[kind]
    # What the model accepts, the ledger's own check accepts too.
    assert validate_params(request.kind, request.params()) == SOURCES[kind]  # type: ignore[arg-type]


def test_uuids_are_normalised() -> None:
    request = parse_message(
        encode(good("dataset", dataset_id=DATASET.upper(), dataset_record_ids=[uuid.UUID(DATASET).hex]))
    )
    assert isinstance(request, DatasetRequest)
    assert str(request.dataset_id) == DATASET
    assert request.params() == {"dataset_record_ids": [DATASET]}


@pytest.mark.parametrize("dataset", ["my-dataset", "eval_set_2"])
def test_a_dataset_slug_is_taken_as_given(dataset: str) -> None:
    request = parse_message(encode(good("file", dataset_id=dataset)))
    assert request.dataset_id == dataset


def test_the_idempotency_key_is_the_message_id() -> None:
    assert idempotency_key("order-42") == "message:order-42"
    assert len(idempotency_key("x" * 200)) <= 255


def test_the_model_is_a_discriminated_union_on_kind() -> None:
    assert isinstance(parse_payload(good("campaign")), CampaignRequest)
    assert isinstance(parse_payload(good("explorer")), ExplorerRequest)


def test_the_corpus_has_at_least_30_kinds_of_badness() -> None:
    assert len({entry.name for entry in CORPUS}) == len(CORPUS) >= 30


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_each_bad_message_is_refused_with_its_reason(entry: BadEntry) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(entry.body)
    assert entry.reason in caught.value.reason
    assert "\n" not in caught.value.reason
    assert isinstance(caught.value, InvalidImportRequest)


def test_the_size_limit_is_a_parameter() -> None:
    body = encode(good())
    parse_message(body, max_bytes=len(body))
    with pytest.raises(InvalidMessage, match=rf"too large: {len(body)} bytes, the limit is {len(body) - 1}"):
        parse_message(body, max_bytes=len(body) - 1)


def test_a_schema_error_keeps_the_message_id_for_the_dead_letter() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(encode(good(message_id="order-7", completion_event_ids=[])))
    assert caught.value.message_id == "order-7"


def test_many_errors_are_summarised_on_one_line() -> None:
    message = good(completion_event_ids=[1, 2, 3, 4, 5])
    with pytest.raises(InvalidMessage) as caught:
        parse_message(encode(message))
    assert caught.value.reason.endswith("(and 2 more)")


def test_the_model_is_frozen_and_its_repr_is_plain() -> None:
    request = parse_payload(good(message_id="m-1"))
    with pytest.raises(ValueError):
        request.id = "other"  # type: ignore[misc]
    assert "m-1" in repr(request)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages())
def test_generated_valid_messages_parse_and_round_trip(message: dict[str, Any]) -> None:
    request = parse_message(encode(message))
    assert request.id == message["id"]
    assert request.kind == message["kind"]
    assert request.params() == {name: message[name] for name in request.params()}
    assert set(request.params()) == set(message) - {"id", "kind", "dataset_id"}
    assert parse_message(request.model_dump_json().encode()) == request


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invalid_bodies())
def test_generated_invalid_bodies_are_always_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(body)
    assert caught.value.reason
    assert "\n" not in caught.value.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_invalid_message(body: bytes) -> None:
    try:
        parse_message(body)
    except InvalidMessage:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_values_never_raise_anything_but_invalid_message(value: Any) -> None:
    try:
        body = json.dumps(value).encode()
    except ValueError:
        return
    try:
        parse_message(body)
    except InvalidMessage:
        pass


def test_an_unexpected_key_shows_up_printable() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(encode(good() | {"bad\nkey\u0007": 1}))
    assert caught.value.reason == 'schema: "bad\\nkey\\u0007": Extra inputs are not permitted'
