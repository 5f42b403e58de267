"""The record operations under /v1/observability/dataset-records: fetch, payload and properties updates, delete,
bulk delete and live judging."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from emulator.fixtures import DEMO_DATASET_ID, DEMO_FILE_ID, DEMO_RECORD_IDS
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

RECORDS = "/v1/observability/dataset-records"
DATASETS = "/v1/observability/datasets"
MISSING = "6d7c6a2e-0000-4000-8000-000000000000"
RECORD_KEYS = {"id", "created_at", "updated_at", "deleted_at", "dataset_id", "payload", "properties", "source"}
CLASSIFIER = {
    "name": "helpfulness",
    "description": "Is the answer helpful?",
    "model_name": "mistral-small-latest",
    "output": {
        "type": "CLASSIFICATION",
        "options": [{"value": "good", "description": "helpful"}, {"value": "bad", "description": "not helpful"}],
    },
    "instructions": "Judge the last answer.",
    "tools": [],
}
SCORER = {
    **CLASSIFIER,
    "output": {"type": "REGRESSION", "min_description": "useless", "max_description": "perfect", "min": 1, "max": 5},
}


def assert_error(response: httpx.Response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"]["error_code"] == code


def test_fetch_a_record(client: httpx.Client) -> None:
    response = client.get(f"{RECORDS}/{DEMO_RECORD_IDS[0]}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    record = response.json()
    assert set(record) == RECORD_KEYS and record["dataset_id"] == DEMO_DATASET_ID
    assert record["properties"] == {"label": "good", "reviewer": "alice"}
    # The same object as in the dataset's list.
    listed = client.get(f"{DATASETS}/{DEMO_DATASET_ID}/records").json()["records"]["results"]
    assert record in listed


def test_unknown_and_malformed_record_ids(client: httpx.Client) -> None:
    assert_error(client.get(f"{RECORDS}/{MISSING}"), 404, "DATASET_RECORD_NOT_FOUND")
    assert_error(client.get(f"{RECORDS}/not-a-uuid"), 422, "VALIDATION_ERROR")
    assert_error(client.delete(f"{RECORDS}/{MISSING}"), 404, "DATASET_RECORD_NOT_FOUND")
    assert_error(client.put(f"{RECORDS}/{MISSING}/payload", json={"payload": {}}), 404, "DATASET_RECORD_NOT_FOUND")
    assert_error(
        client.put(f"{RECORDS}/{MISSING}/properties", json={"properties": {}}), 404, "DATASET_RECORD_NOT_FOUND"
    )
    judged = client.post(f"{RECORDS}/{MISSING}/live-judging", json={"judge_definition": CLASSIFIER})
    assert_error(judged, 404, "DATASET_RECORD_NOT_FOUND")


def test_records_of_a_deleted_dataset_are_gone(client: httpx.Client) -> None:
    assert client.delete(f"{DATASETS}/{DEMO_DATASET_ID}").status_code == 204
    assert_error(client.get(f"{RECORDS}/{DEMO_RECORD_IDS[0]}"), 404, "DATASET_RECORD_NOT_FOUND")


def test_update_payload_and_properties(emu: EmulatorServer, client: httpx.Client) -> None:
    url = f"{RECORDS}/{DEMO_RECORD_IDS[1]}"
    before = client.get(url).json()
    emu.advance_clock(5)
    updated = client.put(f"{url}/payload", json={"payload": {"question": "free-form now"}})
    assert updated.status_code == 204 and updated.content == b""
    after = client.get(url).json()
    assert after["payload"] == {"question": "free-form now"} and after["updated_at"] > before["updated_at"]
    assert after["properties"] == before["properties"] and after["created_at"] == before["created_at"]
    # PUT replaces the properties: keys left out are gone.
    assert client.put(f"{url}/properties", json={"properties": {"only": True}}).status_code == 204
    assert client.get(url).json()["properties"] == {"only": True}


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("payload", {}),
        ("payload", {"payload": [1]}),
        ("payload", {"payload": None}),
        ("properties", {"properties": "x"}),
        ("properties", {}),
    ],
)
def test_bad_update_bodies_are_422(client: httpx.Client, suffix: str, body: dict[str, Any]) -> None:
    assert_error(client.put(f"{RECORDS}/{DEMO_RECORD_IDS[0]}/{suffix}", json=body), 422, "VALIDATION_ERROR")


def test_delete_a_record(client: httpx.Client) -> None:
    response = client.delete(f"{RECORDS}/{DEMO_RECORD_IDS[0]}")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get(f"{RECORDS}/{DEMO_RECORD_IDS[0]}"), 404, "DATASET_RECORD_NOT_FOUND")
    page = client.get(f"{DATASETS}/{DEMO_DATASET_ID}/records").json()["records"]
    assert page["count"] == 2 and DEMO_RECORD_IDS[0] not in {r["id"] for r in page["results"]}
    assert_error(client.delete(f"{RECORDS}/{DEMO_RECORD_IDS[0]}"), 404, "DATASET_RECORD_NOT_FOUND")


def test_bulk_delete_passes_over_unknown_ids_so_a_retry_succeeds(client: httpx.Client) -> None:
    body = {"dataset_record_ids": [DEMO_RECORD_IDS[0], DEMO_RECORD_IDS[2], MISSING]}
    for _ in range(2):
        response = client.post(f"{RECORDS}/bulk-delete", json=body)
        assert response.status_code == 204 and response.content == b""
    page = client.get(f"{DATASETS}/{DEMO_DATASET_ID}/records").json()["records"]
    assert [r["id"] for r in page["results"]] == [DEMO_RECORD_IDS[1]]


@pytest.mark.parametrize(
    "body", [{}, {"dataset_record_ids": "x"}, {"dataset_record_ids": ["not-a-uuid"]}, {"dataset_record_ids": [1]}]
)
def test_bad_bulk_delete_bodies_are_422(client: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(client.post(f"{RECORDS}/bulk-delete", json=body), 422, "VALIDATION_ERROR")
    assert client.get(f"{DATASETS}/{DEMO_DATASET_ID}/records").json()["records"]["count"] == 3


def test_imported_records_are_records_like_any_other(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    emu.advance_clock(10)
    ids = [r["id"] for r in api.records(dataset_id)["results"]]
    assert len(ids) == 5
    assert api.client.get(f"{RECORDS}/{ids[0]}").json()["source"] == "UPLOADED_FILE"
    assert api.client.put(f"{RECORDS}/{ids[0]}/properties", json={"properties": {"seen": 1}}).status_code == 204
    assert api.records(dataset_id)["results"][0]["properties"] == {"seen": 1}


def test_a_deleted_imported_record_comes_back_on_the_next_import(emu: EmulatorServer, api: Api) -> None:
    # Dedupe on: the second import skips the three lines still held and adds back only the two deleted.
    emu.configure(dedupe_imports=True)
    dataset_id = api.create_dataset()
    first = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    emu.advance_clock(10)
    api.task(dataset_id, first["id"])
    ids = [r["id"] for r in api.records(dataset_id)["results"]]
    assert api.client.post(f"{RECORDS}/bulk-delete", json={"dataset_record_ids": ids[:2]}).status_code == 204
    again = api.start_import(dataset_id, "file", {"file_id": DEMO_FILE_ID})
    emu.advance_clock(10)
    assert api.task(dataset_id, again["id"])["result"]["imported_record_count"] == 2
    assert api.records(dataset_id)["count"] == 5


def test_live_judging_classification_is_one_of_the_options_and_stable(client: httpx.Client) -> None:
    url = f"{RECORDS}/{DEMO_RECORD_IDS[0]}/live-judging"
    response = client.post(url, json={"judge_definition": CLASSIFIER})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    verdict = response.json()
    assert set(verdict) == {"analysis", "answer"} and isinstance(verdict["analysis"], str)
    assert verdict["answer"] in {"good", "bad"}
    assert client.post(url, json={"judge_definition": CLASSIFIER}).json() == verdict
    answers = {
        client.post(f"{RECORDS}/{record_id}/live-judging", json={"judge_definition": CLASSIFIER}).json()["answer"]
        for record_id in DEMO_RECORD_IDS
    }
    assert answers <= {"good", "bad"}


def test_live_judging_regression_is_a_number_in_range(client: httpx.Client) -> None:
    for record_id in DEMO_RECORD_IDS:
        verdict = client.post(f"{RECORDS}/{record_id}/live-judging", json={"judge_definition": SCORER}).json()
        assert isinstance(verdict["answer"], float) and 1 <= verdict["answer"] <= 5


@pytest.mark.parametrize(
    "judge",
    [
        None,
        {**CLASSIFIER, "name": 1},
        {**CLASSIFIER, "tools": "none"},
        {**CLASSIFIER, "output": {"type": "CLASSIFICATION", "options": []}},
        {**CLASSIFIER, "output": {"type": "CLASSIFICATION", "options": [{"value": "x"}]}},
        {**CLASSIFIER, "output": {"type": "SCORE"}},
        {
            **SCORER,
            "output": {"type": "REGRESSION", "min_description": "a", "max_description": "b", "min": 3, "max": 1},
        },
        {**SCORER, "output": {"type": "REGRESSION", "min_description": "a"}},
    ],
)
def test_bad_judge_definitions_are_422(client: httpx.Client, judge: object) -> None:
    response = client.post(f"{RECORDS}/{DEMO_RECORD_IDS[0]}/live-judging", json={"judge_definition": judge})
    assert_error(response, 422, "VALIDATION_ERROR")


def test_record_routes_count_in_stats_and_take_faults(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(faults={"fetch_record": {"status": 503, "next": 1}})
    assert client.get(f"{RECORDS}/{DEMO_RECORD_IDS[0]}").status_code == 503
    assert client.get(f"{RECORDS}/{DEMO_RECORD_IDS[0]}").status_code == 200
    assert emu.stats()["responses"]["fetch_record"] == {"503": 1, "200": 1}
