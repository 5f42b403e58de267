"""Each import kind end to end: records really land in the target dataset with the right source."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from emulator.fixtures import (
    DEMO_BAD_FILE_ID,
    DEMO_CAMPAIGN_COMPLETED_ID,
    DEMO_CAMPAIGN_EMPTY_ID,
    DEMO_CAMPAIGN_RUNNING_ID,
    DEMO_CONVERSATION_IDS,
    DEMO_DATASET_ID,
    DEMO_FILE_ID,
    DEMO_RECORD_IDS,
)
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"
MISSING = "6d7c6a2e-0000-4000-8000-000000000000"
TASK_KEYS = {
    "id", "created_at", "updated_at", "deleted_at", "creator_id", "dataset_id", "workspace_id", "status",
    "progress", "message", "result",
}  # fmt: skip


def event_ids(client: httpx.Client, filters: object = None) -> list[str]:
    body = {"search_params": {"filters": filters}}
    response = client.post("/v1/observability/chat-completion-events/search-ids", json=body)
    ids: list[str] = response.json()["completion_event_ids"]
    return ids


def finish(emu: EmulatorServer, api: Api, dataset_id: str, task_id: str) -> dict[str, Any]:
    emu.advance_clock(10)
    return api.task(dataset_id, task_id)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"]["error_code"] == code


def test_import_answers_202_running_with_progress_zero(api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "campaign", {"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID})
    assert set(task) == TASK_KEYS
    assert task["status"] == "RUNNING" and task["progress"] == 0
    assert task["deleted_at"] is None and task["message"] is None and task["result"] is None
    assert task["dataset_id"] == dataset_id


def test_campaign_import_copies_selected_events_as_explorer_records(
    emu: EmulatorServer, api: Api, client: httpx.Client
) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "campaign", {"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID})
    assert api.records(dataset_id)["count"] == 0
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "COMPLETED" and done["progress"] == 100
    assert done["result"] == {"requested_record_count": 10, "imported_record_count": 10, "skipped_record_count": 0}
    records = api.records(dataset_id)["results"]
    assert len(records) == 10 and {r["source"] for r in records} == {"EXPLORER"}
    large = event_ids(client, {"field": "extra_fields.model", "op": "eq", "value": "mistral-large-latest"})
    assert {r["properties"]["event_id"] for r in records} == set(large)
    event = client.get(f"/v1/observability/chat-completion-events/{records[0]['properties']['event_id']}").json()
    assert records[0]["payload"]["messages"] == event["request_messages"] + event["response_messages"]


def test_explorer_import_copies_the_given_events(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    chosen = event_ids(client)[:3]
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "explorer", {"completion_event_ids": chosen})
    done = finish(emu, api, dataset_id, task["id"])
    assert done["result"]["imported_record_count"] == 3
    records = api.records(dataset_id)["results"]
    assert [r["properties"]["event_id"] for r in records] == chosen
    assert all(r["source"] == "EXPLORER" for r in records)
    assert all(r["payload"]["messages"][-1]["role"] == "assistant" for r in records)


def test_file_import_parses_jsonl(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "COMPLETED" and done["result"]["imported_record_count"] == 5
    records = api.records(dataset_id)["results"]
    assert [r["properties"] for r in records] == [{"topic_index": i} for i in range(5)]
    assert {r["source"] for r in records} == {"UPLOADED_FILE"}
    assert records[0]["payload"]["messages"][0] == {"role": "user", "content": "How do I reset my password?"}


def test_uploaded_file_import_and_the_export_shape_round_trip(
    emu: EmulatorServer, api: Api, client: httpx.Client
) -> None:
    lines = [
        {"messages": [{"role": "user", "content": "a"}], "properties": {"n": 1}},
        {"payload": {"messages": [{"role": "user", "content": "b"}], "extra": True}, "source": "EXPLORER"},
    ]
    content = "\n\n".join(json.dumps(line) for line in lines).encode()
    uploaded = client.post("/v1/files", files={"file": ("mine.jsonl", content, "application/jsonl")})
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "file", {"file_id": uploaded.json()["id"]})
    assert finish(emu, api, dataset_id, task["id"])["result"]["requested_record_count"] == 2
    records = api.records(dataset_id)["results"]
    assert records[0]["properties"] == {"n": 1}
    assert records[1]["payload"] == {"messages": [{"role": "user", "content": "b"}], "extra": True}
    assert records[1]["properties"] == {} and records[1]["source"] == "UPLOADED_FILE"


def test_bad_jsonl_line_fails_the_task_naming_the_line(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "file", {"file_id": DEMO_BAD_FILE_ID})
    assert task["status"] == "RUNNING"
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "FAILED"
    assert "DATASET_RECORD_FORMAT_ERROR" in done["message"] and "line 3" in done["message"]
    assert done["result"] is None and done["progress"] == 50  # 2 of 4 lines read
    assert api.records(dataset_id)["count"] == 0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"[1, 2]", "expected a JSON object"),
        (b'{"messages": "hi"}', "'messages' must be a list of objects"),
        (b'{"messages": [], "properties": [1]}', "'properties' must be an object"),
        (b"\xff\xfe", "not valid UTF-8"),
    ],
)
def test_each_bad_line_kind_is_reported(
    emu: EmulatorServer, api: Api, client: httpx.Client, line: bytes, reason: str
) -> None:
    uploaded = client.post("/v1/files", files={"file": ("bad.jsonl", line + b"\n")}).json()
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "file", {"file_id": uploaded["id"]})
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "FAILED" and "line 1" in done["message"] and reason in done["message"]


def test_playground_import_copies_conversations(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "playground", {"conversation_ids": list(DEMO_CONVERSATION_IDS[:2])})
    finish(emu, api, dataset_id, task["id"])
    records = api.records(dataset_id)["results"]
    assert {r["source"] for r in records} == {"PLAYGROUND"}
    assert [r["properties"]["conversation_id"] for r in records] == list(DEMO_CONVERSATION_IDS[:2])
    first = records[0]["payload"]["messages"]
    assert first[0] == {"role": "system", "content": "Answer briefly."}
    assert [m["role"] for m in records[1]["payload"]["messages"]] == ["user", "assistant"] * 2


def test_playground_empty_list_completes_with_nothing(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "playground", {"conversation_ids": []})
    done = finish(emu, api, dataset_id, task["id"])
    assert done["status"] == "COMPLETED"
    assert done["result"] == {"requested_record_count": 0, "imported_record_count": 0, "skipped_record_count": 0}


def test_dataset_import_keeps_the_original_source(emu: EmulatorServer, api: Api) -> None:
    source_dataset = api.create_dataset("Source")
    file_task = api.start_import(source_dataset, "file", {"file_id": DEMO_FILE_ID})
    finish(emu, api, source_dataset, file_task["id"])
    uploaded_ids = [r["id"] for r in api.records(source_dataset)["results"][:2]]
    target = api.create_dataset("Target")
    body = {"dataset_record_ids": [DEMO_RECORD_IDS[0], *uploaded_ids]}
    task = api.start_import(target, "dataset", body)
    finish(emu, api, target, task["id"])
    records = api.records(target)["results"]
    assert [r["source"] for r in records] == ["DIRECT_INPUT", "UPLOADED_FILE", "UPLOADED_FILE"]
    assert records[0]["properties"] == {"label": "good", "reviewer": "alice"}
    assert all(r["dataset_id"] == target for r in records)


DOUBLE_IMPORTS = [
    pytest.param("campaign", {"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID}, 10, id="campaign"),
    pytest.param("file", {"file_id": DEMO_FILE_ID}, 5, id="file"),
]


def import_twice(emu: EmulatorServer, api: Api, kind: str, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The same source imported twice into a new dataset; the dataset and both tasks' results."""
    dataset_id = api.create_dataset()
    tasks = [api.start_import(dataset_id, kind, body) for _ in range(2)]
    emu.advance_clock(10)
    return dataset_id, [api.task(dataset_id, t["id"])["result"] for t in tasks]


