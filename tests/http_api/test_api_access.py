"""Who may call the API: bearer tokens (401 without a live one, 403 for a read token that writes), the one error
shape, and the OpenAPI document (valid, public, describing every route)."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from dashboard import DashboardConfig, build_app
from store.api_tokens import TOKEN_PREFIX, hash_token, list_tokens
from store.models import ApiToken

from .conftest import PASSWORD, USER, Tokens, bearer

REPO = Path(__file__).resolve().parents[2]
SOME_JOB = "/api/v1/jobs/00000000-0000-4000-8000-000000000000"


def _error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status and body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


def test_the_document_is_valid_openapi_public_and_describes_every_route(http: httpx.Client, database_url: str) -> None:
    answer = http.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    app = build_app(DashboardConfig(database_url=database_url, username=USER, password=PASSWORD))
    mount = next(route for route in app.routes if getattr(route, "path", "") == "/api/v1")
    served = {(route.path, method.lower()) for route in mount.routes for method in route.methods - {"HEAD"}}  # type: ignore[attr-defined]
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert served == documented
    # The request body of an import is the queue message's published schema.
    published = json.loads(
        (REPO / "schemas" / "import-request.schema.json").read_text().replace("#/$defs/", "#/components/schemas/")
    )
    schemas = document["components"]["schemas"]
    for name, schema in published.pop("$defs").items():
        assert schemas[name] == schema, name
    assert schemas["ImportRequest"] == {k: v for k, v in published.items() if k not in ("$schema", "$id")}
    assert document["paths"]["/imports"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ImportRequest"
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/jobs"), ("GET", SOME_JOB), ("POST", "/api/v1/imports"), ("GET", "/api/v1/schedules")],
)
def test_no_token_no_answer(http: httpx.Client, tokens: Tokens, method: str, path: str) -> None:
    answer = http.request(method, path)
    _error(answer, 401, "unauthorized")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    # The jobs page's login is not a token, nor is a token sent another way.
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for header in (f"Basic {basic}", f"Token {tokens.write}", "Bearer", f"Bearer {TOKEN_PREFIX}not-a-token"):
        refused = http.request(method, path, headers={"Authorization": header})
        _error(refused, 401, "unauthorized")
        assert "error=" in refused.headers["WWW-Authenticate"]


def test_a_revoked_token_is_refused_and_no_token_is_logged(
    http: httpx.Client, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message = _error(http.get("/api/v1/jobs", headers=bearer(tokens.revoked)), 401, "unauthorized")
    assert "revoked" in message
    assert tokens.revoked not in message
    assert http.get("/api/v1/jobs", headers=bearer(tokens.read)).status_code == 200
    assert http.post("/api/v1/imports", json={"id": "x"}, headers=bearer(tokens.write)).status_code == 422
    assert caplog.records  # the server's own lines were captured (uvicorn's, SQLAlchemy's, ...)
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    for token in (tokens.revoked, tokens.read, tokens.write):
        assert token not in logged


def test_a_read_token_reads_and_cannot_write(http: httpx.Client, tokens: Tokens) -> None:
    assert http.get("/api/v1/jobs", headers=bearer(tokens.read)).status_code == 200
    assert http.get("/api/v1/schedules", headers=bearer(tokens.read)).status_code == 200
    for path in ("/api/v1/imports", f"{SOME_JOB}/cancel", "/api/v1/schedules", "/api/v1/schedules/x/pause"):
        answer = http.post(path, headers=bearer(tokens.read), json={})
        message = _error(answer, 403, "forbidden")
        assert "read scope" in message
        assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    # The write token includes read.
    assert http.get("/api/v1/jobs", headers=bearer(tokens.write)).status_code == 200


def test_unknown_paths_and_methods_answer_in_the_error_shape(http: httpx.Client, tokens: Tokens) -> None:
    _error(http.get("/api/v1/nowhere", headers=bearer(tokens.read)), 404, "not_found")
    _error(http.get(SOME_JOB, headers=bearer(tokens.read)), 404, "not_found")
    _error(http.get("/api/v1/jobs/not-a-uuid", headers=bearer(tokens.read)), 404, "not_found")
    answer = http.delete("/api/v1/jobs", headers=bearer(tokens.write))
    _error(answer, 405, "method_not_allowed")


def test_the_page_still_needs_its_login(http: httpx.Client) -> None:
    assert http.get("/").status_code == 401
    assert http.get("/", auth=(USER, PASSWORD)).status_code == 200


def test_tokens_are_stored_hashed_and_use_is_noted(
    http: httpx.Client, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    assert http.get("/api/v1/jobs", headers=bearer(tokens.read)).status_code == 200
    with session_factory() as session:
        rows = {row.name: row for row in list_tokens(session)}
        stored = [value for row in rows.values() for value in vars(row).values() if isinstance(value, str)]
    assert all(token not in stored for token in (tokens.read, tokens.write, tokens.revoked))
    assert rows["reader"].token_hash == hash_token(tokens.read)
    assert rows["reader"].last_used_at is not None
    assert rows["writer"].last_used_at is None  # only the token that was used
    assert tokens.read.startswith(TOKEN_PREFIX) and len(tokens.read) > 40
    assert "dsi_" not in repr(rows["reader"]) and ApiToken.__tablename__ == "api_tokens"


def test_tokens_command_creates_lists_and_revokes(
    tmp_path: Path, sqlite_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [key for key in os.environ if key.startswith(("DSIMPORT_", "MISTRAL_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", sqlite_database_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["tokens", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, token, err = run("create", "ci", "--scope", "write")
    assert code == 0, err
    token = token.strip()
    assert token.startswith(TOKEN_PREFIX) and "shown only this once" in err
    assert run("create", "ci")[0] == 1  # the name is taken
    assert run("create", "bad name")[0] == 2
    code, listed, _ = run("list", "--json")
    assert code == 0 and token not in listed and json.loads(listed)[0]["scope"] == "write"
    assert run("revoke", "ci")[0] == 0
    assert json.loads(run("list", "--json")[1])[0]["revoked_at"] is not None
    assert run("revoke", "nobody")[0] == 1
    code, table, _ = run("list")
    assert code == 0 and table.splitlines()[1].startswith("ci ") and token not in table
