"""Integration fixtures: the real Redis, the emulator on a socket, a migrated ledger, worker and beat processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.db import make_engine, make_session_factory
from tests.fixtures.redis_db import flushed_redis
from worker.settings import Settings

from .service import Requester, ServiceProcesses, service_environment, settings_from_env

TEST_REDIS_URL = os.environ.get("DSIMPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def broker_url() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(task_duration_s=(0.5, 1.5)) as server:
        yield server


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[DatasetsClient]:
    with DatasetsClient(emulator.api_key, base_url=emulator.url) as client:
        yield client


@pytest.fixture
def service_env(tmp_path: Path, database_url: str, broker_url: str, emulator: EmulatorServer) -> dict[str, str]:
    return service_environment(
        tmp_path / "home",
        database_url=database_url,
        broker_url=broker_url,
        api_url=emulator.url,
        api_key=emulator.api_key,
        **{"DSIMPORT_POLL_MAX_INTERVAL_S": "2", "DSIMPORT_SUBMIT_RETRY_BACKOFF_S": "0.5"},
    )


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return settings_from_env(service_env)


@pytest.fixture
def ledger(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def requester(settings: Settings, ledger: Any) -> Iterator[Requester]:
    requester = Requester(settings, ledger)
    yield requester
    requester.close()


@pytest.fixture
def processes(service_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcesses]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    service = ServiceProcesses(service_env, log_dir)
    yield service
    service.stop()


@pytest.fixture
def service(processes: ServiceProcesses) -> ServiceProcesses:
    """One worker (concurrency 2) and beat."""
    processes.start_worker()
    processes.start_beat()
    return processes
