"""The HTTP API over a real ledger (SQLite and PostgreSQL), served by the jobs page on a loopback socket.

Tests talk to it with plain HTTP requests (httpx, no client of ours). Every answer they get is checked against the
OpenAPI document the server publishes (contract.py) when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from dashboard.api import ApiOptions
from store.api_tokens import create_token, revoke_token
from store.models import TokenScope
from tests.dashboard.server import serve

from .contract import ContractChecker

USER = "watcher"
PASSWORD = "s3cret-pass-for-tests"


@dataclass(frozen=True)
class Tokens:
    write: str
    read: str
    revoked: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(session_factory: sessionmaker[Session]) -> Tokens:
    now = datetime.now(UTC)
    with session_factory() as session:
        write = create_token(session, "writer", TokenScope.WRITE, now=now)
        read = create_token(session, "reader", TokenScope.READ, now=now)
        revoked = create_token(session, "gone", TokenScope.WRITE, now=now)
        revoke_token(session, "gone", now=now)
        session.commit()
    return Tokens(write.token, read.token, revoked.token)


@pytest.fixture
def api_options() -> ApiOptions:
    """No broker: new jobs stay PENDING for the recovery sweep, run-now answers 503 (tests/http_api/test_end_to_end
    serves the API with the broker)."""
    return ApiOptions()


@contextmanager
def checked_client(base_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client on ``base_url``; every API answer it got is checked against the document on exit."""
    checker = ContractChecker()
    with httpx.Client(base_url=base_url, timeout=10.0, event_hooks={"response": [checker.record]}) as client:
        checker.document = client.get("/api/v1/openapi.json").json()
        yield client
    checker.check_all()


@pytest.fixture
def http(database_url: str, tokens: Tokens, api_options: ApiOptions) -> Iterator[httpx.Client]:
    """The jobs page and its API served in this process, and a client on it."""
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD)
    with serve(build_app(config, api=api_options)) as server, checked_client(str(server.base_url)) as client:
        yield client
