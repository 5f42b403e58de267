"""The emulator on a real socket, and the official SDK (mistralai==2.5.0) pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mistralai.client import Mistral

from emulator import EmulatorClock
from emulator.testing import EmulatorServer

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# The "operation x SDK version" table of test_sdk_versions, printed at the end of the run.
SDK_TABLE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    table = config.stash.get(SDK_TABLE, None)
    if table is not None:
        terminalreporter.write_sep("-", "SDK operations against the emulator")
        terminalreporter.write_line(table)


@pytest.fixture(autouse=True)
def _sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Telemetry would POST traces to api.mistral.ai; an ambient key would mask the 401 path.
    for name in ("MISTRAL_SDK_TELEMETRY", "MISTRAL_OTLP_TRACES_ENDPOINT", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def module_clock() -> EmulatorClock:
    return EmulatorClock(start=T0, frozen=True)


@pytest.fixture(scope="module")
def server(module_clock: EmulatorClock) -> Iterator[EmulatorServer]:
    with EmulatorServer(seed="demo", task_duration_s=5, clock=module_clock) as running:
        yield running


@pytest.fixture
def emu(server: EmulatorServer, module_clock: EmulatorClock) -> EmulatorServer:
    """Demo world, 5 s tasks, clock frozen at T0 (move it with ``emu.advance_clock``)."""
    module_clock.set(T0)
    server.reset()
    return server


@pytest.fixture
def sdk(emu: EmulatorServer) -> Iterator[Mistral]:
    with Mistral(api_key=emu.api_key, server_url=emu.url) as client:
        yield client
