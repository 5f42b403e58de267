"""Bad-input fixtures: Redis database 10, an isolated environment for in-process `dsimport` calls, and guards
that turn "this command would have started a server" into a failure instead of a hung test.

Set ``DSIMPORT_TEST_BADINPUT_REDIS_URL`` to use another Redis database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.redis_db import flushed_redis, redis_test_url

# Nothing listens on port 1: a command that gets as far as the broker is refused at once.
DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_url() -> Iterator[str]:
    with flushed_redis(redis_test_url("DSIMPORT_TEST_BADINPUT_REDIS_URL", 10)) as url:
        yield url


class WouldStart(AssertionError):
    """Raised by the guards: the command got past its checks to the point of serving."""


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way a command starts a long-running process raises :class:`WouldStart` instead."""
    import celery
    import uvicorn

    import cli.local_stack.launcher

    def refuse(what: str) -> Any:
        def guard(*args: Any, **kwargs: Any) -> Any:
            raise WouldStart(f"{what} would have started")

        return guard

    monkeypatch.setattr(celery.Celery, "worker_main", refuse("a Celery worker"))
    monkeypatch.setattr(celery.Celery, "start", refuse("a Celery program (beat or Flower)"))
    monkeypatch.setattr(uvicorn, "run", refuse("uvicorn"))
    monkeypatch.setattr(uvicorn.Server, "run", refuse("uvicorn"))
    monkeypatch.setattr(cli.local_stack.launcher, "run_stack", refuse("the whole stack"))


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_servers: None) -> Path:
    """A fresh home (unmigrated SQLite ledger), a dead broker, no key, no UI password, no Flower variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DSIMPORT_", "MISTRAL_", "FLOWER_", "EMULATOR_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_BROKER_URL", DEAD_BROKER)
    return tmp_path
