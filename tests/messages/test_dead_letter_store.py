"""The dead-letter table: raw bodies kept byte for byte, one row per entry, retries recorded; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.dead_letters import (
    MAX_REASON_CHARS,
    DeadLetterNotFoundError,
    count_dead_letters,
    decode_body,
    encode_body,
    get_dead_letter,
    list_dead_letters,
    mark_retried,
    record_dead_letter,
    require_dead_letter,
)
from store.errors import StoreError
from store.jobs import create_job
from store.models import ImportKind

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "is_base64"),
    [
        (b'{"id": "a"}', False),
        ("{\"id\": \"caf\u00e9 \u2603\"}".encode(), False),
        (b"", False),
        (b"\xff\xfe\x00garbage", True),
        (b'{"id": "a\x00"}', True),  # valid UTF-8, but PostgreSQL text cannot hold NUL
    ],
)
def test_bodies_are_kept_exactly(
    session_factory: sessionmaker[Session], raw: bytes, is_base64: bool
) -> None:
    assert encode_body(raw)[1] is is_base64
    with session_factory() as session:
        letter, created = record_dead_letter(
            session, stream="s", entry_id="1-0", body=raw, reason="bad", message_id=None, now=NOW
        )
        session.commit()
        letter_id = letter.id
    assert created
    with session_factory() as session:
        stored = require_dead_letter(session, letter_id)
        assert stored.body_base64 is is_base64
        assert decode_body(stored.body, stored.body_base64) == raw
        assert stored.body_size == len(raw)
        assert stored.received_at == NOW


def test_an_entry_is_recorded_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        first, created = record_dead_letter(
            session, stream="s", entry_id="1-0", body=b"x", reason="first", message_id=None, now=NOW
        )
        again, created_again = record_dead_letter(
            session, stream="s", entry_id="1-0", body=b"y", reason="second", message_id=None, now=NOW
        )
        other_stream, created_other = record_dead_letter(
            session, stream="t", entry_id="1-0", body=b"z", reason="other", message_id=None, now=NOW
        )
        session.commit()
    assert (created, created_again, created_other) == (True, False, True)
    assert again.id == first.id and again.reason == "first"
    assert other_stream.id != first.id


def test_the_same_entry_from_two_sessions_is_one_row(session_factory: sessionmaker[Session]) -> None:
    # Two consumers racing on one redelivered entry: the second insert loses on the unique key and reads the row.
    with session_factory() as first:
        record_dead_letter(first, stream="s", entry_id="9-0", body=b"x", reason="r", message_id=None, now=NOW)
        first.commit()
    with session_factory() as second:
        _, created = record_dead_letter(
            second, stream="s", entry_id="9-0", body=b"x", reason="r", message_id=None, now=NOW
        )
        second.commit()
    assert not created
    with session_factory() as session:
        assert count_dead_letters(session) == 1


def test_entries_without_an_id_are_all_kept(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        for _ in range(2):
            record_dead_letter(session, stream="task", entry_id=None, body=b"{}", reason="r", message_id=None, now=NOW)
        session.commit()
        assert count_dead_letters(session) == 2


def test_a_reason_is_one_bounded_line(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        letter, _ = record_dead_letter(
            session, stream="s", entry_id="1-0", body=b"", reason="a\nb\t c" + "x" * 5000, message_id=None, now=NOW
        )
        assert letter.reason.startswith("a b c")
        assert len(letter.reason) == MAX_REASON_CHARS
        assert letter.reason.endswith("...")


def test_listing_is_newest_first_and_can_leave_out_retried_ones(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        job, _ = create_job(
            session,
            kind=ImportKind.FILE,
            dataset_id="306b5f31-e31c-4e06-9220-e3008c61bf1b",
            params={"file_id": "f"},
            idempotency_key="message:m-2",
            origin="test",
            deadline_at=None,
            now=NOW,
        )
        ids = []
        for n in range(3):
            letter, _ = record_dead_letter(
                session,
                stream="s",
                entry_id=f"{n}-0",
                body=b"{}",
                reason=f"r{n}",
                message_id=f"m-{n}",
                now=NOW + timedelta(seconds=n),
            )
            ids.append(letter.id)
        mark_retried(session, require_dead_letter(session, ids[2]), job_id=job.id, now=NOW + timedelta(minutes=1))
        session.commit()
    with session_factory() as session:
        assert [letter.id for letter in list_dead_letters(session)] == ids[::-1]
        assert [letter.id for letter in list_dead_letters(session, include_retried=False)] == ids[1::-1]
        assert [letter.id for letter in list_dead_letters(session, limit=1)] == [ids[2]]
        assert [letter.id for letter in list_dead_letters(session, message_id="m-1")] == [ids[1]]
        assert count_dead_letters(session, include_retried=False) == 2
        retried = get_dead_letter(session, ids[2])
        assert retried is not None and retried.retried_job_id == job.id
        assert retried.retried_at == NOW + timedelta(minutes=1)
        assert "body" not in repr(retried)


def test_an_unknown_id_is_a_store_error(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert get_dead_letter(session, 12345) is None
        with pytest.raises(DeadLetterNotFoundError, match="dead letter 12345 not found") as caught:
            require_dead_letter(session, 12345)
    assert isinstance(caught.value, StoreError)


def test_text_no_column_can_hold_is_escaped(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        letter, _ = record_dead_letter(
            session,
            stream="s",
            entry_id="1-\x00",
            body=b"",
            reason="bad id 'a\ud800' with \x00",
            message_id="m\udc00\x00",
            now=NOW,
        )
        session.commit()
        letter_id = letter.id
    with session_factory() as session:
        stored = require_dead_letter(session, letter_id)
        assert stored.reason == "bad id 'a\\ud800' with \\x00"
        assert stored.message_id == "m\\udc00\\x00"
        assert stored.entry_id == "1-\\x00"