def records_per_origin(emu: EmulatorServer, dataset_id: str) -> dict[str, int]:
    records = emu.inventory([dataset_id])["records"][dataset_id]
    counts: dict[str, int] = {}
    for record in records:
        counts[record["origin"]] = counts.get(record["origin"], 0) + 1
    return counts


def test_dedupe_is_off_by_default(emu: EmulatorServer) -> None:
    # The reference page does not say an import skips what the target holds: the emulator does not assume it.
    assert emu.configure()["dedupe_imports"] is False


@pytest.mark.parametrize(("kind", "body", "size"), DOUBLE_IMPORTS)
def test_a_double_import_holds_each_record_twice_by_default(
    emu: EmulatorServer, api: Api, kind: str, body: dict[str, Any], size: int
) -> None:
    dataset_id, results = import_twice(emu, api, kind, body)
    assert results == [{"requested_record_count": size, "imported_record_count": size, "skipped_record_count": 0}] * 2
    assert api.records(dataset_id)["count"] == 2 * size
    per_origin = records_per_origin(emu, dataset_id)
    assert len(per_origin) == size and set(per_origin.values()) == {2}


@pytest.mark.parametrize(("kind", "body", "size"), DOUBLE_IMPORTS)
def test_a_double_import_holds_each_record_once_with_dedupe_on(
    emu: EmulatorServer, api: Api, kind: str, body: dict[str, Any], size: int
) -> None:
    emu.configure(dedupe_imports=True)
    dataset_id, results = import_twice(emu, api, kind, body)
    assert results[0] == {"requested_record_count": size, "imported_record_count": size, "skipped_record_count": 0}
    assert results[1] == {"requested_record_count": size, "imported_record_count": 0, "skipped_record_count": size}
    assert api.records(dataset_id)["count"] == size
    per_origin = records_per_origin(emu, dataset_id)
    assert len(per_origin) == size and set(per_origin.values()) == {1}


