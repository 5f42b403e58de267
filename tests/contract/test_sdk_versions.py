"""Both official SDK generations against the emulator: 2.5.0 (the project's environment) and 3.7.0 (today's API, in
the cached environment of `sdk_venv`), each running `sdk_driver` as a subprocess against one EmulatorServer.

Produces the table "operation x SDK 2.5.0 / 3.7.0 x pass" (printed at the end of the run and written to
``.cache/sdk-contract-table.md``). 3.7.0 is skipped only when its package cannot be fetched from the package index,
and never under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorClock
from emulator.fixtures import (
    DEMO_CAMPAIGN_COMPLETED_ID,
    DEMO_CHAT_SPANS,
    DEMO_CONVERSATION_IDS,
    DEMO_FILE_ID,
    DEMO_RECORD_IDS,
    DEMO_SPAN_COUNT,
    DEMO_TRACE_IDS,
)
from emulator.testing import EmulatorServer
from tests.contract.conftest import SDK_TABLE, T0
from tests.contract.sdk_driver import OPERATIONS
from tests.contract.sdk_venv import CACHE, SDK_VERSION, SdkUnavailable, ensure_sdk_venv, may_skip

pytestmark = pytest.mark.contract

DRIVER = Path(__file__).with_name("sdk_driver.py")
TABLE_FILE = CACHE / "sdk-contract-table.md"
FIXTURE = {
    "file_id": DEMO_FILE_ID,
    "conversation_ids": list(DEMO_CONVERSATION_IDS),
    "record_ids": list(DEMO_RECORD_IDS),
    "campaign_id": DEMO_CAMPAIGN_COMPLETED_ID,
    # Two of the demo's chat-completion events.
    "event_ids": ["4b06fc62-9157-5220-9840-9665faec0ae4", "cddc2760-60f2-5de2-ae15-4aa963776c39"],
    "chat_spans": [list(pair) for pair in DEMO_CHAT_SPANS],
    "trace_ids": list(DEMO_TRACE_IDS),
    "span_count": DEMO_SPAN_COUNT,
    "now": T0,
}
GENERATION = {"2.5.0": "2", SDK_VERSION: "3"}
# Telemetry export would POST to api.mistral.ai; an ambient key would be sent instead of the emulator's.
_SCRUBBED = ("MISTRAL_API_KEY", "MISTRAL_SDK_TELEMETRY", "MISTRAL_OTLP_TRACES_ENDPOINT")


def run_driver(python: Path, server: EmulatorServer, clock: EmulatorClock) -> dict[str, Any]:
    clock.set(T0)  # the driver resets the world, which the demo seeds relative to the clock
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    command = [str(python), str(DRIVER), "--url", server.url, "--key", server.api_key, "--fixture", json.dumps(FIXTURE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"the SDK driver crashed:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def sdk37_python() -> Path:
    try:
        return ensure_sdk_venv(SDK_VERSION)
    except SdkUnavailable as exc:
        if not may_skip(str(exc), ci=os.environ.get("CI") == "true"):
            pytest.fail(f"SDK {SDK_VERSION} environment could not be built: {exc}")
        pytest.skip(f"SDK {SDK_VERSION} not installable (package index unreachable): {exc}")


@pytest.fixture(scope="module")
def results25(server: EmulatorServer, module_clock: EmulatorClock) -> dict[str, Any]:
    return run_driver(Path(sys.executable), server, module_clock)


@pytest.fixture(scope="module")
def results37(sdk37_python: Path, server: EmulatorServer, module_clock: EmulatorClock) -> dict[str, Any]:
    return run_driver(sdk37_python, server, module_clock)


def _assert_passed(results: dict[str, Any], operation: str) -> None:
    outcome = results["results"].get(operation)
    assert outcome is not None, f"{operation} was not exercised"
    assert outcome["status"] == "pass", outcome["detail"]


@pytest.mark.parametrize("operation", [op for op, generations in OPERATIONS.items() if "3" in generations])
def test_sdk37_operation(results37: dict[str, Any], operation: str) -> None:
    _assert_passed(results37, operation)


@pytest.mark.parametrize("operation", [op for op, generations in OPERATIONS.items() if "2" in generations])
def test_sdk25_operation(results25: dict[str, Any], operation: str) -> None:
    _assert_passed(results25, operation)


def test_the_versions_are_the_ones_compared(results25: dict[str, Any], results37: dict[str, Any]) -> None:
    assert (results25["sdk"], results37["sdk"]) == ("2.5.0", SDK_VERSION)


@pytest.mark.parametrize("operation", ["datasets.import_from_campaign", "datasets.import_from_explorer"])
def test_sdk37_has_no_campaign_or_explorer_import(results37: dict[str, Any], operation: str) -> None:
    # CONTRACT-3x.md says so; if a later SDK brought them back, the emulator's knob would be wrong.
    assert results37["results"][operation]["status"] == "absent"


@pytest.mark.parametrize("operation", ["datasets.import_from_spans", "async: datasets.import_from_spans_async"])
def test_sdk25_has_no_spans_import(results25: dict[str, Any], operation: str) -> None:
    assert results25["results"][operation]["status"] == "absent"


def operation_table(*runs: dict[str, Any]) -> str:
    words = {"pass": "pass", "fail": "FAIL", "absent": "not in SDK", "n/a": "n/a", "present": "PRESENT"}
    header = "| operation | " + " | ".join(f"SDK {run['sdk']}" for run in runs) + " |"
    lines = [header, "|---|" + "---|" * len(runs)]
    for operation in OPERATIONS:
        cells = [words.get(run["results"].get(operation, {}).get("status", ""), "missing") for run in runs]
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_operation_table(request: pytest.FixtureRequest, results25: dict[str, Any], results37: dict[str, Any]) -> None:
    table = operation_table(results25, results37)
    TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLE_FILE.write_text(table + "\n", encoding="utf-8")
    request.config.stash[SDK_TABLE] = table
    for run in (results25, results37):
        generation = GENERATION[run["sdk"]]
        for operation, generations in OPERATIONS.items():
            expected = ("pass",) if generation in generations else ("absent", "n/a")
            assert run["results"][operation]["status"] in expected, (run["sdk"], operation)
