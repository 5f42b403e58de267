"""The overall deadline on a blocking call: value and errors pass through, a late answer goes to ``on_late``."""

from __future__ import annotations

import threading
import time

import pytest

from api_client import ApiError, DeadlineExceededError, ServerError, TransportError, call_with_deadline


def test_a_call_that_ends_in_time_returns_its_value() -> None:
    assert call_with_deadline(lambda: 42, deadline_s=1.0, operation="op") == 42


def test_a_call_that_fails_in_time_raises_its_own_error() -> None:
    error = ServerError("boom", method="POST", url="u", status_code=502)

    def fail() -> None:
        raise error

    with pytest.raises(ServerError) as raised:
        call_with_deadline(fail, deadline_s=1.0, operation="op")
    assert raised.value is error


def test_a_call_past_its_deadline_is_abandoned_and_its_late_answer_reported() -> None:
    release = threading.Event()
    late: list[object] = []
    reported = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "late value"

    def on_late(value: object) -> None:
        late.append(value)
        reported.set()

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as raised:
        call_with_deadline(slow, deadline_s=0.2, operation="start_import explorer", on_late=on_late)
    assert time.monotonic() - started < 1.0
    # A deadline says nothing about whether the server acted: callers must treat it as "may have arrived".
    assert isinstance(raised.value, TransportError) and isinstance(raised.value, ApiError)
    assert raised.value.may_have_reached_server
    assert "start_import explorer" in str(raised.value) and "0.2 s" in str(raised.value)

    release.set()
    assert reported.wait(5)
    assert late == ["late value"]


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="deadline_s"):
        call_with_deadline(lambda: 1, deadline_s=0, operation="op")
