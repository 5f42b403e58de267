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

from .service import Requester, ServiceProcesses

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_"))}
    env.update(
        {
            "DSIMPORT_HOME": str(tmp_path / "home"),
            "DSIMPORT_DATABASE_URL": database_url,
            "DSIMPORT_BROKER_URL": broker_url,
            "DSIMPORT_API_BASE_URL": emulator.url,
            "MISTRAL_API_KEY": emulator.api_key,
            "DSIMPORT_POLL_TICK_S": "0.5",
            "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.5",
            "DSIMPORT_POLL_MAX_INTERVAL_S": "2",
            "DSIMPORT_RECOVERY_INTERVAL_S": "5",
            "DSIMPORT_SUBMIT_RETRY_BACKOFF_S": "0.5",
            "DSIMPORT_LOG_LEVEL": "INFO",
        }
    )
    (tmp_path / "home").mkdir()
    return env


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    fields: dict[str, Any] = {
        key.removeprefix("DSIMPORT_").lower(): value
        for key, value in service_env.items()
        if key.startswith("DSIMPORT_")
    }
    return Settings(api_key=service_env["MISTRAL_API_KEY"], **fields)


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
