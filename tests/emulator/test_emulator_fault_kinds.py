"""The fault kinds beyond an error status: a reset connection (no answer at all) and a slow answer."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from emulator.config import ConfigError, FaultRule
from emulator.fixtures import DEMO_DATASET_ID, DEMO_FILE_ID
from emulator.testing import EmulatorServer

if TYPE_CHECKING:
    from tests.emulator.conftest import Api

DATASETS = "/v1/observability/datasets"


def tasks_of(client: httpx.Client, dataset_id: str) -> int:
    count: int = client.get(f"{DATASETS}/{dataset_id}/tasks").json()["tasks"]["count"]
    return count


def test_a_reset_gets_no_answer_and_the_next_request_is_served(emu: EmulatorServer, client: httpx.Client) -> None:
    config = emu.configure(faults={"list_datasets": {"kind": "reset", "next": 1}})
    assert config["faults"]["list_datasets"]["kind"] == "reset"
    with pytest.raises(httpx.TransportError) as raised:
        client.get(DATASETS)
    # A reset, not an error answer: the client sees the connection die before any status line.
    assert isinstance(raised.value, httpx.ReadError | httpx.RemoteProtocolError)
    assert client.get(DATASETS).status_code == 200
    assert emu.stats()["responses"]["list_datasets"] == {"reset": 1, "200": 1}


def test_a_reset_before_the_handler_starts_nothing(emu: EmulatorServer, api: Api, client: httpx.Client) -> None:
    dataset_id = api.create_dataset()
    emu.configure(faults={"import_from_file": {"kind": "reset", "next": 1}})
    with pytest.raises(httpx.TransportError):
        client.post(f"{DATASETS}/{dataset_id}/imports/from-file", json={"file_id": DEMO_FILE_ID})
    assert tasks_of(client, dataset_id) == 0


def test_a_reset_after_the_handler_loses_the_answer_of_a_started_import(
    emu: EmulatorServer, api: Api, client: httpx.Client
) -> None:
    dataset_id = api.create_dataset()
    emu.configure(faults={"import_from_file": {"kind": "reset", "next": 1, "phase": "after"}})
    with pytest.raises(httpx.TransportError):
        client.post(f"{DATASETS}/{dataset_id}/imports/from-file", json={"file_id": DEMO_FILE_ID})
    assert tasks_of(client, dataset_id) == 1
    assert emu.stats()["tasks_created"] == {dataset_id: 1}


def test_a_slow_answer_times_out_the_client_and_only_the_next_n_are_slow(emu: EmulatorServer) -> None:
    emu.configure(faults={"fetch_dataset": {"kind": "slow", "delay_ms": 600, "next": 1}})
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=0.2) as impatient:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(f"{DATASETS}/{DEMO_DATASET_ID}")
        assert time.perf_counter() - started < 0.5
        assert impatient.get(f"{DATASETS}/{DEMO_DATASET_ID}").status_code == 200


def test_a_slow_import_still_starts_its_task_when_the_client_gave_up(emu: EmulatorServer, api: Api) -> None:
    dataset_id = api.create_dataset()
    emu.configure(faults={"import_from_file": {"kind": "slow", "delay_ms": 300, "next": 1}})
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(f"{DATASETS}/{dataset_id}/imports/from-file", json={"file_id": DEMO_FILE_ID})
        deadline = time.monotonic() + 5
        while tasks_of(impatient, dataset_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tasks_of(impatient, dataset_id) == 1


def test_a_slow_answer_is_the_real_answer(emu: EmulatorServer, client: httpx.Client) -> None:
    emu.configure(faults={"fetch_dataset": {"kind": "slow", "delay_ms": 150, "phase": "after"}})
    started = time.perf_counter()
    response = client.get(f"{DATASETS}/{DEMO_DATASET_ID}")
    assert time.perf_counter() - started >= 0.15
    assert response.status_code == 200 and response.json()["id"] == DEMO_DATASET_ID


def test_without_a_server_hook_a_reset_answers_with_its_status(emu: EmulatorServer, client: httpx.Client) -> None:
    faults = emu.emulator.faults
    closer, faults.closer = faults.closer, None
    try:
        emu.configure(faults={"list_datasets": {"kind": "reset", "status": 502, "next": 1}})
        assert client.get(DATASETS).status_code == 502
    finally:
        faults.closer = closer


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "slow"}, "delay_ms is required"),
        ({"kind": "slow", "delay_ms": -1}, "delay_ms must be"),
        ({"kind": "reset", "delay_ms": 5}, "slow faults only"),
    ],
)
def test_fault_kind_validation(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FaultRule.from_json("x", raw)


def test_a_status_rule_reads_as_before_and_other_kinds_say_theirs() -> None:
    assert "kind" not in FaultRule.from_json("x", {"status": 503}).to_json()
    assert FaultRule.from_json("x", {"kind": "slow", "delay_ms": 5}).to_json()["delay_ms"] == 5.0
