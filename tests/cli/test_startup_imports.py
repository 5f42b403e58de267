"""The command line answers at once: its help loads no heavy library, and a command loads only what it uses.

Each check runs the commands in a fresh interpreter (tests/cli/startup_probe.py). A module-level ``from store
import …`` (or ``import httpx``, or the Celery app) in a module of cli/ makes these fail, naming the module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.cli.startup_probe import (
    HEAVY_FOR_AN_IMPORT,
    HEAVY_FOR_LISTING,
    REPO,
    heavy_among,
    help_commands,
    modules_loaded,
)

DATASET = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
RECORD = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_", "PYTHON"))}
    return clean | {
        "DSIMPORT_HOME": str(tmp_path / "home"),
        "DSIMPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DSIMPORT_BROKER_URL": "redis://127.0.0.1:1/0",  # reached by no command below but `import`
    }


@pytest.fixture
def migrated(env: dict[str, str]) -> dict[str, str]:
    upgrade = [sys.executable, "-m", "cli", "db", "upgrade"]
    subprocess.run(upgrade, env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO, check=True, capture_output=True)
    return env


@pytest.fixture
def with_broker(migrated: dict[str, str], broker_url: str) -> Iterator[dict[str, str]]:
    yield {**migrated, "DSIMPORT_BROKER_URL": broker_url}


def test_the_help_of_the_command_line_and_of_each_group_loads_no_heavy_library(env: dict[str, str]) -> None:
    commands = help_commands()
    assert ["schedules", "add", "--help"] in commands and ["emulator", "--help"] in commands
    for loaded in modules_loaded(commands, env=env):
        assert loaded.code == 0, (loaded.argv, loaded.stderr)
        heavy = heavy_among(loaded.modules)
        assert heavy == [], f"dsimport {' '.join(loaded.argv)} loaded {', '.join(heavy)}"


def test_the_probe_sees_a_command_that_loads_a_heavy_library(env: dict[str, str]) -> None:
    # The schema is pydantic's: the check above must be able to fail.
    [loaded] = modules_loaded([["messages", "schema"]], env=env)
    assert loaded.code == 0, loaded.stderr
    assert "pydantic" in heavy_among(loaded.modules)


def test_listing_jobs_loads_neither_celery_nor_migrations(migrated: dict[str, str]) -> None:
    [loaded] = modules_loaded([["jobs", "list"]], env=migrated)
    assert loaded.code == 0, loaded.stderr
    assert "sqlalchemy" in heavy_among(loaded.modules)  # it did read the ledger
    assert heavy_among(loaded.modules, HEAVY_FOR_LISTING) == []


def test_an_unmigrated_ledger_is_still_refused_with_the_command_that_fixes_it(env: dict[str, str]) -> None:
    [loaded] = modules_loaded([["jobs", "list"]], env=env)
    assert loaded.code == 1
    assert "run `dsimport db upgrade`" in loaded.stderr


def test_an_import_loads_only_what_records_the_job_and_sends_its_message(
    with_broker: dict[str, str], broker_url: str
) -> None:
    [loaded] = modules_loaded([["import", "dataset", "--dataset", DATASET, "--record", RECORD]], env=with_broker)
    assert loaded.code == 0, loaded.stderr
    assert heavy_among(loaded.modules, HEAVY_FOR_AN_IMPORT) == []
    # The submit message is on the workers' queue, as the worker's own app would have sent it.
    client = redis.Redis.from_url(broker_url)
    try:
        assert client.llen("dsimport") == 1
    finally:
        client.close()
