"""Seeding from fixtures, reset, and the state file round trip."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import httpx
import pytest

from emulator import EmulatorClock
from emulator.fixtures import DEMO_FILE_ID
from emulator.persistence import load_state
from emulator.testing import EmulatorServer
from emulator.world import World

DATASETS = "/v1/observability/datasets"
T0 = 1_767_225_600.0


def auth(server: EmulatorServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


FIXTURE = {
    "datasets": [{"id": "11111111-1111-4111-8111-111111111111", "name": "Seeded", "slug": "custom-slug"}],
    "records": [
        {
            "dataset_id": "11111111-1111-4111-8111-111111111111",
            "payload": {"messages": [{"role": "user", "content": "q"}]},
            "properties": {"p": 1},
            "source": "PLAYGROUND",
        }
    ],
    "events": [{"event_id": "ev-a", "created_at": "2025-12-31T23:00:00Z", "extra_fields": {"k": "v"}}],
    "campaigns": [{"id": "22222222-2222-4222-8222-222222222222", "name": "C", "selected_event_ids": ["ev-a"]}],
    "conversations": [{"id": "conv_x", "messages": [{"role": "user", "content": "hi"}]}],
    "files": [
        {"id": "f-lines", "filename": "a.jsonl", "lines": [{"messages": []}]},
        {"id": "f-b64", "filename": "b.bin", "content_b64": base64.b64encode(b"\x00\x01").decode()},
    ],
    "traces": [
        {
            "trace_id": "a" * 32,
            "created_at": "2025-12-31T22:00:00Z",
            "service_name": "svc",
            "spans": [
                {"span_id": "b" * 16, "span_name": "root", "duration_ms": 20},
                {"span_id": "c" * 16, "parent_span_id": "b" * 16, "offset_ms": 5, "span_attributes": {"k": {"x": 1}}},
            ],
        }
    ],
}


def test_seed_fixture_through_the_admin_route(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.reset(reseed=False)
    result = emu.seed(FIXTURE)
    assert result["ids"]["datasets"] == ["11111111-1111-4111-8111-111111111111"]
    assert result["counts"] == {
        "datasets": 1, "records": 1, "tasks": 0, "campaigns": 1, "events": 1, "conversations": 1, "files": 2,
        "spans": 2,
    }  # fmt: skip
    assert result["ids"]["traces"] == ["a" * 32]
    dataset = client.get(f"{DATASETS}/11111111-1111-4111-8111-111111111111").json()
    assert dataset["slug"] == "custom-slug" and dataset["description"] == ""
    record = client.get(f"{DATASETS}/11111111-1111-4111-8111-111111111111/records").json()["records"]["results"][0]
    assert record["source"] == "PLAYGROUND" and record["properties"] == {"p": 1}
    event = client.get("/v1/observability/chat-completion-events/ev-a").json()
    assert event["created_at"] == "2025-12-31T23:00:00.000Z" and event["nb_messages"] == 0
    assert client.get("/v1/files/f-b64/content").content == b"\x00\x01"
    assert client.get("/v1/files/f-lines/content").content == b'{"messages": []}\n'
    spans = client.post("/v1/observability/spans/search", json={}).json()["spans"]["results"]
    assert [(s["span_id"], s["start_time"], s["service_name"]) for s in spans] == [
        ("c" * 16, "2025-12-31T22:00:00.005Z", "svc"),  # newest first; the trace passes service_name down
        ("b" * 16, "2025-12-31T22:00:00.000Z", "svc"),
    ]
    assert spans[0]["span_attributes"] == {"k": '{"x": 1}'}  # attribute values are text on the wire
    assert spans[1]["end_time"] == "2025-12-31T22:00:00.020Z" and spans[1]["duration_ns"] == 20_000_000


@pytest.mark.parametrize(
    "fixture",
    [
        {"unknown": []},
        {"datasets": {}},
        {"datasets": [{"description": "no name"}]},
        {"records": [{"dataset_id": "nope", "payload": {"messages": []}}]},
        {"datasets": [{"name": "fine"}], "events": [{"no_event_id": 1}]},
        {"files": [{"filename": "x", "content_b64": "***"}]},
        {"traces": [{"trace_id": "t", "spans": []}]},
        {"traces": [{"trace_id": "t", "spans": [{"span_id": "s", "no_such_key": 1}]}]},
        {"traces": [{"spans": [{"span_id": "s"}]}]},
    ],
)
def test_bad_fixture_is_422_and_applies_nothing(emu: EmulatorServer, fixture: dict[str, object]) -> None:
    before = emu.stats(include_tasks=False)["world"]
    response = httpx.post(emu.url + "/_emulator/seed", json=fixture)
    assert response.status_code == 422 and response.json()["detail"]["error_code"] == "VALIDATION_ERROR"
    assert emu.stats(include_tasks=False)["world"] == before


def test_reset_with_and_without_the_start_up_seed(emu: EmulatorServer, client: httpx.Client) -> None:
    client.post(DATASETS, json={"name": "extra", "description": ""})
    emu.reset()
    assert client.get(DATASETS).json()["datasets"]["count"] == 2
    emu.reset(reseed=False)
    assert emu.stats(include_tasks=False)["world"]["events"] == 0


def test_server_seeded_with_a_dict() -> None:
    with EmulatorServer(seed=FIXTURE) as server:
        count = httpx.get(server.url + DATASETS, headers=auth(server)).json()["datasets"]["count"]
        assert count == 1


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    clock = EmulatorClock(start=T0, frozen=True)
    with EmulatorServer(seed="demo", state_path=state, task_duration_s=10, clock=clock) as first:
        with httpx.Client(base_url=first.url, headers=auth(first)) as client:
            dataset_id = client.post(DATASETS, json={"name": "Kept", "description": "d"}).json()["id"]
            task = client.post(f"{DATASETS}/{dataset_id}/imports/from-file", json={"file_id": DEMO_FILE_ID}).json()
            first.configure(failure_rate=0.0, latency_ms=1)
            clock.advance(4)
    assert state.exists()  # written on shutdown
    with EmulatorServer(state_path=state, clock=clock) as second:
        with httpx.Client(base_url=second.url, headers=auth(second)) as client:
            kept = client.get(f"{DATASETS}/{dataset_id}").json()
            assert kept["name"] == "Kept" and kept["created_at"] == "2026-01-01T00:00:00.000Z"
            assert client.get(DATASETS).json()["datasets"]["count"] == 3
            fetched = client.get(f"{DATASETS}/{dataset_id}/tasks/{task['id']}").json()
            assert (fetched["status"], fetched["progress"]) == ("RUNNING", 40)
            clock.advance(6)
            done = client.get(f"{DATASETS}/{dataset_id}/tasks/{task['id']}").json()
            assert done["status"] == "COMPLETED" and done["result"]["imported_record_count"] == 5
            assert client.get(f"{DATASETS}/{dataset_id}/records").json()["records"]["count"] == 5
            assert client.get(f"/v1/files/{DEMO_FILE_ID}/content").content.count(b"\n") == 5
            assert second.configure()["latency_ms"] == 1


def test_explicit_save_and_save_without_a_path(tmp_path: Path, emu: EmulatorServer) -> None:
    response = httpx.post(emu.url + "/_emulator/save", json={})
    assert response.status_code == 400
    target = tmp_path / "nested" / "saved.json"
    assert emu.save(target) == str(target)
    saved = json.loads(target.read_text())
    assert saved["version"] == 1 and len(saved["datasets"]) == 2 and len(saved["events"]) == 20
    world = World(clock=EmulatorClock(start=T0, frozen=True))
    load_state(world, target)
    assert world.counts() == emu.emulator.world.counts()


def test_unknown_state_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="unsupported state version"):
        load_state(World(clock=EmulatorClock()), path)


def test_server_stops_cleanly_and_frees_its_port() -> None:
    server = EmulatorServer().start()
    url = server.url
    assert httpx.get(url + "/_emulator/health").status_code == 200
    server.stop()
    port = httpx.URL(url).port
    assert not [t for t in threading.enumerate() if t.name == f"emulator-{port}"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_emulator/health")
    server.stop()  # idempotent


def test_helpers_refuse_before_start() -> None:
    server = EmulatorServer()
    with pytest.raises(RuntimeError):
        server.stats()
    with pytest.raises(RuntimeError):
        _ = server.emulator
