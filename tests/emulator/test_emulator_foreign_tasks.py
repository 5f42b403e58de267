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
    assert origins[task["id"]] == {
        "dataset_id": dataset_id, "kind": "explorer", "origins": [f"event:{event_id}"], "requested": 1
    }  # fmt: skip
    # Still known once the task ended and its records were written.
    emu.advance_clock(11)
    assert emu.stats()["tasks"][task["id"]]["status"] == "COMPLETED"
    assert emu.task_origins()[task["id"]]["origins"] == [f"event:{event_id}"]


def test_foreign_tasks_need_a_live_dataset_and_a_count(emu: EmulatorServer, client: httpx.Client) -> None:
    missing = client.post("/_emulator/tasks", json={"dataset_id": "nope", "count": 1})
    assert missing.status_code == 404
    assert client.post("/_emulator/tasks", json={"dataset_id": "nope", "count": 0}).status_code == 422


def test_inventory_counts_records_by_origin_and_dates_the_events(emu: EmulatorServer, api: Api) -> None:
    emu.configure(dedupe_imports=False)
    target, other = api.create_dataset("target"), api.create_dataset("other")
    emu.seed({"events": [{"event_id": "inv-1", "created_at_offset_s": -30, "extra_fields": {"team": "support"}}]})
    for _ in range(2):  # the same event imported twice: two records of one origin
        api.start_import(target, "explorer", {"completion_event_ids": ["inv-1"]})
    before = emu.inventory([target])
    # Not there until the tasks end; the inventory writes a finished task's records itself, like a read would.
    assert before["records"] == {target: []}
    emu.advance_clock(11)
    inventory = emu.inventory([target])
    assert set(inventory["records"]) == {target}, "only the datasets asked for"
    assert [record["origin"] for record in inventory["records"][target]] == ["event:inv-1", "event:inv-1"]
    event = inventory["events"]["inv-1"]
    assert event["extra_fields"] == {"team": "support"}
    assert event["created_at"] < inventory["now"]
    assert other in emu.inventory()["records"]
