"""A broken configuration stops start-up with one line that says what to fix: exit 1, never a traceback.

Each process command (worker, beat, the jobs page, Flower, `up`) is started in-process on a configuration that is
right except for one thing. The commands that do not use the broken part (Flower never reads the ledger, `up` starts
its own Redis when none answers and its own emulator when there is no key) are left out of that case. First, the
unbroken configuration is shown to reach the point of serving, where a guard stops it: so each refusal below is the
configuration's doing. tests/cli/test_cli_errors.py holds the first of these for the worker alone.
"""

# The matrix is a table: one case per line reads better than lines folded at 120 characters.
# ruff: noqa: E501

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli.local_stack.launcher
from cli.local_stack.launcher import free_port
from cli.main import main
from jobs import metrics
from store.db import upgrade
from worker import logging_setup

from .conftest import WouldStart

API_KEY = "sk-badinput-config-key-0001"
UI_PASSWORD = "badinput-config-ui-password"
DB_PASSWORD = "db-password-marker-31f4"
COMMANDS = ("worker", "beat", "dashboard", "flower", "up")
ALL = COMMANDS
LEDGER = ("worker", "beat", "dashboard")
BROKER = ("worker", "beat", "flower")

# (case, the environment changed, the commands it applies to, what the one line must say)
CASES: list[tuple[str, dict[str, str | None], tuple[str, ...], str]] = [
    ("broker not Redis", {"DSIMPORT_BROKER_URL": "amqp://guest:guest@127.0.0.1//"}, ALL, "invalid setting broker_url: broker URL must be a redis:// URL, got 'amqp://guest:***@127.0.0.1//'"),
    ("broker port of words", {"DSIMPORT_BROKER_URL": f"redis://:{DB_PASSWORD}@127.0.0.1:six/0"}, ALL, "invalid setting broker_url: broker URL 'redis://:***@127.0.0.1:six/0' is malformed: Port could not be cast"),
    ("broker port out of range", {"DSIMPORT_BROKER_URL": "redis://127.0.0.1:70000/0"}, ALL, "is malformed: Port out of range 0-65535"),
    ("broker database of words", {"DSIMPORT_BROKER_URL": "redis://127.0.0.1:6379/ten"}, ALL, "is malformed: the database 'ten' is not a number"),
    ("broker not answering", {"DSIMPORT_BROKER_URL": "redis://127.0.0.1:{closed}/0"}, BROKER, "is not reachable (Error 111 connecting to 127.0.0.1:{closed}. Connection refused.): start Redis or fix DSIMPORT_BROKER_URL"),
    ("stream Redis of another scheme", {"DSIMPORT_STREAM_REDIS_URL": "http://127.0.0.1/"}, ALL, "invalid setting stream_redis_url: stream Redis URL must be a redis:// URL"),
    ("database not answering", {"DSIMPORT_DATABASE_URL": f"postgresql+psycopg://dsimport:{DB_PASSWORD}@127.0.0.1:{{closed}}/ledger"}, (*LEDGER, "up"), "database postgresql+psycopg://dsimport:***@127.0.0.1:{closed}/ledger is unavailable: connection failed"),
    ("database URL of words", {"DSIMPORT_DATABASE_URL": "the ledger"}, ALL, "invalid setting database_url: 'the ledger' is not a database URL: use sqlite:///PATH or postgresql+psycopg://"),
    ("database of another kind", {"DSIMPORT_DATABASE_URL": f"mysql://root:{DB_PASSWORD}@127.0.0.1/ledger"}, ALL, "invalid setting database_url: unsupported database 'mysql'"),
    ("database port of words", {"DSIMPORT_DATABASE_URL": f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1:pg/ledger"}, ALL, "invalid setting database_url: 'postgresql+psycopg://u:***@127.0.0.1:pg/ledger' is not a database URL"),
    ("database not migrated", {"DSIMPORT_DATABASE_URL": "sqlite:///{tmp}/empty.db"}, LEDGER, "is not migrated (at None, head is"),
    ("no API key for the real API", {"MISTRAL_API_KEY": None}, ("worker",), "no API key for https://api.mistral.ai: set MISTRAL_API_KEY or DSIMPORT_API_KEY_FILE"),
    ("empty API key", {"MISTRAL_API_KEY": ""}, ("worker",), "no API key for https://api.mistral.ai"),
    ("key file missing", {"MISTRAL_API_KEY": None, "DSIMPORT_API_KEY_FILE": "{tmp}/no-such-key"}, ("worker", "up"), "cannot read the API key file {tmp}/no-such-key: No such file or directory"),
    ("key file a folder", {"MISTRAL_API_KEY": None, "DSIMPORT_API_KEY_FILE": "{tmp}"}, ("worker", "up"), "cannot read the API key file {tmp}: Is a directory"),
    ("key file empty", {"MISTRAL_API_KEY": None, "DSIMPORT_API_KEY_FILE": "{tmp}/empty-key"}, ("worker",), "no API key for https://api.mistral.ai"),
    ("number of words", {"DSIMPORT_POLL_TICK_S": "fast"}, ALL, "invalid setting poll_tick_s: Input should be a valid number"),
    ("negative number", {"DSIMPORT_API_TIMEOUT_S": "-5"}, ALL, "invalid setting api_timeout_s: Input should be greater than 0"),
    ("integer with a fraction", {"DSIMPORT_POLL_BATCH_SIZE": "2.5"}, ALL, "invalid setting poll_batch_size: Input should be a valid integer"),
    ("port out of range", {"DSIMPORT_DASHBOARD_PORT": "65536"}, ALL, "invalid setting dashboard_port: Input should be less than or equal to 65535"),
    ("number NaN", {"DSIMPORT_LEASE_S": "nan"}, ALL, "invalid setting lease_s: Input should be greater than 0"),
    ("API calls longer than a lease", {"DSIMPORT_API_TIMEOUT_S": "30"}, ALL, "invalid settings: api_timeout_s x api_max_attempts (30 x 4 = 120 s) must be below lease_s (60 s)"),
    ("a lease shorter than API calls", {"DSIMPORT_LEASE_S": "20", "DSIMPORT_API_MAX_ATTEMPTS": "2"}, ALL, "invalid settings: api_timeout_s x api_max_attempts (10 x 2 = 20 s) must be below lease_s (20 s)"),
    ("boolean of words", {"DSIMPORT_STREAM_ENABLED": "perhaps"}, ALL, "invalid setting stream_enabled: Input should be a valid boolean"),
    ("unknown log level", {"DSIMPORT_LOG_LEVEL": "LOUD"}, ALL, "invalid setting log_level: log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"),
    ("unknown log format", {"DSIMPORT_LOG_FORMAT": "xml"}, ALL, "invalid setting log_format: Input should be 'json' or 'text'"),
    ("API URL of words", {"DSIMPORT_API_BASE_URL": "mistral"}, ALL, "invalid setting api_base_url: API base URL must be an http(s):// URL, got 'mistral'"),
    ("UI login with a colon", {"DSIMPORT_UI_USER": "ad:min"}, ALL, "invalid setting ui_user: the login cannot contain ':'"),
    ("no UI password", {"DSIMPORT_UI_PASSWORD": None}, ("dashboard", "flower"), "no password for Flower and the jobs page: set DSIMPORT_UI_PASSWORD"),
    ("schedules file missing", {"DSIMPORT_SCHEDULES_FILE": "{tmp}/none.toml"}, ("beat",), "cannot read the schedules file {tmp}/none.toml"),
]


@pytest.fixture
def good_env(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, no_servers: None) -> Iterator[Path]:
    """A configuration every command accepts, applied to this process; no process is ever started."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DSIMPORT_", "MISTRAL_", "FLOWER_", "EMULATOR_")):
            monkeypatch.delenv(name)
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(database_url)
    (tmp_path / "empty-key").write_text("\n")
    for name, value in {
        "DSIMPORT_HOME": str(tmp_path / "home"),
        "DSIMPORT_DATABASE_URL": database_url,
        "DSIMPORT_BROKER_URL": redis_url,
        "MISTRAL_API_KEY": API_KEY,
        "DSIMPORT_UI_PASSWORD": UI_PASSWORD,
        # Set here so that what `dsimport flower` puts there is undone after the test.
        "FLOWER_BASIC_AUTH": "unset",
    }.items():
        monkeypatch.setenv(name, value)
    # The jobs page and Flower set up the root logger for their process; in this one it belongs to pytest.
    monkeypatch.setattr(logging_setup, "setup_process_logging", lambda settings, stream=None: None)
    # `up` runs for real up to its first child process.
    monkeypatch.setattr(cli.local_stack.launcher, "run_stack", _REAL_RUN_STACK)
    monkeypatch.setattr(cli.local_stack.launcher.Stack, "start", _refuse_child)
    yield tmp_path
    metrics.install(None)


_REAL_RUN_STACK = cli.local_stack.launcher.run_stack


def _refuse_child(self: cli.local_stack.launcher.Stack, name: str, *args: object, **kwargs: object) -> None:
    raise WouldStart(f"`up` would have started its {name}")


@pytest.mark.parametrize("command", COMMANDS)
def test_the_unbroken_configuration_gets_as_far_as_serving(good_env: Path, command: str) -> None:
    with pytest.raises(WouldStart):
        main([command])


def _cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(changes, command, expected, id=f"{case}-{command}")
        for case, changes, commands, expected in CASES
        for command in commands
    ]


@pytest.mark.parametrize(("changes", "command", "expected"), _cases())
def test_a_broken_configuration_stops_start_up_with_one_line(
    good_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str | None],
    command: str,
    expected: str,
) -> None:
    closed = str(free_port())
    for name, value in changes.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(tmp=good_env, closed=closed))
    code = main([command])
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert code == 1, output
    assert expected.format(tmp=good_env, closed=closed) in captured.err, output
    assert captured.err.count("\n") == 1 and captured.out == "", output
    assert captured.err.startswith(("dsimport: error: ", "dsimport up: "))
    assert "Traceback" not in output
    for secret in (API_KEY, UI_PASSWORD, DB_PASSWORD):
        assert secret not in output
