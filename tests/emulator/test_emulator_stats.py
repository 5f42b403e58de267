"""GET /_emulator/stats: per-route counters, tasks per dataset, per-task fetch counts and times."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from emulator.fixtures import DEMO_FILE_ID
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"


def test_counts_requests_responses_and_tasks(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    task_id = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]
    for _ in range(3):
        api.task(dataset_id, task_id)
    client.get(f"{DATASETS}/{dataset_id}/tasks/6d7c6a2e-0000-4000-8000-000000000000")
    emu.advance_clock(12)
    api.task(dataset_id, task_id)
    stats = emu.stats()
    assert stats["requests"] == {"create_dataset": 1, "import_from_file": 1, "fetch_task": 5}
    assert stats["requests_total"] == 7
    assert stats["responses"]["fetch_task"] == {"200": 4, "404": 1}
    assert stats["tasks_created"] == {dataset_id: 1}
    assert stats["tasks_by_status"] == {"COMPLETED": 1}
    assert stats["tasks"][task_id] == {
        "dataset_id": dataset_id,
        "kind": "file",
        "status": "COMPLETED",
        "created_at": "2026-01-01T00:00:00.000Z",
        "terminal_at": "2026-01-01T00:00:10.000Z",
        "observed_at": "2026-01-01T00:00:12.000Z",
        "fetch_count": 4,
    }
    assert stats["world"]["records"] == 3 + 5


def test_stats_settle_finished_tasks(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task_id = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]
    emu.advance_clock(10)
    task = emu.stats()["tasks"][task_id]
    assert task["status"] == "COMPLETED" and task["observed_at"] == "2026-01-01T00:00:10.000Z"
    assert task["fetch_count"] == 0


def test_unauthorised_and_admin_calls(emu: EmulatorServer) -> None:
    httpx.get(emu.url + DATASETS)
    emu.configure(latency_ms=0)
    stats = emu.stats(include_tasks=False)
    assert stats["requests"] == {"list_datasets": 1} and stats["responses"]["list_datasets"] == {"401": 1}
    assert "tasks" not in stats


def test_reset_zeroes_counters(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task_id = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]
    api.task(dataset_id, task_id)
    emu.reset_stats()
    stats = emu.stats()
    assert stats["requests_total"] == 0 and stats["requests"] == {} and stats["tasks_created"] == {}
    assert stats["tasks"][task_id]["fetch_count"] == 0 and stats["tasks"][task_id]["status"] == "RUNNING"
