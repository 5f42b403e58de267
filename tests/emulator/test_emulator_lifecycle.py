"""Task progress computed lazily from the (injected) clock, status sequences and outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from emulator import EmulatorClock, Knobs
from emulator.fixtures import DEMO_FILE_ID
from emulator.lifecycle import create_task, observe, settle_all, view
from emulator.models import PlannedRecord
from emulator.testing import EmulatorServer
from emulator.world import World

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"


def file_task(api: Api) -> tuple[str, str]:
    dataset_id = api.create_dataset()
    return dataset_id, api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]


def test_progress_follows_the_clock_and_records_appear_at_the_end(emu: EmulatorServer, api: Api) -> None:
    dataset_id, task_id = file_task(api)
    seen = []
    for _ in range(4):
        task = api.task(dataset_id, task_id)
        seen.append((task["status"], task["progress"]))
        assert api.records(dataset_id)["count"] == 0
        emu.advance_clock(2.5)
    assert seen == [("RUNNING", 0), ("RUNNING", 25), ("RUNNING", 50), ("RUNNING", 75)]
    emu.advance_clock(0.1)
    task = api.task(dataset_id, task_id)
    assert (task["status"], task["progress"]) == ("COMPLETED", 100)
    assert task["updated_at"] == "2026-01-01T00:00:10.000Z"
    assert api.records(dataset_id)["count"] == 5


def test_updated_at_moves_with_progress(emu: EmulatorServer, api: Api) -> None:
    dataset_id, task_id = file_task(api)
    emu.advance_clock(3.333)
    assert api.task(dataset_id, task_id)["updated_at"] == "2026-01-01T00:00:03.300Z"


def test_status_sequence_is_spread_over_the_duration(emu: EmulatorServer, api: Api) -> None:
    emu.configure(status_sequence=["RUNNING", "UNKNOWN", "CONTINUED_AS_NEW", "RUNNING"])
    dataset_id, task_id = file_task(api)
    seen = []
    for _ in range(5):
        task = api.task(dataset_id, task_id)
        seen.append((task["status"], task["progress"]))
        emu.advance_clock(2.5)
    assert seen == [
        ("RUNNING", 0),
        ("UNKNOWN", None),
        ("CONTINUED_AS_NEW", 50),
        ("RUNNING", 75),
        ("COMPLETED", 100),
    ]


def test_non_terminal_end_status_never_ends(emu: EmulatorServer, api: Api) -> None:
    emu.configure(terminal_status="UNKNOWN")
    dataset_id, task_id = file_task(api)
    emu.advance_clock(10_000)
    task = api.task(dataset_id, task_id)
    assert (task["status"], task["progress"], task["result"]) == ("UNKNOWN", None, None)
    assert api.records(dataset_id)["count"] == 0
    assert emu.stats()["tasks"][task_id]["terminal_at"] is None


@pytest.mark.parametrize("status", ["CANCELED", "TERMINATED", "TIMED_OUT"])
def test_other_terminal_statuses_copy_nothing(emu: EmulatorServer, api: Api, status: str) -> None:
    emu.configure(terminal_status=status)
    dataset_id, task_id = file_task(api)
    emu.advance_clock(10)
    task = api.task(dataset_id, task_id)
    assert task["status"] == status and task["message"] and task["result"] is None
    assert api.records(dataset_id)["count"] == 0


def test_failure_rate_one_fails_every_task(emu: EmulatorServer, api: Api) -> None:
    emu.configure(failure_rate=1.0)
    dataset_id, task_id = file_task(api)
    emu.advance_clock(10)
    task = api.task(dataset_id, task_id)
    assert task["status"] == "FAILED" and task["message"] == "Import failed: injected failure"
    assert 25 <= task["progress"] <= 99
    assert api.records(dataset_id)["count"] == 0


def test_duration_range_draws_within_bounds(emu: EmulatorServer, api: Api) -> None:
    emu.configure(task_duration_s="1-5", random_seed=7)
    dataset_id = api.create_dataset()
    ids = [api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"] for _ in range(20)]
    durations = [emu.emulator.world.tasks[i].duration_s for i in ids]
    assert all(1 <= d <= 5 for d in durations) and len(set(durations)) > 1
    emu.advance_clock(5)
    assert {api.task(dataset_id, i)["status"] for i in ids} == {"COMPLETED"}


def test_list_tasks_is_newest_first_and_settles(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    first = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})["id"]
    emu.advance_clock(1)
    second = api.start_import(dataset_id, "playground", {"conversation_ids": []})["id"]
    page = client.get(f"{DATASETS}/{dataset_id}/tasks", params={"page_size": 1}).json()["tasks"]
    assert page["count"] == 2 and [t["id"] for t in page["results"]] == [second]
    assert page["next"] is not None and page["previous"] is None
    emu.advance_clock(9.5)
    listed = client.get(f"{DATASETS}/{dataset_id}/tasks").json()["tasks"]["results"]
    assert [(t["id"], t["status"]) for t in listed] == [(second, "RUNNING"), (first, "COMPLETED")]
    assert listed[1]["result"]["imported_record_count"] == 5
    assert emu.emulator.world.tasks[first].settled


def test_unknown_and_foreign_tasks_are_404(api: Api, client: httpx.Client) -> None:
    dataset_id, task_id = file_task(api)
    other = api.create_dataset("Other")
    missing = "6d7c6a2e-0000-4000-8000-000000000000"
    for url in (f"{DATASETS}/{dataset_id}/tasks/{missing}", f"{DATASETS}/{other}/tasks/{task_id}"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["detail"]["error_code"] == "DATASET_TASK_NOT_FOUND"
    bad = client.get(f"{DATASETS}/{dataset_id}/tasks/nope")
    assert bad.status_code == 422 and bad.json()["detail"]["error_code"] == "VALIDATION_ERROR"


def test_settled_task_answer_is_stable(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id, task_id = file_task(api)
    emu.advance_clock(11)
    first = client.get(f"{DATASETS}/{dataset_id}/tasks/{task_id}").content
    emu.advance_clock(100)
    assert client.get(f"{DATASETS}/{dataset_id}/tasks/{task_id}").content == first


# Unit level: the lifecycle functions on a World, no server.


def make_world(**knobs: object) -> tuple[World, EmulatorClock]:
    clock = EmulatorClock(start=1000.0, frozen=True)
    world = World(clock=clock, knobs=Knobs().updated(knobs))
    world.add_dataset("d", "", dataset_id="d1")
    return world, clock


def planned(n: int) -> list[PlannedRecord]:
    return [PlannedRecord({"messages": []}, {}, "DIRECT_INPUT", f"o{i}") for i in range(n)]


def test_view_is_pure_and_observe_settles_once() -> None:
    world, clock = make_world(task_duration_s=4)
    task = create_task(world, dataset_id="d1", kind="file", plan=planned(3), requested=3)
    clock.advance(5)
    assert view(task, clock()).status == "COMPLETED" and not task.settled
    assert world.records == {}
    observe(world, task, clock())
    observe(world, task, clock())
    assert task.settled and len(world.records) == 3
    assert task.observed_at == 1005.0


def test_settle_all_handles_many_tasks_and_skips_removed_ones() -> None:
    # Dedupe on: every task imports the same origin, so one record shows that each settled task wrote at most once.
    world, clock = make_world(task_duration_s="1-3", random_seed=1, dedupe_imports=True)
    tasks = [create_task(world, dataset_id="d1", kind="file", plan=planned(1), requested=1) for _ in range(50)]
    world.remove_task(tasks[0].id)
    clock.advance(2)
    settle_all(world, clock())
    settled = [t for t in tasks[1:] if t.settled]
    assert settled and all(t.end_at <= 1002.0 for t in settled)
    assert all(not t.settled for t in tasks[1:] if t.end_at > 1002.0)
    clock.advance(2)
    settle_all(world, clock())
    assert all(t.settled for t in tasks[1:]) and not tasks[0].settled
    # Origins o0 repeat across tasks: only the first copy of each is imported.
    assert len(world.records) == 1


def test_settle_all_keeps_every_copy_by_default() -> None:
    world, clock = make_world(task_duration_s=1)
    tasks = [create_task(world, dataset_id="d1", kind="file", plan=planned(1), requested=1) for _ in range(5)]
    world.remove_task(tasks[0].id)
    clock.advance(2)
    settle_all(world, clock())
    # Dedupe off: each of the four remaining tasks writes its own copy of origin o0.
    assert len(world.records) == 4


def test_zero_duration_completes_on_first_read() -> None:
    world, clock = make_world(task_duration_s=0)
    task = create_task(world, dataset_id="d1", kind="file", plan=planned(1), requested=1)
    assert observe(world, task, clock()).status == "COMPLETED"


def test_clock_moved_back_before_creation_is_harmless() -> None:
    world, clock = make_world(task_duration_s=0)
    task = create_task(world, dataset_id="d1", kind="file", plan=planned(1), requested=1)
    clock.advance(-1)
    assert view(task, clock()).status == "RUNNING"
