"""Injected errors, latency, vanished tasks, and the /_emulator/config knobs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from emulator.fixtures import DEMO_DATASET_ID, DEMO_FILE_ID
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"


def test_rate_one_503_on_one_route_only(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(faults={"list_datasets": {"status": 503}})
    for _ in range(3):
        response = client.get(DATASETS)
        assert response.status_code == 503
        assert response.json()["detail"]["message"] == "Injected fault: HTTP 503"
        assert "retry-after" not in response.headers
    assert client.get(f"{DATASETS}/{DEMO_DATASET_ID}").status_code == 200


def test_next_n_requests_then_the_rule_disappears(emu: EmulatorServer, client: httpx.Client) -> None:
    config = emu.configure(faults={"list_datasets": {"status": 429, "next": 2, "retry_after_s": 3}})
    assert config["faults"]["list_datasets"] == {
        "status": 429, "rate": 1.0, "next": 2, "retry_after_s": 3.0, "phase": "before",
    }  # fmt: skip
    first, second, third = (client.get(DATASETS) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "3"
    assert client.get("/_emulator/config").json()["faults"] == {}


def test_fractional_retry_after_and_partial_rate(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(random_seed=3, faults={"*": {"status": 502, "rate": 0.5, "retry_after_s": 0.25}})
    codes = [client.get(DATASETS).status_code for _ in range(60)]
    assert 10 < codes.count(502) < 50 and set(codes) == {200, 502}
    emu.configure(faults={"*": {"status": 503, "retry_after_s": 0.25}})
    assert client.get(DATASETS).headers["retry-after"] == "0.25"


def test_route_rule_wins_over_wildcard(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(faults={"*": {"status": 500}, "fetch_dataset": {"status": 504}})
    assert client.get(DATASETS).status_code == 500
    assert client.get(f"{DATASETS}/{DEMO_DATASET_ID}").status_code == 504
    emu.configure(faults=None)
    assert client.get(DATASETS).status_code == 200


def test_after_phase_creates_the_task_but_loses_the_answer(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    emu.configure(faults={"import_from_file": {"status": 503, "next": 1, "phase": "after"}})
    response = client.post(f"{DATASETS}/{dataset_id}/imports/from-file", json={"file_id": DEMO_FILE_ID})
    assert response.status_code == 503
    tasks = client.get(f"{DATASETS}/{dataset_id}/tasks").json()["tasks"]
    assert tasks["count"] == 1 and tasks["results"][0]["status"] == "RUNNING"


def test_latency_is_added_per_route(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(route_latency_ms={"list_datasets": 150})
    started = time.perf_counter()
    client.get(DATASETS)
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    client.get(f"{DATASETS}/{DEMO_DATASET_ID}")
    assert time.perf_counter() - started < 0.15


def test_global_latency(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(latency_ms=100)
    started = time.perf_counter()
    client.get(f"{DATASETS}/{DEMO_DATASET_ID}")
    assert time.perf_counter() - started >= 0.1


def test_vanished_task_is_404(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    task_id = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]
    emu.delete_task(task_id)
    response = client.get(f"{DATASETS}/{dataset_id}/tasks/{task_id}")
    assert response.status_code == 404
    assert response.json()["detail"]["error_code"] == "DATASET_TASK_NOT_FOUND"
    assert client.get(f"{DATASETS}/{dataset_id}/tasks").json()["tasks"]["count"] == 0
    again = client.delete(f"{emu.url}/_emulator/tasks/{task_id}")
    assert again.status_code == 404
    emu.advance_clock(20)
    assert emu.stats()["world"]["records"] == 3  # the vanished task never copies its records


@pytest.mark.parametrize(
    "patch",
    [
        {"failure_rate": 2},
        {"failure_rate": "x"},
        {"task_duration_s": "5-1"},
        {"task_duration_s": -1},
        {"status_sequence": []},
        {"terminal_status": ""},
        {"faults": {"x": {"status": 200}}},
        {"faults": {"x": {"status": 503, "rate": 3}}},
        {"faults": {"x": {"status": 503, "phase": "during"}}},
        {"faults": {"x": {"status": 503, "bogus": 1}}},
        {"route_latency_ms": {"x": -5}},
        {"no_such_knob": 1},
    ],
)
def test_bad_config_is_422_and_changes_nothing(
    emu: EmulatorServer, client: httpx.Client, patch: dict[str, object]
) -> None:
    before = client.get(f"{emu.url}/_emulator/config").json()
    response = client.post(f"{emu.url}/_emulator/config", json=patch)
    assert response.status_code == 422
    assert response.json()["detail"]["error_code"] == "VALIDATION_ERROR"
    assert client.get(f"{emu.url}/_emulator/config").json() == before


def test_config_round_trip_and_reset_restores_start_up_knobs(emu: EmulatorServer) -> None:
    config = emu.configure(task_duration_s=[1, 3], failure_rate=0.25, latency_ms=5, dedupe_imports=False)
    assert config["task_duration_s"] == [1.0, 3.0] and config["failure_rate"] == 0.25
    assert config["status_sequence"] == ["RUNNING"] and config["terminal_status"] == "COMPLETED"
    emu.reset()
    assert emu.configure()["task_duration_s"] == 10.0


def test_clock_admin_route(emu: EmulatorServer, client: httpx.Client) -> None:
    moved = emu.advance_clock(90)
    assert moved["now"] == "2026-01-01T00:01:30.000Z" and moved["frozen"] is True
    assert client.post(f"{emu.url}/_emulator/clock", json={"advance_s": "x"}).status_code == 422
