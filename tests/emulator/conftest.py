"""Fixtures: the emulator on a real loopback socket, with a frozen clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator import EmulatorClock
from emulator.testing import EmulatorServer

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DATASETS = "/v1/observability/datasets"


class Api:
    """Thin helpers over an authenticated httpx client; they assert the success status."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def create_dataset(self, name: str = "Tests", description: str = "") -> str:
        response = self.client.post(DATASETS, json={"name": name, "description": description})
        assert response.status_code == 201, response.text
        dataset_id: str = response.json()["id"]
        return dataset_id

    def start_import(self, dataset_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"{DATASETS}/{dataset_id}/imports/from-{kind}", json=body)
        assert response.status_code == 202, response.text
        task: dict[str, Any] = response.json()
        return task

    def task(self, dataset_id: str, task_id: str) -> dict[str, Any]:
        response = self.client.get(f"{DATASETS}/{dataset_id}/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def records(self, dataset_id: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(f"{DATASETS}/{dataset_id}/records", params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()["records"]
        return page


@pytest.fixture(scope="module")
def module_clock() -> EmulatorClock:
    return EmulatorClock(start=T0, frozen=True)


@pytest.fixture(scope="module")
def server(module_clock: EmulatorClock) -> Iterator[EmulatorServer]:
    """One server per test module (starting one takes ~0.2 s); each test gets it reset."""
    with EmulatorServer(seed="demo", task_duration_s=10, clock=module_clock) as running:
        yield running


@pytest.fixture
def clock(server: EmulatorServer, module_clock: EmulatorClock) -> EmulatorClock:
    """Frozen at T0 (2026-01-01T00:00:00Z) when the test starts; the world is freshly seeded."""
    module_clock.freeze()
    module_clock.set(T0)
    server.reset()
    return module_clock


@pytest.fixture
def emu(server: EmulatorServer, clock: EmulatorClock) -> EmulatorServer:
    """The emulator: demo world, 10 s tasks, frozen clock at T0, default knobs, zeroed stats."""
    return server


@pytest.fixture(scope="module")
def module_client(server: EmulatorServer) -> Iterator[httpx.Client]:
    # Built once per module: each httpx.Client loads the CA bundle (~40 ms).
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture
def client(emu: EmulatorServer, module_client: httpx.Client) -> httpx.Client:
    """An authenticated client of the freshly reset emulator."""
    return module_client


@pytest.fixture
def api(client: httpx.Client) -> Api:
    return Api(client)
