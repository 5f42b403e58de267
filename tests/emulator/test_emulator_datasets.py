"""The dataset and record endpoints: status codes, exact shapes, pagination, validation errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from emulator.fixtures import DEMO_DATASET_ID, DEMO_EMPTY_DATASET_ID, DEMO_FILE_ID, DEMO_RECORD_IDS

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"
DATASET_KEYS = {
    "id", "created_at", "updated_at", "deleted_at", "name", "description", "owner_id", "workspace_id", "slug",
}  # fmt: skip
RECORD_KEYS = {"id", "created_at", "updated_at", "deleted_at", "dataset_id", "payload", "properties", "source"}
MISSING = "6d7c6a2e-0000-4000-8000-000000000000"


def query(url: str) -> dict[str, str]:
    parsed = httpx.URL(url)
    return dict(parsed.params)


def assert_error(response: httpx.Response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail["message"], str) and detail["message"]
    assert detail["error_code"] == code


def test_create_returns_201_with_every_dataset_key(client: httpx.Client) -> None:
    response = client.post(DATASETS, json={"name": "My Dataset", "description": "desc"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == DATASET_KEYS
    assert body["deleted_at"] is None
    assert body["name"] == "My Dataset" and body["description"] == "desc"
    assert body["slug"] == "my-dataset"
    assert body["created_at"] == body["updated_at"] == "2026-01-01T00:00:00.000Z"


def test_slugs_stay_unique(client: httpx.Client) -> None:
    slugs = [client.post(DATASETS, json={"name": "Same", "description": ""}).json()["slug"] for _ in range(3)]
    assert slugs == ["same", "same-2", "same-3"]


def test_list_is_wrapped_paginated_and_newest_first(client: httpx.Client, api: Api) -> None:
    created = [api.create_dataset(f"Paged {i}") for i in range(3)]
    body = client.get(DATASETS, params={"page_size": 2, "page": 1}).json()
    page = body["datasets"]
    assert page["count"] == 5  # 3 created + 2 from the demo world
    assert [d["id"] for d in page["results"]] == [created[2], created[1]]
    assert page["previous"] is None
    assert httpx.URL(page["next"]).path == DATASETS
    assert query(page["next"]) == {"page": "2", "page_size": "2"}
    last = client.get(DATASETS, params={"page_size": 2, "page": 3}).json()["datasets"]
    assert [d["id"] for d in last["results"]] == [DEMO_DATASET_ID]
    assert last["next"] is None and query(last["previous"]) == {"page": "2", "page_size": "2"}


def test_page_past_the_end_is_empty(client: httpx.Client) -> None:
    page = client.get(DATASETS, params={"page": 9}).json()["datasets"]
    assert page["count"] == 2 and page["results"] == [] and page["next"] is None
    assert query(page["previous"]) == {"page": "1", "page_size": "50"}


def test_q_filters_names_case_insensitively(client: httpx.Client, api: Api) -> None:
    api.create_dataset("Alpha Beta")
    names = [d["name"] for d in client.get(DATASETS, params={"q": "BETA"}).json()["datasets"]["results"]]
    assert names == ["Alpha Beta"]


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"page": "x"}, {"page_size": "1.5"}],
)
def test_bad_paging_is_422_validation_error(client: httpx.Client, params: dict[str, object]) -> None:
    assert_error(client.get(DATASETS, params=params), 422, "VALIDATION_ERROR")
    url = f"{DATASETS}/{DEMO_DATASET_ID}/records"
    assert_error(client.get(url, params=params), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"description": "x"},
        {"name": None, "description": "x"},
        {"name": "x", "description": None},
        {"name": "", "description": "x"},
        ["not", "an", "object"],
    ],
)
def test_bad_create_body_is_422(client: httpx.Client, body: object) -> None:
    assert_error(client.post(DATASETS, json=body), 422, "VALIDATION_ERROR")


def test_invalid_json_is_422(client: httpx.Client) -> None:
    response = client.post(DATASETS, content=b"{nope", headers={"content-type": "application/json"})
    assert_error(response, 422, "VALIDATION_ERROR")


def test_fetch_and_unknown_and_malformed_ids(client: httpx.Client) -> None:
    body = client.get(f"{DATASETS}/{DEMO_DATASET_ID}").json()
    assert set(body) == DATASET_KEYS and body["name"] == "Support answers"
    assert_error(client.get(f"{DATASETS}/{MISSING}"), 404, "DATASET_NOT_FOUND")
    # A value that is not UUID-shaped is a slug (3.x); an unknown one is a missing dataset, not a malformed id.
    assert_error(client.get(f"{DATASETS}/not-a-uuid"), 404, "DATASET_NOT_FOUND")
    assert_error(client.get(f"{DATASETS}/{DEMO_DATASET_ID}/tasks/not-a-uuid"), 422, "VALIDATION_ERROR")
    # An upper-case or hyphen-less uuid names the same dataset.
    assert client.get(f"{DATASETS}/{DEMO_DATASET_ID.upper()}").status_code == 200
    assert client.get(f"{DATASETS}/{DEMO_DATASET_ID.replace('-', '')}").status_code == 200


def test_update_sets_given_fields_and_null_leaves_unchanged(client: httpx.Client, api: Api, emu: object) -> None:
    dataset_id = api.create_dataset("Before", "old")
    url = f"{DATASETS}/{dataset_id}"
    unchanged = client.patch(url, json={})
    assert unchanged.status_code == 200 and unchanged.json()["name"] == "Before"
    renamed = client.patch(url, json={"name": "After"}).json()
    assert renamed["name"] == "After" and renamed["description"] == "old"
    kept = client.patch(url, json={"description": None}).json()
    assert kept["description"] == "old"
    assert set(kept) == DATASET_KEYS
    assert_error(client.patch(url, json={"name": 3}), 422, "VALIDATION_ERROR")
    assert_error(client.patch(f"{DATASETS}/{MISSING}", json={}), 404, "DATASET_NOT_FOUND")


def test_update_bumps_updated_at_only_on_change(client: httpx.Client, api: Api, emu: object) -> None:
    from emulator.testing import EmulatorServer

    assert isinstance(emu, EmulatorServer)
    dataset_id = api.create_dataset("Clocked")
    emu.advance_clock(5)
    same = client.patch(f"{DATASETS}/{dataset_id}", json={"name": "Clocked"}).json()
    assert same["updated_at"] == "2026-01-01T00:00:00.000Z"
    changed = client.patch(f"{DATASETS}/{dataset_id}", json={"name": "New"}).json()
    assert changed["updated_at"] == "2026-01-01T00:00:05.000Z"


def test_delete_is_204_empty_and_soft(client: httpx.Client, api: Api) -> None:
    dataset_id = api.create_dataset("Doomed")
    response = client.delete(f"{DATASETS}/{dataset_id}")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get(f"{DATASETS}/{dataset_id}"), 404, "DATASET_NOT_FOUND")
    assert_error(client.delete(f"{DATASETS}/{dataset_id}"), 404, "DATASET_NOT_FOUND")
    assert_error(client.get(f"{DATASETS}/{dataset_id}/records"), 404, "DATASET_NOT_FOUND")
    ids = [d["id"] for d in client.get(DATASETS).json()["datasets"]["results"]]
    assert dataset_id not in ids


def test_list_records_of_the_demo_dataset(api: Api) -> None:
    page = api.records(DEMO_DATASET_ID)
    assert page["count"] == 3 and page["next"] is None and page["previous"] is None
    assert [r["id"] for r in page["results"]] == list(DEMO_RECORD_IDS)
    record = page["results"][0]
    assert set(record) == RECORD_KEYS
    assert record["deleted_at"] is None and record["source"] == "DIRECT_INPUT"
    assert record["dataset_id"] == DEMO_DATASET_ID
    assert isinstance(record["properties"], dict)
    assert all(isinstance(m, dict) for m in record["payload"]["messages"])
    assert api.records(DEMO_EMPTY_DATASET_ID)["count"] == 0


def test_records_paginate_in_insertion_order(client: httpx.Client, api: Api) -> None:
    page = api.records(DEMO_DATASET_ID, page_size=2, page=2)
    assert [r["id"] for r in page["results"]] == [DEMO_RECORD_IDS[2]]
    assert page["next"] is None and query(page["previous"]) == {"page": "1", "page_size": "2"}


def test_create_record_201_direct_input_and_extra_payload_keys(client: httpx.Client, api: Api) -> None:
    dataset_id = api.create_dataset()
    body = {
        "payload": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "k": 1},
        "properties": {"label": "ok"},
    }
    response = client.post(f"{DATASETS}/{dataset_id}/records", json=body)
    assert response.status_code == 201
    record = response.json()
    assert set(record) == RECORD_KEYS
    assert record["source"] == "DIRECT_INPUT" and record["payload"] == body["payload"]
    assert record["properties"] == {"label": "ok"} and record["dataset_id"] == dataset_id
    assert api.records(dataset_id)["results"] == [record]


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {}},
        {"payload": [{"role": "user"}], "properties": {}},
        {"payload": "hi"},
        {"payload": {"messages": []}, "properties": [None]},
        # 3.x create takes only these two sources; the import-only ones are refused.
        {"payload": {}, "source": "EXPLORER"},
        {"payload": {}, "source": "UPLOADED_FILE"},
        {"payload": {}, "source": 3},
    ],
)
def test_bad_record_body_is_422(client: httpx.Client, body: object) -> None:
    url = f"{DATASETS}/{DEMO_DATASET_ID}/records"
    assert_error(client.post(url, json=body), 422, "VALIDATION_ERROR")


def test_free_form_payload_and_create_sources(client: httpx.Client) -> None:
    url = f"{DATASETS}/{DEMO_DATASET_ID}/records"
    free = client.post(url, json={"payload": {"question": "q?", "context": {"doc": 1}}})
    assert free.status_code == 201, free.text
    assert free.json()["payload"] == {"question": "q?", "context": {"doc": 1}}
    assert free.json()["properties"] == {} and free.json()["source"] == "DIRECT_INPUT"
    span = client.post(url, json={"payload": {"input": "x"}, "properties": {"k": 1}, "source": "TELEMETRY_SPAN"})
    assert span.status_code == 201 and span.json()["source"] == "TELEMETRY_SPAN"
    # The 2.5.0 shape is still one of the accepted objects.
    legacy = client.post(url, json={"payload": {"messages": [{"role": "user", "content": "hi"}]}, "properties": {}})
    assert legacy.status_code == 201 and legacy.json()["payload"]["messages"][0]["content"] == "hi"


def test_slug_names_the_dataset_in_every_path(client: httpx.Client, api: Api) -> None:
    dataset_id = api.create_dataset("Slug Target")
    by_slug = client.get(f"{DATASETS}/slug-target")
    assert by_slug.status_code == 200 and by_slug.json()["id"] == dataset_id
    record = client.post(f"{DATASETS}/slug-target/records", json={"payload": {"a": 1}})
    assert record.status_code == 201 and record.json()["dataset_id"] == dataset_id
    task = client.post(f"{DATASETS}/slug-target/imports/from-file", json={"file_id": DEMO_FILE_ID})
    assert task.status_code == 202 and task.json()["dataset_id"] == dataset_id
    assert client.get(f"{DATASETS}/slug-target/tasks/{task.json()['id']}").json()["id"] == task.json()["id"]
    assert client.get(f"{DATASETS}/slug-target/records").json()["records"]["count"] == 1
    renamed = client.patch(f"{DATASETS}/slug-target", json={"name": "Other name"}).json()
    assert renamed["slug"] == "slug-target"  # a rename keeps the slug
    assert client.delete(f"{DATASETS}/slug-target").status_code == 204
    assert_error(client.get(f"{DATASETS}/slug-target"), 404, "DATASET_NOT_FOUND")
    assert_error(client.get(f"{DATASETS}/{dataset_id}"), 404, "DATASET_NOT_FOUND")


def test_slug_of_a_deleted_dataset_is_free_again(client: httpx.Client, api: Api) -> None:
    first = api.create_dataset("Reused")
    assert client.delete(f"{DATASETS}/{first}").status_code == 204
    second = client.post(DATASETS, json={"name": "Reused", "description": ""}).json()
    assert second["slug"] == "reused"
    assert client.get(f"{DATASETS}/reused").json()["id"] == second["id"] != first


def test_uuid_shaped_names_never_get_a_uuid_shaped_slug(client: httpx.Client) -> None:
    body = client.post(DATASETS, json={"name": MISSING, "description": ""}).json()
    assert body["slug"] == f"{MISSING}-dataset"
    # The UUID-shaped value is an id, so the dataset is not found through its name.
    assert_error(client.get(f"{DATASETS}/{MISSING}"), 404, "DATASET_NOT_FOUND")
    assert client.get(f"{DATASETS}/{MISSING}-dataset").json()["id"] == body["id"]
