"""The command line: option parsing in-process, and a real ``python -m emulator`` subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from emulator.cli import emulator_command

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host", "--port", "--seed", "--state", "--task-duration", "--failure-rate", "--latency-ms",
        "--removed-import-routes", "--dedupe-imports",
    ):  # fmt: skip
        assert option in result.output
    assert "EMULATOR_API_KEY" in result.output


def test_bad_task_duration_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_command, ["--task-duration", "5-1"])
    assert result.exit_code == 2 and "task duration" in result.output


def test_bad_failure_rate_is_a_usage_error() -> None:
    assert CliRunner().invoke(emulator_command, ["--failure-rate", "2"]).exit_code == 2


def test_removed_import_routes_takes_served_or_gone() -> None:
    assert CliRunner().invoke(emulator_command, ["--removed-import-routes", "maybe"]).exit_code == 2


def test_missing_seed_file_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(emulator_command, ["--seed", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "cannot read fixture" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_python_dash_m_serves_with_a_key_and_saves_on_sigint(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "state.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), EMULATOR_API_KEY="cli-key")
    command = [
        sys.executable, "-m", "emulator", "--port", str(port), "--seed", "demo", "--state", str(state),
        "--task-duration", "1-2", "--removed-import-routes", "gone", "--dedupe-imports",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/_emulator/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        datasets = base + "/v1/observability/datasets"
        assert httpx.get(datasets, headers={"Authorization": "Bearer wrong"}).status_code == 401
        created = httpx.post(
            datasets, json={"name": "From CLI", "description": ""}, headers={"Authorization": "Bearer cli-key"}
        )
        assert created.status_code == 201
        config = httpx.get(base + "/_emulator/config").json()
        assert config["task_duration_s"] == [1.0, 2.0] and config["removed_import_routes"] == "gone"
        assert config["dedupe_imports"] is True  # off unless asked for (test_dedupe_is_off_by_default)
        gone = httpx.post(f"{datasets}/{created.json()['id']}/imports/from-explorer", json={})
        assert gone.status_code == 404 and gone.json()["detail"]["error_code"] is None
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err.decode()
    assert b"accepts only the EMULATOR_API_KEY token" in out and b"cli-key" not in out + err
    names = {d["name"] for d in json.loads(state.read_text())["datasets"]}
    assert names == {"Support answers", "Scratch", "From CLI"}