def test_a_repeated_id_in_one_request_is_two_records_by_default(
    emu: EmulatorServer, api: Api, client: httpx.Client
) -> None:
    one = event_ids(client)[:1]
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "explorer", {"completion_event_ids": one * 2})
    assert finish(emu, api, dataset_id, task["id"])["result"]["imported_record_count"] == 2


def test_running_campaign_reveals_events_over_time(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    status_url = f"/v1/observability/campaigns/{DEMO_CAMPAIGN_RUNNING_ID}/status"
    assert client.get(status_url).json() == {"status": "RUNNING"}
    dataset_id = api.create_dataset()
    early = client.post(
        f"{DATASETS}/{dataset_id}/imports/from-campaign", json={"campaign_id": DEMO_CAMPAIGN_RUNNING_ID}
    )
    assert_error(early, 400, "CAMPAIGN_NO_MATCHING_EVENTS")
    emu.advance_clock(15)
    half = api.start_import(dataset_id, "campaign", {"campaign_id": DEMO_CAMPAIGN_RUNNING_ID})
    assert finish(emu, api, dataset_id, half["id"])["result"]["requested_record_count"] == 4
    emu.advance_clock(10)
    assert client.get(status_url).json() == {"status": "COMPLETED"}
    full = api.start_import(dataset_id, "campaign", {"campaign_id": DEMO_CAMPAIGN_RUNNING_ID})
    result = finish(emu, api, dataset_id, full["id"])["result"]
    # Dedupe off (the default): the four events of the first import are imported again, so the target holds them twice.
    assert result == {"requested_record_count": 8, "imported_record_count": 8, "skipped_record_count": 0}
    assert api.records(dataset_id)["count"] == 12


@pytest.mark.parametrize(
    ("kind", "body", "status", "code"),
    [
        ("campaign", {"campaign_id": MISSING}, 404, "CAMPAIGN_NOT_FOUND"),
        ("campaign", {"campaign_id": DEMO_CAMPAIGN_EMPTY_ID}, 400, "CAMPAIGN_NO_MATCHING_EVENTS"),
        ("campaign", {"campaign_id": "not-a-uuid"}, 422, "VALIDATION_ERROR"),
        ("campaign", {}, 422, "VALIDATION_ERROR"),
        ("explorer", {"completion_event_ids": ["nope"]}, 404, "SEARCH_NOT_FOUND"),
        ("explorer", {"completion_event_ids": "nope"}, 422, "VALIDATION_ERROR"),
        ("file", {"file_id": "nope"}, 404, "FILE_NOT_FOUND"),
        ("file", {"file_id": 7}, 422, "VALIDATION_ERROR"),
        ("playground", {"conversation_ids": ["conv_nope"]}, 404, "CONVERSATION_NOT_FOUND"),
        ("dataset", {"dataset_record_ids": [MISSING]}, 404, "DATASET_RECORD_NOT_FOUND"),
        ("dataset", {"dataset_record_ids": ["x"]}, 422, "VALIDATION_ERROR"),
    ],
)
def test_import_errors_are_synchronous(
    api: Api, client: httpx.Client, kind: str, body: dict[str, object], status: int, code: str
) -> None:
    dataset_id = api.create_dataset()
    response = client.post(f"{DATASETS}/{dataset_id}/imports/from-{kind}", json=body)
    assert_error(response, status, code)
    assert client.get(f"{DATASETS}/{dataset_id}/tasks").json()["tasks"]["count"] == 0


@pytest.mark.parametrize("kind", ["campaign", "explorer", "file", "playground", "dataset"])
def test_unknown_target_dataset_is_404(client: httpx.Client, kind: str) -> None:
    bodies: dict[str, dict[str, object]] = {
        "campaign": {"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID},
        "explorer": {"completion_event_ids": []},
        "file": {"file_id": DEMO_FILE_ID},
        "playground": {"conversation_ids": []},
        "dataset": {"dataset_record_ids": []},
    }
    response = client.post(f"{DATASETS}/{MISSING}/imports/from-{kind}", json=bodies[kind])
    assert_error(response, 404, "DATASET_NOT_FOUND")


def test_records_of_a_deleted_dataset_cannot_be_copied(api: Api, client: httpx.Client) -> None:
    client.delete(f"{DATASETS}/{DEMO_DATASET_ID}")
    target = api.create_dataset()
    response = client.post(
        f"{DATASETS}/{target}/imports/from-dataset", json={"dataset_record_ids": [DEMO_RECORD_IDS[0]]}
    )
    assert_error(response, 404, "DATASET_RECORD_NOT_FOUND")


def test_task_fails_when_its_dataset_is_deleted_before_it_ends(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    task = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    api.client.delete(f"{DATASETS}/{dataset_id}")
    emu.advance_clock(10)
    stats = emu.stats()["tasks"][task["id"]]
    assert stats["status"] == "FAILED"
    assert emu.emulator.world.records_by_dataset[dataset_id] == []


def test_export_builds_a_jsonl_file_served_without_auth(emu: EmulatorServer, client: httpx.Client) -> None:
    response = client.get(f"{DATASETS}/{DEMO_DATASET_ID}/exports/to-jsonl")
    assert response.status_code == 200 and set(response.json()) == {"file_url"}
    url = response.json()["file_url"]
    assert url.startswith(emu.url + "/_emulator/exports/")
    download = httpx.get(url)
    assert download.status_code == 200
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"payload", "properties", "source"}
    assert lines[0]["source"] == "DIRECT_INPUT" and lines[0]["properties"]["label"] == "good"
    assert httpx.get(emu.url + "/_emulator/exports/nope.jsonl").status_code == 404


def test_export_settles_finished_tasks_first(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    emu.advance_clock(10)
    url = client.get(f"{DATASETS}/{dataset_id}/exports/to-jsonl").json()["file_url"]
    assert len(httpx.get(url).text.splitlines()) == 5
