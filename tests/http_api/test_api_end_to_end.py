"""End to end over HTTP: `dsimport dashboard` (which gives the API the broker's sender), a real worker and beat on
the real Redis, the emulator on a socket. An import requested with POST /api/v1/imports, and a schedule's run-now,
complete; no token reaches the service's logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api_client import DatasetsClient
from cli.local_stack.launcher import free_port
from emulator.testing import EmulatorServer
from tests.integration.service import ServiceProcesses

from .conftest import Tokens, bearer, checked_client

pytestmark = pytest.mark.integration

CAMPAIGN = "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01"
UI_PASSWORD = "ui-pass-for-api-tests"


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {**service_overrides, "DSIMPORT_UI_PASSWORD": UI_PASSWORD}


@pytest.fixture
def http(service: ServiceProcesses, tokens: Tokens) -> Iterator[httpx.Client]:
    """`dsimport dashboard` as the service runs it (with the broker's sender), next to a worker and beat."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service.start("dashboard", "dashboard", "--port", str(port))
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, service.logs()
        time.sleep(0.1)
    with checked_client(base) as client:
        yield client


def _seed(emulator: EmulatorServer) -> None:
    events = [
        {
            "event_id": f"evt-{n}",
            "request_messages": [{"role": "user", "content": f"question {n}"}],
            "response_messages": [{"role": "assistant", "content": f"answer {n}"}],
        }
        for n in range(3)
    ]
    campaign = {"id": CAMPAIGN, "name": "review", "selected_event_ids": ["evt-1", "evt-2"], "status": "COMPLETED"}
    emulator.seed({"events": events, "campaigns": [campaign]})


def _until_ended(http: httpx.Client, tokens: Tokens, path: str, *, timeout_s: float, logs: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = http.get(path, headers=bearer(tokens.read))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        jobs = body.get("jobs", [body])
        if jobs and all(job["terminal"] for job in jobs):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"not ended after {timeout_s} s: {body}\n{logs()}")
        time.sleep(0.2)


def test_an_import_requested_over_http_completes(
    http: httpx.Client,
    tokens: Tokens,
    emulator: EmulatorServer,
    api: DatasetsClient,
    service: ServiceProcesses,
) -> None:
    _seed(emulator)
    target = api.create_dataset("target", "filled over HTTP")
    service.wait_until_consuming()
    started = time.monotonic()
    body = {"kind": "campaign", "dataset_id": target.id, "campaign_id": CAMPAIGN}
    answer = http.post("/api/v1/imports", json=body, headers=bearer(tokens.write) | {"Idempotency-Key": "e2e-1"})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job"]["id"]
    job = _until_ended(http, tokens, f"/api/v1/jobs/{job_id}", timeout_s=60, logs=service.logs)
    took_s = time.monotonic() - started
    assert job["status"] == "COMPLETED", job
    assert job["imported_count"] == 2 and job["remote_task_id"] is not None
    assert [event["new_status"] for event in job["events"]][:3] == ["PENDING", "SUBMITTING", "RUNNING"]
    # Sent at once, not left for the recovery sweep (DSIMPORT_STALE_PENDING_S, 60 s by default).
    assert took_s < 30, took_s
    assert len(list(api.iter_records(target.id))) == 2

    # A schedule created over HTTP and fired now through a worker.
    schedule = {"name": "review", "kind": "campaign", "dataset": target.id, "campaign": CAMPAIGN, "every": "1d"}
    assert http.post("/api/v1/schedules", json=schedule, headers=bearer(tokens.write)).status_code == 201
    fired = http.post("/api/v1/schedules/review/run-now", headers=bearer(tokens.write))
    assert fired.status_code == 202, fired.text
    assert fired.json()["name"] == "review"
    deadline = time.monotonic() + 60
    while not http.get("/api/v1/jobs", params={"schedule": "review"}, headers=bearer(tokens.read)).json()["jobs"]:
        assert time.monotonic() < deadline, service.logs()
        time.sleep(0.2)
    page = _until_ended(http, tokens, "/api/v1/jobs?schedule=review", timeout_s=60, logs=service.logs)
    assert [job["status"] for job in page["jobs"]] == ["COMPLETED"]
    assert page["jobs"][0]["origin"] == "schedule:review"
    last_run = http.get("/api/v1/schedules", headers=bearer(tokens.read)).json()["schedules"][0]["last_run"]
    assert last_run["trigger"] == "manual" and last_run["jobs"][0]["id"] == page["jobs"][0]["id"]
    logs = "\n".join(path.read_text(errors="replace") for path in service.log_dir.glob("*.log"))
    assert "/api/v1/imports" in logs  # the dashboard's access lines are there
    assert tokens.write not in logs and tokens.read not in logs
