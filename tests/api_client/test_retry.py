"""Retries: which failures, how long to wait (Retry-After, backoff, caps), when to give up, never for imports."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from api_client import (
    ApiError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from api_client.retry import parse_retry_after

from . import samples as s
from .harness import answer, cut_off, raw

D = s.DATASET_ID


def fixed(value: float, **kwargs: Any) -> RetryPolicy:
    """A policy whose jitter always draws ``value``."""
    return RetryPolicy(random=lambda: value, **kwargs)


def server_error(status: int = 503, **headers: str) -> httpx.Response:
    return answer(status, {"detail": {"message": "busy", "error_code": None}}, headers=headers)


# Policy alone


def test_defaults_match_the_documented_policy() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_backoff_s, policy.max_backoff_s) == (4, 0.5, 30.0)
    assert (policy.multiplier, policy.max_elapsed_s) == (2.0, 60.0)
    assert policy.retry_statuses == frozenset({429, 500, 502, 503, 504})
    assert policy.retry_transport_errors is True
    assert policy.retry_imports is False
    assert RetryPolicy.none().max_attempts == 1


def test_full_jitter_draws_between_zero_and_the_exponential_cap() -> None:
    top = fixed(0.999999)
    assert [round(top.backoff_s(n), 3) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert fixed(0.0).backoff_s(3) == 0.0
    assert fixed(0.5).backoff_s(2) == 0.5


def test_equal_jitter_keeps_at_least_half_the_cap() -> None:
    assert fixed(0.0, jitter="equal").backoff_s(3) == 1.0
    assert fixed(1.0, jitter="equal").backoff_s(3) == 2.0


def test_backoff_is_capped_and_does_not_overflow() -> None:
    policy = fixed(1.0, max_backoff_s=30.0)
    assert policy.backoff_s(7) == 30.0
    assert policy.backoff_s(10_000) == 30.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_backoff_s": -1}, {"multiplier": 0.5}, {"max_elapsed_s": -1}, {"jitter": "x"}],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def _error(status: int | None = 503, retry_after_s: float | None = None) -> ApiError:
    return ApiError("x", status_code=status, retry_after_s=retry_after_s)


def test_next_delay_uses_retry_after_capped_by_max_backoff_and_remaining_budget() -> None:
    policy = fixed(1.0, max_backoff_s=10.0, max_elapsed_s=60.0)
    assert policy.next_delay_s(_error(retry_after_s=3), creates=False, attempts_made=1, elapsed_s=0) == 3
    assert policy.next_delay_s(_error(retry_after_s=300), creates=False, attempts_made=1, elapsed_s=0) == 10
    assert policy.next_delay_s(_error(retry_after_s=8), creates=False, attempts_made=1, elapsed_s=55) == 5
    assert policy.next_delay_s(_error(retry_after_s=8), creates=False, attempts_made=1, elapsed_s=60) is None


def test_next_delay_gives_up_on_attempts_statuses_and_creating_requests() -> None:
    policy = fixed(1.0)
    assert policy.next_delay_s(_error(), creates=False, attempts_made=4, elapsed_s=0) is None
    assert policy.next_delay_s(_error(404), creates=False, attempts_made=1, elapsed_s=0) is None
    assert policy.next_delay_s(_error(), creates=True, attempts_made=1, elapsed_s=0) is None
    assert fixed(1.0, retry_imports=True).next_delay_s(_error(), creates=True, attempts_made=1, elapsed_s=0) == 0.5


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2025, 10, 7, 20, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(datetime(2025, 10, 7, 20, 0, 30, tzinfo=UTC), usegmt=True), now=now) == 30
    assert parse_retry_after("Tue, 07 Oct 2025 19:00:00 GMT", now=now) == 0.0
    for bad in (None, "", "-5", "nan", "inf", "soon", "Mon, 99 Foo 2025"):
        assert parse_retry_after(bad) is None


# Through the clients


def test_a_503_then_success_is_retried_after_a_backoff(api: Any) -> None:
    harness = api(server_error(), server_error(502), answer(200, s.task()), retry=fixed(1.0))
    task = harness.call("fetch_task", D, s.TASK_ID)
    assert task.id == s.TASK_ID
    assert len(harness.wire.requests) == 3
    assert harness.time.sleeps == [0.5, 1.0]


def test_retry_after_seconds_is_honoured(api: Any) -> None:
    harness = api(server_error(429, **{"Retry-After": "7"}), answer(200, s.dataset()), retry=fixed(0.0))
    harness.call("fetch_dataset", D)
    assert harness.time.sleeps == [7.0]


def test_retry_after_http_date_is_honoured(api: Any) -> None:
    # A date far in the past means "now": no wait beyond zero, and no use of the jittered backoff.
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    harness = api(server_error(503, **{"Retry-After": past}), answer(200, s.dataset()), retry=fixed(1.0))
    harness.call("fetch_dataset", D)
    assert harness.time.sleeps == [0.0]


def test_retry_after_is_capped_by_max_backoff(api: Any) -> None:
    harness = api(
        server_error(429, **{"Retry-After": "3600"}), answer(200, s.dataset()), retry=fixed(1.0, max_backoff_s=20)
    )
    harness.call("fetch_dataset", D)
    assert harness.time.sleeps == [20.0]


def test_gives_up_after_max_attempts_with_the_last_error(api: Any) -> None:
    harness = api(server_error(503), retry=fixed(1.0, max_attempts=4))
    with pytest.raises(ServerError) as caught:
        harness.call("fetch_dataset", D)
    assert caught.value.status_code == 503
    assert len(harness.wire.requests) == 4
    assert harness.time.sleeps == [0.5, 1.0, 2.0]


def test_gives_up_when_the_elapsed_budget_is_spent(api: Any) -> None:
    policy = fixed(1.0, max_attempts=100, initial_backoff_s=2.0, max_elapsed_s=5.0)
    harness = api(server_error(503), retry=policy)
    with pytest.raises(ServerError):
        harness.call("fetch_dataset", D)
    # Waits 2 s, then only the 3 s left of the budget instead of 4 s, then stops.
    assert harness.time.sleeps == [2.0, 3.0]
    assert len(harness.wire.requests) == 3


def test_rate_limited_gives_up_with_rate_limited_error(api: Any) -> None:
    harness = api(server_error(429, **{"Retry-After": "1"}), retry=fixed(1.0, max_attempts=2))
    with pytest.raises(RateLimitedError) as caught:
        harness.call("list_tasks", D)
    assert caught.value.retry_after_s == 1.0
    assert len(harness.wire.requests) == 2


@pytest.mark.parametrize(
    ("call", "args", "reply_status", "reply"),
    [
        ("import_from_campaign", (D, s.CAMPAIGN_ID), 202, s.task()),
        ("import_from_explorer", (D, ["e"]), 202, s.task()),
        ("import_from_file", (D, "f"), 202, s.task()),
        ("import_from_playground", (D, ["c"]), 202, s.task()),
        ("import_from_dataset_records", (D, ["r"]), 202, s.task()),
        ("start_import", (D, "file", {"file_id": "f"}), 202, s.task()),
        ("upload_file", ("f.jsonl", b"x"), 200, s.file_object()),
        ("create_dataset", ("n", "d"), 201, s.dataset()),
        ("create_record", (D, {"messages": []}, {}), 201, s.record()),
    ],
)
def test_requests_that_start_or_create_something_are_not_retried_by_default(
    api: Any, call: str, args: tuple[Any, ...], reply_status: int, reply: Any
) -> None:
    for failure in (server_error(503), httpx.ReadTimeout("timed out"), server_error(429)):
        harness = api(failure, answer(reply_status, reply), retry=fixed(1.0))
        with pytest.raises(ApiError):
            harness.call(call, *args)
        assert len(harness.wire.requests) == 1
        assert harness.time.sleeps == []

    harness = api(server_error(503), answer(reply_status, reply), retry=fixed(1.0, retry_imports=True))
    harness.call(call, *args)
    assert len(harness.wire.requests) == 2


def test_a_read_only_post_is_retried(api: Any) -> None:
    harness = api(server_error(503), answer(200, {"completion_event_ids": ["e1"]}), retry=fixed(0.0))
    assert harness.call("search_event_ids", None) == ["e1"]
    assert len(harness.wire.requests) == 2


def test_transport_errors_are_retried_unless_disabled(api: Any) -> None:
    harness = api(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), answer(200, s.task()), retry=fixed(0.0))
    assert harness.call("fetch_task", D, s.TASK_ID).id == s.TASK_ID
    assert len(harness.wire.requests) == 3

    harness = api(httpx.ReadTimeout("slow"), answer(200, s.task()), retry=fixed(0.0, retry_transport_errors=False))
    with pytest.raises(TransportError):
        harness.call("fetch_task", D, s.TASK_ID)
    assert len(harness.wire.requests) == 1


def test_a_body_cut_off_mid_way_is_retried_like_a_transport_error(api: Any) -> None:
    harness = api(cut_off(), answer(200, s.task()), retry=fixed(0.0))
    assert harness.call("fetch_task", D, s.TASK_ID).id == s.TASK_ID
    assert len(harness.wire.requests) == 2


def test_refusals_and_broken_answers_are_not_retried(api: Any) -> None:
    for failure, error_class in (
        (answer(404, {"detail": {"message": "no", "error_code": "DATASET_NOT_FOUND"}}), NotFoundError),
        (raw(200, b"<html>", "text/html"), UnexpectedResponseError),
        (server_error(501), ServerError),
    ):
        harness = api(failure, answer(200, s.dataset()), retry=fixed(0.0))
        with pytest.raises(error_class):
            harness.call("fetch_dataset", D)
        assert len(harness.wire.requests) == 1


def test_no_retry_policy_makes_a_single_attempt(api: Any) -> None:
    harness = api(server_error(503), answer(200, s.dataset()), retry=RetryPolicy.none())
    with pytest.raises(ServerError):
        harness.call("fetch_dataset", D)
    assert len(harness.wire.requests) == 1
