"""Reliability tests reuse the integration fixtures: real Redis, emulator on a socket, both ledgers, processes.

The adoption tests also share a runtime and a target dataset, built on whatever ``emulator`` their module defines
(each sets its own frozen clock).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from emulator.testing import EmulatorServer
from jobs.runtime import Runtime
from tests.integration.conftest import (  # noqa: F401 - fixtures
    api,
    broker_url,
    emulator,
    ledger,
    processes,
    requester,
    service,
    service_env,
    settings,
)

from .adoption import make_runtime


@pytest.fixture
def runtime(emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Runtime:  # noqa: F811
    return make_runtime(emulator, session_factory)


@pytest.fixture
def dataset_id(runtime: Runtime) -> str:
    with runtime.client_factory() as client:
        return client.create_dataset("target", "d").id
