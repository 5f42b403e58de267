"""Requesting imports and reading jobs over HTTP: the queue message's validation, idempotency by header or id, the
list with its filters and cursor paging, one job with its history, cancelling."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from store.dead_letters import count_dead_letters

from .conftest import Tokens, bearer

DATASET = "2b3c4d5e-6f70-4811-9a2b-3c4d5e6f7081"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"


def campaign(**extra: Any) -> dict[str, Any]:
    return {"kind": "campaign", "dataset_id": DATASET, "campaign_id": CAMPAIGN, **extra}


def post_import(http: httpx.Client, tokens: Tokens, body: Any, key: str | None = None) -> httpx.Response:
    headers = bearer(tokens.write) | ({"Idempotency-Key": key} if key is not None else {})
    return http.post("/api/v1/imports", json=body, headers=headers)


def _message(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    message: str = answer.json()["error"]["message"]
    return message


def test_an_import_is_written_once_per_key_by_header_or_id(
    http: httpx.Client, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    first = post_import(http, tokens, campaign(), key="order-42")
    assert first.status_code == 202, first.text
    job = first.json()["job"]
    assert first.json()["created"] is True
    assert job["status"] == "PENDING" and job["kind"] == "campaign" and job["dataset_id"] == DATASET
    assert job["params"] == {"campaign_id": CAMPAIGN}
    # The key is the queue message's: the same id sent to the stream is the same import.
    assert job["idempotency_key"] == "message:order-42" and job["origin"] == "api:writer"
    assert first.headers["Location"] == f"/api/v1/jobs/{job['id']}"

    again = post_import(http, tokens, campaign(), key="order-42")
    assert again.status_code == 200 and again.json() == {"created": False, "job": job}
    by_id = post_import(http, tokens, campaign(id="order-42"))
    assert by_id.status_code == 200 and by_id.json()["job"]["id"] == job["id"]
    both = post_import(http, tokens, campaign(id="order-42"), key="order-42")
    assert both.status_code == 200 and both.json()["job"]["id"] == job["id"]

    other = post_import(http, tokens, campaign(id="order-43"))
    assert other.status_code == 202 and other.json()["job"]["id"] != job["id"]

    # The same key for another request: which one was meant is a guess, so neither is started.
    conflict = post_import(http, tokens, campaign(campaign_id=str(uuid.uuid4())), key="order-42")
    assert "different request" in _message(conflict, 409)
    assert conflict.json()["error"]["details"] == [{"job_id": job["id"]}]
    elsewhere = post_import(http, tokens, campaign(id="order-42", dataset_id="another-dataset"))
    assert _message(elsewhere, 409)

    listed = http.get("/api/v1/jobs", headers=bearer(tokens.read)).json()["jobs"]
    assert sorted(j["idempotency_key"] for j in listed) == ["message:order-42", "message:order-43"]
    with session_factory() as session:
        assert count_dead_letters(session, include_retried=True) == 0


def test_an_invalid_request_is_answered_422_and_kept_nowhere(
    http: httpx.Client, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    assert "Idempotency-Key" in _message(post_import(http, tokens, campaign()), 422)
    assert "differ" in _message(post_import(http, tokens, campaign(id="a"), key="b"), 422)
    assert "Idempotency-Key" in _message(post_import(http, tokens, campaign(), key="has space"), 422)
    assert "unknown kind" in _message(post_import(http, tokens, campaign(id="x", kind="nope")), 422)
    assert "campaign_id" in _message(post_import(http, tokens, campaign(id="x", campaign_id="not-a-uuid")), 422)
    assert "Extra inputs" in _message(post_import(http, tokens, campaign(id="x", extra=1)), 422)
    assert "not a JSON object" in _message(post_import(http, tokens, ["a list"], key="x"), 422)
    headers = bearer(tokens.write) | {"Idempotency-Key": "x", "Content-Type": "application/json"}
    assert "invalid JSON" in _message(http.post("/api/v1/imports", content=b'{"kind": ', headers=headers), 422)
    duplicate_keys = b'{"id": "x", "id": "y"}'
    assert "duplicate key" in _message(http.post("/api/v1/imports", content=duplicate_keys, headers=headers), 422)
    huge = http.post("/api/v1/imports", content=b" " * (64 * 1024 + 1), headers=headers)
    assert _message(huge, 413)
    assert http.get("/api/v1/jobs", headers=bearer(tokens.read)).json() == {"jobs": [], "next_cursor": None}
    with session_factory() as session:
        # Unlike a queue message, a refused request is not a dead letter: its caller read the reason.
        assert count_dead_letters(session, include_retried=True) == 0


def test_a_job_with_its_history_and_cancel(http: httpx.Client, tokens: Tokens) -> None:
    job = post_import(http, tokens, campaign(), key="to-cancel").json()["job"]
    shown = http.get(f"/api/v1/jobs/{job['id']}", headers=bearer(tokens.read))
    assert shown.status_code == 200
    assert [(e["old_status"], e["new_status"]) for e in shown.json()["events"]] == [(None, "PENDING")]

    cancelled = http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(tokens.write))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED_LOCALLY" and cancelled.json()["terminal"] is True
    history = http.get(f"/api/v1/jobs/{job['id']}", headers=bearer(tokens.read)).json()["events"]
    assert [e["new_status"] for e in history] == ["PENDING", "CANCELLED_LOCALLY"]
    assert history[-1]["message"] == "cancelled by api:writer"

    again = http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(tokens.write))
    assert "already ended" in _message(again, 409)
    assert again.json()["error"]["details"] == [{"status": "CANCELLED_LOCALLY"}]
    assert _message(http.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel", headers=bearer(tokens.write)), 404)
    # A repeated request finds the ended job: an idempotency key is never reused for a new import.
    repeat = post_import(http, tokens, campaign(), key="to-cancel")
    assert repeat.status_code == 200 and repeat.json()["job"]["status"] == "CANCELLED_LOCALLY"


def _ids(page: dict[str, Any]) -> list[str]:
    return [job["id"] for job in page["jobs"]]


def test_pages_have_no_duplicates_or_gaps_while_new_jobs_arrive(http: httpx.Client, tokens: Tokens) -> None:
    existing = [post_import(http, tokens, campaign(), key=f"old-{n}").json()["job"]["id"] for n in range(23)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "5"} | ({"cursor": cursor} if cursor else {})
        answer = http.get("/api/v1/jobs", params=query, headers=bearer(tokens.read))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen.extend(_ids(page))
        pages += 1
        # New jobs arrive between pages: newer than every position handed out, they never show up behind it.
        post_import(http, tokens, campaign(), key=f"new-{pages}")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == set(existing)
    assert seen == list(reversed(existing))  # newest first
    # The first page now starts with the jobs that arrived meanwhile.
    first = http.get("/api/v1/jobs", params={"limit": "5"}, headers=bearer(tokens.read)).json()
    assert all(job["idempotency_key"].startswith("message:new-") for job in first["jobs"])


def test_filters_and_their_errors(http: httpx.Client, tokens: Tokens) -> None:
    a = post_import(http, tokens, campaign(), key="a").json()["job"]
    b = post_import(http, tokens, campaign(dataset_id="other-dataset"), key="b").json()["job"]
    explorer = {"kind": "explorer", "dataset_id": DATASET, "completion_event_ids": ["evt-1"]}
    c = post_import(http, tokens, explorer, key="c").json()["job"]
    http.post(f"/api/v1/jobs/{a['id']}/cancel", headers=bearer(tokens.write))

    def ids(**query: Any) -> list[str]:
        answer = http.get("/api/v1/jobs", params=query, headers=bearer(tokens.read))
        assert answer.status_code == 200, answer.text
        return _ids(answer.json())

    assert ids(kind="explorer") == [c["id"]]
    assert ids(dataset="other-dataset") == [b["id"]]
    assert ids(status="CANCELLED_LOCALLY") == [a["id"]]
    assert ids(status="PENDING") == [c["id"], b["id"]]
    assert set(ids(status=["PENDING", "CANCELLED_LOCALLY"])) == {a["id"], b["id"], c["id"]}
    assert set(ids(status="PENDING,CANCELLED_LOCALLY")) == {a["id"], b["id"], c["id"]}
    assert ids(created_after=b["created_at"]) == [c["id"]]
    assert ids(created_before=b["created_at"]) == [a["id"]]
    assert ids(schedule="nightly") == []

    for query, wrong in [
        ({"status": "DONE"}, "status"),
        ({"kind": "nope"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"sort": "asc"}, "sort"),
        ({"kind": ["campaign", "explorer"]}, "kind"),
    ]:
        answer = http.get("/api/v1/jobs", params=query, headers=bearer(tokens.read))
        assert answer.status_code == 422, (query, answer.text)
        assert [d["parameter"] for d in answer.json()["error"]["details"]] == [wrong]


def test_a_server_failure_answers_500_in_the_error_shape(
    http: httpx.Client, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    job = post_import(http, tokens, campaign(), key="broken").json()["job"]
    with session_factory() as session:
        # A ledger broken under the server (not merely unreachable): the history table is gone.
        session.execute(text("DROP TABLE job_events"))
        session.commit()
    answer = http.get(f"/api/v1/jobs/{job['id']}", headers=bearer(tokens.read))
    message = _message(answer, 500)
    assert answer.json()["error"]["code"] == "internal_error"
    assert "job_events" not in message  # the reason goes to the server's log, not to the caller
