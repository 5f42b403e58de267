"""Reliability fixtures: the service stack of tests/fixtures/service_stack.py with the integration suite's defaults.

The adoption tests also share a runtime and a target dataset, built on the ``emulator`` their module configures
(each sets its own frozen clock through ``emulator_options``).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from emulator.testing import EmulatorServer
from jobs.runtime import Runtime
from tests.fixtures.direct_runtime import direct_runtime

from .adoption import TUNING


@pytest.fixture
def runtime(emulator: EmulatorServer, session_factory: sessionmaker[Session]) -> Runtime:
    return direct_runtime(emulator, session_factory, TUNING)


@pytest.fixture
def dataset_id(runtime: Runtime) -> str:
    with runtime.client_factory() as client:
        return client.create_dataset("target", "d").id
