"""Every route of the jobs page refuses a request without the login (401), except /healthz and /metrics, which
reveal no job data.

The routes are read from the Starlette app itself, so a page added later is covered without being listed here; each
is asked with every method it serves and a few it does not, with no login, a wrong one and a malformed one.
tests/dashboard/test_dashboard_pages.py checks three paths by hand and the parsing of the header; Flower's routes are
checked against a real Flower in test_secrets_never_leak.py.
"""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.routing import Route

from dashboard import PUBLIC_PATHS, DashboardConfig, build_app
from store.db import make_engine, make_session_factory
from store.dead_letters import record_dead_letter
from store.jobs import create_job
from store.models import ImportKind
from tests.dashboard.conftest import NOW, PASSWORD, USER, auth_header
from tests.dashboard.server import serve

DATASET = "d7c0a3f2-1b2c-4d5e-8f90-123456789abc"
SECRET_PARAM = "evt-visible-only-with-the-login"
WRONG_LOGINS: list[dict[str, str]] = [
    {},
    auth_header(password="wrong"),
    auth_header(user="admin"),
    auth_header(password=PASSWORD + "x"),
    {"Authorization": "Basic " + base64.b64encode(f"{USER}:".encode()).decode()},
    {"Authorization": "Basic " + base64.b64encode(USER.encode()).decode()},
    {"Authorization": "Basic !!!"},
    {"Authorization": "Bearer " + PASSWORD},
    {"Authorization": auth_header()["Authorization"] + "x"},
    {"Authorization": "Digest " + auth_header()["Authorization"].split()[1]},
]


@pytest.fixture
def job_id(sqlite_database_url: str) -> str:
    engine = make_engine(sqlite_database_url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    with sessions() as session:
        job, _ = create_job(
            session,
            kind=ImportKind.EXPLORER,
            dataset_id=DATASET,
            params={"completion_event_ids": [SECRET_PARAM]},
            idempotency_key="auth-test",
            origin="test",
            deadline_at=None,
            now=NOW,
        )
        record_dead_letter(
            session, stream="s", entry_id="1-0", body=b"secret body", reason="bad", message_id="msg-secret", now=NOW
        )
        session.commit()
        job_id = job.id
    engine.dispose()
    return job_id


def _app(database_url: str) -> Starlette:
    return build_app(DashboardConfig(database_url=database_url, username=USER, password=PASSWORD), now=lambda: NOW)


def _concrete(path: str, job_id: str) -> str:
    return re.sub(r"\{[^}]+\}", job_id, path)


def test_every_route_needs_the_login_but_health_and_metrics(sqlite_database_url: str, job_id: str) -> None:
    app = _app(sqlite_database_url)
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert {route.path for route in routes} >= {"/", "/jobs/{job_id}", "/metrics", "/healthz"}
    with serve(app) as client:
        for route in routes:
            path = _concrete(route.path, job_id)
            methods = sorted((route.methods or {"GET"}) | {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
            for method in methods:
                if route.path in PUBLIC_PATHS:
                    continue
                for headers in WRONG_LOGINS:
                    answer = client.request(method, path, headers=headers)
                    assert answer.status_code == 401, f"{method} {path} with {headers}: {answer.status_code}"
                    assert answer.headers["WWW-Authenticate"].startswith('Basic realm="')
                    assert SECRET_PARAM not in answer.text and job_id not in answer.text
            if route.path not in PUBLIC_PATHS:
                assert client.get(path, headers=auth_header()).status_code == 200, path
        # Paths no route serves are refused before routing: nothing tells an anonymous caller what exists.
        for path in ("/nope", "/jobs", "/jobs/", "/metrics/", "/healthz/", "/METRICS", "//metrics", "/static/x",
                     "/jobs/../metrics"):  # fmt: skip
            answer = client.get(path)
            assert answer.status_code in (401, 200), path
            if answer.status_code == 200:  # httpx normalised it to a public path
                assert answer.url.path in PUBLIC_PATHS, path


def test_health_and_metrics_answer_without_the_login_and_reveal_no_job_data(
    sqlite_database_url: str, job_id: str
) -> None:
    app = _app(sqlite_database_url)
    with serve(app) as client:
        for path in PUBLIC_PATHS:
            answer = client.get(path)
            assert answer.status_code == 200, path
            for private in (job_id, DATASET, SECRET_PARAM, "msg-secret", "secret body", "auth-test", PASSWORD):
                assert private not in answer.text, f"{private} shows on {path}"
            assert client.post(path).status_code == 405
