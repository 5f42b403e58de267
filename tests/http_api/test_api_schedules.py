"""Schedules over HTTP: create (the schedules file's keys), list, pause, resume, delete; run-now without a broker."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from store.schedules import get_schedule

from .conftest import Tokens, bearer

DATASET = "2b3c4d5e-6f70-4811-9a2b-3c4d5e6f7081"
CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"


def nightly(**extra: Any) -> dict[str, Any]:
    return {"name": "nightly", "kind": "campaign", "dataset": DATASET, "campaign": CAMPAIGN, "cron": "0 2 * * *",
            **extra}  # fmt: skip


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    message: str = answer.json()["error"]["message"]
    return message


def test_schedules_created_listed_paused_resumed_and_deleted(
    http: httpx.Client, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    write, read = bearer(tokens.write), bearer(tokens.read)
    created = http.post("/api/v1/schedules", json=nightly(), headers=write)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["name"] == "nightly" and schedule["kind"] == "campaign" and schedule["state"] == "active"
    assert schedule["params"] == {"campaign_id": CAMPAIGN} and schedule["cron"] == "0 2 * * *"
    assert schedule["next_fire_at"].endswith("T02:00:00Z") and schedule["source"] == "cli"
    assert created.headers["Location"] == "/api/v1/schedules/nightly"
    window = {"name": "events", "kind": "explorer-window", "dataset": DATASET, "every": "15m", "chunk_size": 50,
              "paused": True}  # fmt: skip
    assert http.post("/api/v1/schedules", json=window, headers=write).json()["state"] == "paused"

    assert "exists already" in _error(http.post("/api/v1/schedules", json=nightly(), headers=write), 409)
    listed = http.get("/api/v1/schedules", headers=read).json()["schedules"]
    assert [(s["name"], s["state"]) for s in listed] == [("events", "paused"), ("nightly", "active")]

    paused = http.post("/api/v1/schedules/nightly/pause", headers=write)
    assert paused.status_code == 200 and paused.json()["state"] == "paused" and paused.json()["next_fire_at"] is None
    resumed = http.post("/api/v1/schedules/nightly/resume", headers=write)
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    with session_factory() as session:
        stored = get_schedule(session, "nightly")
        assert stored is not None and not stored.paused

    assert http.delete("/api/v1/schedules/nightly", headers=write).status_code == 204
    assert [s["name"] for s in http.get("/api/v1/schedules", headers=read).json()["schedules"]] == ["events"]
    _error(http.delete("/api/v1/schedules/nightly", headers=write), 404)
    _error(http.post("/api/v1/schedules/nightly/pause", headers=write), 404)
    with session_factory() as session:
        kept = get_schedule(session, "nightly")
        assert kept is not None and kept.removed_at is not None  # removed, history kept
    # Created again, it comes back; deleted with forget, it is gone.
    assert http.post("/api/v1/schedules", json=nightly(), headers=write).status_code == 201
    _error(http.delete("/api/v1/schedules/nightly", params={"forget": "maybe"}, headers=write), 422)
    assert http.delete("/api/v1/schedules/nightly", params={"forget": "true"}, headers=write).status_code == 204
    with session_factory() as session:
        assert get_schedule(session, "nightly") is None


def test_a_schedule_is_checked_as_the_command_line_checks_it(http: httpx.Client, tokens: Tokens) -> None:
    write = bearer(tokens.write)

    def refused(body: Any) -> str:
        return _error(http.post("/api/v1/schedules", json=body, headers=write), 422)

    assert "unknown schedule kind" in refused(nightly(kind="weekly"))
    assert "cron" in refused({k: v for k, v in nightly().items() if k != "cron"})
    assert "does not take" in refused(nightly(chunk_size=5))
    assert "not over the API" in refused(nightly(snapshot="/tmp"))
    assert "schedule name" in refused(nightly(name="no spaces"))
    assert "dataset" in refused({k: v for k, v in nightly().items() if k != "dataset"})
    assert "not JSON" in _error(http.post("/api/v1/schedules", content=b"{", headers=write), 422)
    assert http.get("/api/v1/schedules", headers=bearer(tokens.read)).json() == {"schedules": []}


def test_run_now_needs_a_broker_and_a_live_schedule(http: httpx.Client, tokens: Tokens) -> None:
    write = bearer(tokens.write)
    _error(http.post("/api/v1/schedules/nightly/run-now", headers=write), 404)
    assert http.post("/api/v1/schedules", json=nightly(), headers=write).status_code == 201
    # This server was built without a sender (tests/http_api/test_api_end_to_end.py has one).
    assert "without a broker" in _error(http.post("/api/v1/schedules/nightly/run-now", headers=write), 503)
