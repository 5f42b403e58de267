"""Reliability tests reuse the integration fixtures: real Redis, emulator on a socket, both ledgers, processes."""

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
