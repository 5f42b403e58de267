"""Records as 3.x has them: free-form payloads, open sources, the operations on one record by its own id."""

from __future__ import annotations

from typing import Any

import pytest

from api_client import (
    ConversationPayload,
    DatasetRecord,
    InvalidRequestError,
    JudgeDefinition,
    JudgeOutput,
    NotFoundError,
    RecordSources,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
)
from api_client.record_operations import judge_record

from . import samples as s
from .harness import answer

D = s.DATASET_ID
R = s.RECORD_ID
# What a record made from a span looks like: no messages, whatever the span mapping produced.
SPAN_PAYLOAD = {"input": {"question": "2+2?"}, "output": "4", "attributes": {"gen_ai.request.model": "m"}}


def test_a_listed_dataset_with_span_records_parses_next_to_conversation_records(api: Any) -> None:
    # The failure this fixes: one record without messages made the whole page unreadable.
    page = {
        "records": s.page(
            [
                s.record(),
                s.record(id="r-span", payload=SPAN_PAYLOAD, source="TELEMETRY_SPAN"),
                s.record(id="r-future", payload={}, source="SOME_FUTURE_SOURCE"),
            ]
        )
    }
    records = api(answer(200, page)).call("list_records", D).results

    assert [type(record.payload) for record in records] == [ConversationPayload, dict, dict]
    conversation, span, future = records
    assert isinstance(conversation.payload, ConversationPayload)
    assert conversation.payload.messages[0] == {"role": "user", "content": "hi"}
    assert span.payload == SPAN_PAYLOAD and span.source == RecordSources.TELEMETRY_SPAN
    # An unknown source is kept as it came, not refused (an open enum, like the SDK's UnrecognizedStr).
    assert future.source == "SOME_FUTURE_SOURCE"


def test_a_payload_whose_messages_are_not_objects_is_kept_as_sent() -> None:
    # The seed sample the 2.5.0 SDK refused: 3.x takes any object, so nothing may be lost or reshaped.
    record = DatasetRecord.model_validate(s.record(payload={"messages": [[None]], "k": 1}))
    assert record.payload == {"messages": [[None]], "k": 1}


def test_payload_dict_is_the_json_object_whatever_the_shape() -> None:
    typed = DatasetRecord.model_validate(s.record(payload={"messages": [{"role": "user"}], "meta": {"a": 1}}))
    free = DatasetRecord.model_validate(s.record(payload=SPAN_PAYLOAD))
    assert typed.payload_dict() == {"messages": [{"role": "user"}], "meta": {"a": 1}}
    assert free.payload_dict() == SPAN_PAYLOAD
    assert free.payload_dict() is not free.payload


def test_create_record_sends_any_object_and_omits_what_was_not_given(api: Any) -> None:
    harness = api(answer(201, s.record(payload=SPAN_PAYLOAD)))
    record = harness.call("create_record", D, SPAN_PAYLOAD)
    assert harness.wire.json_body() == {"payload": SPAN_PAYLOAD}
    assert record.payload == SPAN_PAYLOAD


@pytest.mark.parametrize("source", ["EXPLORER", "direct_input", ""])
def test_create_record_refuses_a_source_a_caller_may_not_declare(api: Any, source: str) -> None:
    harness = api(answer(201, s.record()))
    with pytest.raises(InvalidRequestError, match="source must be one of"):
        harness.call("create_record", D, {}, {}, source=source)
    assert harness.wire.requests == []


def test_fetch_record_reads_a_free_form_record(api: Any) -> None:
    harness = api(answer(200, s.record(payload=SPAN_PAYLOAD, source="TELEMETRY_SPAN")))
    record = harness.call("fetch_record", R)
    assert isinstance(record, DatasetRecord) and record.payload == SPAN_PAYLOAD


def test_a_missing_record_is_not_found_with_its_code(api: Any) -> None:
    body = {"detail": {"message": "Dataset record not found", "error_code": "DATASET_RECORD_NOT_FOUND"}}
    with pytest.raises(NotFoundError) as caught:
        api(answer(404, body)).call("delete_record", R)
    assert caught.value.error_code == "DATASET_RECORD_NOT_FOUND"


@pytest.mark.parametrize("call", ["delete_record", "update_record_payload", "update_record_properties"])
def test_the_changes_expect_204_and_refuse_a_200(api: Any, call: str) -> None:
    # The SDK maps any other success status to "Unexpected response received".
    args: tuple[Any, ...] = (R,) if call == "delete_record" else (R, {"k": "v"})
    with pytest.raises(UnexpectedResponseError) as caught:
        api(answer(200, {})).call(call, *args)
    assert caught.value.reason == "status"


def test_bulk_delete_takes_any_iterable_of_ids(api: Any) -> None:
    harness = api(answer(204))
    assert harness.call("bulk_delete_records", (f"r{n}" for n in range(3))) is None
    assert harness.wire.json_body() == {"dataset_record_ids": ["r0", "r1", "r2"]}


def test_judging_sends_the_definition_in_the_sdk_order_and_reads_the_verdict(api: Any) -> None:
    harness = api(answer(200, {"analysis": "polite throughout", "answer": 0.75, "extra": True}))
    definition = JudgeDefinition.model_validate(
        {**s.JUDGE, "output": {"type": "REGRESSION", "min_description": "rude", "max_description": "polite"}}
    )
    verdict = harness.call("judge_record", R, definition)
    assert isinstance(verdict, JudgeOutput) and verdict.answer == 0.75
    output = harness.wire.json_body()["judge_definition"]["output"]
    # Defaults are sent, as the SDK sends them: 0 and 1.
    assert list(output.items()) == [
        ("min_description", "rude"),
        ("max_description", "polite"),
        ("type", "REGRESSION"),
        ("min", 0.0),
        ("max", 1.0),
    ]


def test_judging_keeps_a_class_answer_a_string(api: Any) -> None:
    verdict = api(answer(200, {"analysis": "a", "answer": "3"})).call("judge_record", R, s.JUDGE)
    assert verdict.answer == "3"


def test_judging_is_not_retried_by_default_but_reading_a_record_is(api: Any) -> None:
    # A judging request runs a model each time it is sent; a read is free to repeat.
    harness = api(answer(503, {}), answer(200, {"analysis": "a", "answer": "x"}), retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ServerError):
        harness.call("judge_record", R, s.JUDGE)
    assert len(harness.wire.requests) == 1

    harness = api(answer(503, {}), answer(200, s.record()), retry=RetryPolicy(max_attempts=2))
    assert harness.call("fetch_record", R).id == R
    assert len(harness.wire.requests) == 2


def test_a_judge_definition_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="judge_definition"):
        judge_record(R, {**s.JUDGE, "temperature": 0.2})
