"""Admin routes for fault campaigns: tasks of another client on a dataset, and what each task imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api


def test_foreign_tasks_crowd_the_task_list_without_counting_as_imports(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset("crowded")
    ids = emu.add_foreign_tasks(dataset_id, 3)
    assert len(set(ids)) == 3
    listed = api.client.get(f"/v1/observability/datasets/{dataset_id}/tasks").json()
    assert {task["id"] for task in listed["tasks"]["results"]} >= set(ids)
    assert {task["creator_id"] for task in listed["tasks"]["results"]} == {"emulator-other-client"}
    stats = emu.stats()
    assert stats["tasks_created"].get(dataset_id, 0) == 0
    assert set(ids) <= set(stats["tasks"])


def test_task_origins_name_the_imported_sources(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset("target")
    event_id = next(iter(emu.emulator.world.events))
    task = api.start_import(dataset_id, "explorer", {"completion_event_ids": [event_id]})
    origins = emu.task_origins()
    assert origins[task["id"]] == {"dataset_id": dataset_id, "kind": "explorer", "origins": [f"event:{event_id}"]}
    # Still known once the task ended and its records were written.
    emu.advance_clock(11)
    assert emu.stats()["tasks"][task["id"]]["status"] == "COMPLETED"
    assert emu.task_origins()[task["id"]]["origins"] == [f"event:{event_id}"]


def test_foreign_tasks_need_a_live_dataset_and_a_count(emu: EmulatorServer, client: httpx.Client) -> None:
    missing = client.post("/_emulator/tasks", json={"dataset_id": "nope", "count": 1})
    assert missing.status_code == 404
    assert client.post("/_emulator/tasks", json={"dataset_id": "nope", "count": 0}).status_code == 422
