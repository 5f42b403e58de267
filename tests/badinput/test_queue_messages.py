"""Queue messages beyond the corpus of tests/messages: each is dead-lettered with a reason and the consumer goes on.

tests/messages already sends its corpus (invalid JSON, NaN, duplicate keys, 5,000 nested arrays, an oversized body,
invalid UTF-8, wrong types, 1,001 ids, no body...) through ``process_entry`` (test_stream_processing) and through
real worker processes (test_stream_worker). What is added here: integers too long for Python to read, objects
nested deeply, nesting inside an otherwise valid message, a 5 MB body, one byte over the limit, non-finite numbers
that parse, UTF-8 lookalikes (overlong forms, encoded surrogates, UTF-16), keys holding NUL or a newline, a huge
``kind``, 100,000 ids, entries without a body under binary or 10,000 field names. They go through the consumer's
own loop (a thread, as in a worker) on Redis database 10 and both ledgers; a good message sent after them must
still become a job.
"""

# The extra corpus is a table: one entry per line reads better than lines folded at 120 characters.
# ruff: noqa: E501

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from store.dead_letters import MAX_REASON_CHARS, decode_body, list_dead_letters
from store.jobs import get_job_by_key
from tests.fixtures.streams import stream_config
from tests.messages.conftest import client  # noqa: F401 - fixture: a client of redis_url (database 10 here)
from tests.messages.corpus import DATASET, encode, good
from triggers.messages.intake import Intake, Outcome
from triggers.messages.message_model import MAX_IDS, InvalidMessage, parse_message
from triggers.messages.stream_consumer import StreamConfig, StreamConsumer, ensure_group, read_stats

MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Bad:
    name: str
    fields: dict[bytes, bytes]
    reason: str


def _body(name: str, body: bytes, reason: str) -> Bad:
    return Bad(name, {b"body": body}, reason)


def _message(name: str, message: Any, reason: str) -> Bad:
    return _body(name, json.dumps(message).encode(), reason)


def _nested_objects(depth: int, inner: str = "1") -> str:
    return '{"a": ' * depth + inner + "}" * depth


VALID = json.dumps(good())
DIGITS = "7" * 5000
BIG = b'{"id": "big", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'


def extra_corpus() -> list[Bad]:
    return [
        _body("integer of 5,000 digits", VALID.replace('"evt-1"', DIGITS).encode(), "invalid JSON: Exceeds the limit (4300 digits)"),
        _body("integer of 5,000 digits as the id", ('{"id": ' + DIGITS + "}").encode(), "invalid JSON: Exceeds the limit"),
        _body("negative integer of 5,000 digits", ('{"x": -' + DIGITS + "}").encode(), "invalid JSON: Exceeds the limit"),
        _body("objects nested 5,000 deep", _nested_objects(5000).encode(), "invalid JSON: nested too deeply"),
        _body("objects nested 5,000 deep, unclosed", ('{"a": ' * 5000).encode(), "invalid JSON"),
        _body("arrays nested 400 deep as a source id", VALID.replace('"evt-1"', "[" * 400 + "]" * 400).encode(), "completion_event_ids[0]: Input should be a valid string"),
        _body("objects nested 400 deep under an extra key", VALID[:-1].encode() + b', "extra": ' + _nested_objects(400).encode() + b"}", "extra: Extra inputs are not permitted"),
        _body("1e999 as the id", VALID.replace(json.dumps(json.loads(VALID)["id"]), "1e999").encode(), "schema: id: Input should be a valid string"),
        _body("-1e999 as a source id", VALID.replace('"evt-1"', "-1e999").encode(), "completion_event_ids[0]: Input should be a valid string"),
        _body("5 MB body", BIG, f"too large: {len(BIG)} bytes, the limit is {MAX_BYTES}"),
        _body("one byte over the limit", (VALID + " " * (MAX_BYTES - len(VALID) + 1)).encode(), f"too large: {MAX_BYTES + 1} bytes, the limit is {MAX_BYTES}"),
        _body("100,000 ids", encode(good(completion_event_ids=[f"e{n}" for n in range(100_000)])), "too large"),
        _message("1,001 one-letter ids within the size limit", good(completion_event_ids=["e"] * (MAX_IDS + 1)), "List should have at most 1000 items"),
        _body("overlong UTF-8 slash", VALID.replace("evt-1", "evt\u00001").encode().replace(b"\x00", b"\xc0\xaf"), "not UTF-8"),
        _body("UTF-8 encoded surrogate", VALID.encode().replace(b"evt-1", b"evt\xed\xa0\x80"), "not UTF-8"),
        _body("UTF-16 body", VALID.encode("utf-16"), "not UTF-8"),
        _body("UTF-32 body without BOM", VALID.encode("utf-32-le"), "invalid JSON"),
        _message("NUL in a key", good() | {"\u0000": 1}, 'schema: "\\u0000": Extra inputs are not permitted'),
        _message("newline in a key", good() | {"a\nb": 1}, 'schema: "a\\nb": Extra inputs are not permitted'),
        _message("NUL in the id", good(message_id="a\u0000b"), "schema: id: String should match pattern"),
        _message("NUL in a source id", good(completion_event_ids=["a\u0000b"]), "completion_event_ids[0]: String should match pattern"),
        _message("kind of 50,000 characters", good() | {"kind": "x" * 50_000}, 'unknown kind "xxxxxxxxx'),
        _message("kind an object", good() | {"kind": {"name": "explorer"}}, "unknown kind"),
        _message("kind a boolean", good() | {"kind": True}, "unknown kind true"),
        _message("dataset_id a list", good(dataset_id=[DATASET]), "schema: dataset_id: Input should be a valid string"),
        _message("id a float", good() | {"id": 4.2}, "schema: id: Input should be a valid string"),
        _message("id a list", good() | {"id": ["a"]}, "schema: id: Input should be a valid string"),
        _message("source ids a list of lists", good(completion_event_ids=[["evt-1"]]), "completion_event_ids[0]: Input should be a valid string"),
        _message("source ids an object", good(completion_event_ids={"0": "evt-1"}), "completion_event_ids: Input should be a valid list"),
        _message("record ids of every wrong type", good("dataset", dataset_record_ids=[1, None, True, "r", {}]), "(and 2 more)"),
        _message("every field wrong", {"id": None, "kind": "explorer", "dataset_id": 0, "completion_event_ids": 0, "x": 1}, "schema: id: Input should be a valid string"),
        Bad("binary field name, no body", {b"\xff\xfe": b"\x00\x01"}, "no body"),
        Bad("10,000 fields, no body", {f"f{n}".encode(): b"v" for n in range(10_000)}, "no body"),
    ]


