"""Suite-wide fixtures: databases (tests/fixtures/databases.py) and the service under test with its Redis broker
and emulator (tests/fixtures/service_stack.py), which each suite tunes by overriding a few small fixtures; the
session's own Redis and PostgreSQL (tests/fixtures/session_services.py); Chromium for the browser test
(tests/fixtures/chromium.py)."""

import os

import pytest

from tests.fixtures.session_services import SESSION_NOTES, SESSION_REDIS

# Here, at import, rather than in a hook: this conftest is imported before any suite's conftest or test module, some
# of which read their Redis URL when imported; pytest_configure would come after the conftests of the named paths.
SESSION_REDIS.provide(os.environ)

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.service_stack", "tests.fixtures.chromium"]


def pytest_unconfigure(config: pytest.Config) -> None:
    SESSION_REDIS.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for note in SESSION_NOTES:
        terminalreporter.write_line(f"session services: {note}")
