"""The jobs page and the command line's read commands never load Celery (nor the Celery task layer).

Each check runs in a fresh interpreter, so what another test imported cannot hide a heavy import, and reports the
modules the path loaded. The import contracts (`lint-imports`, pyproject.toml) forbid the static arrows; this
catches what they cannot see: a deferred import inside a function that a read command runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("celery", "kombu", "tasks.job_tasks", "tasks.message_tasks", "tasks.schedule_tasks", "worker.celery_app")

READ_COMMANDS = [
    ["jobs", "list"],
    ["jobs", "list", "--json"],
    ["jobs", "show", "00000000-0000-4000-8000-000000000000"],
    ["schedules", "list"],
    ["messages", "schema"],
    ["messages", "dead-letters"],
    ["db", "current"],
    ["tokens", "list"],
    ["webhooks", "list"],
    ["webhooks", "deliveries", "--json"],
]

PROBE = """
import json, sys
from cli.main import main
argv = json.loads(sys.argv[1])
try:
    code = main(argv)
except SystemExit as exc:
    code = exc.code
heavy = json.loads(sys.argv[2])
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""

DASHBOARD_PROBE = """
import json, sys
from starlette.testclient import TestClient
from dashboard import build_app
from dashboard.config import DashboardConfig
app = build_app(DashboardConfig(database_url=sys.argv[1], username="u", password="p"))
with TestClient(app) as client:
    status = [client.get(path, auth=("u", "p")).status_code for path in ("/", "/healthz", "/metrics")]
    status.append(client.get("/api/v1/openapi.json").status_code)
    status.append(client.get("/api/v1/jobs").status_code)
heavy = json.loads(sys.argv[2])
print(json.dumps({"code": status, "loaded": [m for m in heavy if m in sys.modules]}))
"""


@pytest.fixture(scope="module")
def ledger_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_"))}
    env |= {
        "DSIMPORT_HOME": str(home),
        "DSIMPORT_DATABASE_URL": f"sqlite:///{home / 'ledger.db'}",
        "DSIMPORT_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached by a read command
        "PYTHONPATH": str(REPO),
    }
    subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True)
    return env


def probe(script: str, arg: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, arg, json.dumps(HEAVY)], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_a_read_command_runs_without_loading_celery(argv: list[str], ledger_env: dict[str, str]) -> None:
    result = probe(PROBE, json.dumps(argv), ledger_env)
    # It really ran (a job id that names nothing is exit 1 with its line; the others succeed).
    assert result["code"] in (0, None) or argv[:2] == ["jobs", "show"], result
    assert result["loaded"] == [], f"dsimport {' '.join(argv)} loaded {result['loaded']}"


def test_the_jobs_page_serves_without_loading_celery(ledger_env: dict[str, str]) -> None:
    result = probe(DASHBOARD_PROBE, ledger_env["DSIMPORT_DATABASE_URL"], ledger_env)
    assert result["code"] == [200, 200, 200, 200, 401]  # the API answers (its jobs need a token)
    assert result["loaded"] == []


def test_the_probe_sees_celery_when_a_command_loads_it(ledger_env: dict[str, str]) -> None:
    # The check above must be able to fail: a command that sends (here: the worker's app) does load Celery.
    script = PROBE.replace("from cli.main import main", "from cli.main import main\nimport worker.celery_app")
    assert "celery" in probe(script, json.dumps(["jobs", "list"]), ledger_env)["loaded"]