@pytest.fixture
def config() -> StreamConfig:
    return stream_config("badinput", claim_interval_s=0.2)


@pytest.fixture
def sent() -> list[str]:
    return []


@pytest.fixture
def intake(session_factory: sessionmaker[Session], sent: list[str]) -> Intake:
    return Intake(session_factory=session_factory, send=sent.append, deadline_s=3600.0, max_bytes=MAX_BYTES)


@pytest.fixture
def consumer(redis_url: str, client: redis.Redis, config: StreamConfig, intake: Intake) -> Iterator[StreamConsumer]:  # noqa: F811
    ensure_group(client, config)
    consumer = StreamConsumer(lambda: redis.Redis.from_url(redis_url, protocol=2), intake, config)
    thread = threading.Thread(target=consumer.run, name="badinput-consumer", daemon=True)
    thread.start()
    assert consumer.ready.wait(10), "the consumer did not start"
    yield consumer
    consumer.stop()
    thread.join(10)
    assert not thread.is_alive(), "the consumer did not stop"


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_the_extra_corpus_is_refused_by_the_parser_alone() -> None:
    for entry in extra_corpus():
        if b"body" not in entry.fields:
            continue
        with pytest.raises(InvalidMessage) as caught:
            parse_message(entry.fields[b"body"], max_bytes=MAX_BYTES)
        assert entry.reason in caught.value.reason, entry.name


def test_each_extra_bad_entry_is_dead_lettered_and_the_consumer_goes_on(
    client: redis.Redis, config: StreamConfig, consumer: StreamConsumer, intake: Intake, sent: list[str]  # noqa: F811
) -> None:
    corpus = extra_corpus()
    entry_ids = [client.xadd(config.stream, entry.fields).decode() for entry in corpus]
    client.xadd(config.stream, {"body": encode(good(message_id="after-the-storm"))})

    wait_until(lambda: consumer.stats.processed == len(corpus) + 1)

    assert consumer.stats.errors == 0 and consumer.stats.reconnects == 0
    assert consumer.stats.dead_lettered == len(corpus) and consumer.stats.created == 1
    assert read_stats(client, config.stream)["dead_lettered"] == len(corpus)
    pending: Any = client.xpending(config.stream, config.group)
    assert pending["pending"] == 0
    assert client.xlen(config.dead_letter_stream) == len(corpus)
    with intake.session_factory() as session:
        letters = {letter.entry_id: letter for letter in list_dead_letters(session, limit=1000)}
        job = get_job_by_key(session, "message:after-the-storm")
    assert job is not None and sent == [job.id]
    for entry, entry_id in zip(corpus, entry_ids, strict=True):
        letter = letters[entry_id]
        assert entry.reason in letter.reason, f"{entry.name}: {letter.reason!r}"
        assert "\n" not in letter.reason and len(letter.reason) <= MAX_REASON_CHARS, entry.name
        kept = decode_body(letter.body, letter.body_base64)
        body = entry.fields.get(b"body")
        if body is not None:
            assert kept == body[:MAX_BYTES], entry.name
            assert letter.body_size == len(body), entry.name
        else:
            assert len(kept) <= MAX_BYTES, entry.name


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("nested 5,000 deep", "nested", "invalid JSON: nested too deeply"),
        ("integer of 5,000 digits", {"id": 10**4999}, "invalid JSON: Exceeds the limit (4300 digits)"),
        ("NaN", {"id": float("nan")}, "invalid JSON: Out of range float values are not JSON compliant"),
        ("a set", {"id": {1, 2}}, "invalid JSON: Object of type set is not JSON serializable"),
        ("bytes", {"id": b"\xff"}, "invalid JSON: Object of type bytes is not JSON serializable"),
        ("a lone surrogate", {**good(), "id": "a\ud800"}, "schema: id: Input should be a valid string"),
        ("a list", [good()], "not a JSON object: got an array"),
    ],
)
def test_the_request_task_dead_letters_what_json_cannot_carry(
    intake: Intake, name: str, payload: Any, reason: str
) -> None:
    # The Celery task (dsimport.request_import) hands its argument to accept_payload; a producer on the Python side
    # can pass values JSON has no spelling for.
    if payload == "nested":
        payload = []
        for _ in range(5000):
            payload = [payload]
        payload = {"id": payload}
    result = intake.accept_payload(payload, source="task:test", entry_id=None)
    assert result.outcome is Outcome.DEAD_LETTERED, name
    assert result.reason is not None and result.reason.startswith(reason), result.reason
    assert "\n" not in result.reason
