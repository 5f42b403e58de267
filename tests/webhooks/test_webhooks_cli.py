"""`dsimport webhooks list|add|remove|test|deliveries` on a real ledger, with a real receiver on a socket."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from notifications.deliver import DeliveryPolicy, deliver_due
from store.models import JobStatus
from store.webhook_models import Webhook
from tests.webhooks.helpers import body_of, ended_job, signature_verifies
from tests.webhooks.receiver import Receiver, Reply, receiver


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DSIMPORT_WEBHOOK_TIMEOUT_S", "1")
    monkeypatch.delenv("DSIMPORT_JOBS_PAGE_URL", raising=False)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def _secret_from(output: str) -> str:
    match = re.search(r"signing secret \(shown once.*\): (\S+)", output)
    assert match, output
    return match.group(1)


def test_add_shows_a_generated_secret_once_and_test_sends_a_signed_event(
    hook: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhooks", "add", "ops", hook.url, "--status", "failed", "--kind", "file"]) == 0
    secret = _secret_from(capsys.readouterr().out)
    assert main(["webhooks", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert secret not in listed
    [row] = json.loads(listed)
    assert (row["name"], row["url"], row["statuses"], row["kinds"], row["schedules"]) == (
        "ops", hook.url, ["FAILED"], ["file"], None
    )  # fmt: skip
    assert main(["webhooks", "test", "ops"]) == 0
    assert "webhook ops: HTTP 200" in capsys.readouterr().out
    [request] = hook.received
    assert signature_verifies(secret, request)
    assert body_of(request)["type"] == "webhook.test"


def test_a_secret_file_is_used_and_never_printed(
    hook: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-secret-from-a-file-0001\n")
    assert main(["webhooks", "add", "slack", hook.url, "--format", "slack", "--secret-file", str(secret_file)]) == 0
    assert main(["webhooks", "list"]) == 0
    assert main(["webhooks", "test", "slack"]) == 0
    output = capsys.readouterr()
    assert "a-secret-from-a-file-0001" not in output.out + output.err
    [request] = hook.received
    assert signature_verifies("a-secret-from-a-file-0001", request)
    assert body_of(request) == {"text": "dsimport: webhook.test for webhook `slack`"}


def test_test_reports_a_failing_receiver_with_exit_code_1(
    hook: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    hook.plan = lambda _n: Reply(503)
    assert main(["webhooks", "add", "down", hook.url]) == 0
    assert main(["webhooks", "test", "down"]) == 1
    assert "dsimport: error: webhook down: HTTP 503" in capsys.readouterr().err


def test_deliveries_lists_the_log_and_remove_drops_it(
    hook: Receiver, session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    hook.plan = lambda n: Reply(500 if n == 0 else 200)
    assert main(["webhooks", "add", "ops", hook.url]) == 0
    now = datetime.now(UTC)
    with session_factory() as session:
        job_id = ended_job(session, JobStatus.REJECTED, now=now)
        session.commit()
    with httpx.Client() as http:
        deliver_due(session_factory, http, owner="w", now=lambda: now, policy=DeliveryPolicy(timeout_s=1))
    capsys.readouterr()
    assert main(["webhooks", "deliveries", "ops", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["job_id"], row["job_status"], row["status"], row["attempts"]) == (job_id, "REJECTED", "pending", 1)
    assert row["last_status_code"] == 500 and row["last_error"].startswith("HTTP 500")
    assert main(["webhooks", "deliveries"]) == 0
    table = capsys.readouterr().out
    assert job_id in table and "pending" in table
    assert main(["webhooks", "remove", "ops"]) == 0
    assert "removed webhook ops (1 deliveries)" in capsys.readouterr().out
    with session_factory() as session:
        assert session.scalars(select(Webhook)).all() == []


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["webhooks", "add", "x", "ftp://host/path"], 2, "'ftp://host/path' is not an http(s) URL"),
        (["webhooks", "add", "x", "http://h/", "--status", "RUNNING"], 2, "'RUNNING' is not one of"),
        (["webhooks", "add", "x", "http://h/", "--secret-file", "missing"], 2, "cannot read missing"),
        (["webhooks", "remove", "nobody"], 1, "no webhook named 'nobody'"),
        (["webhooks", "test", "nobody"], 1, "no webhook named 'nobody'"),
        (["webhooks", "deliveries", "nobody"], 1, "no webhook named 'nobody'"),
    ],
)
def test_bad_input_gets_one_clear_line(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    assert message in capsys.readouterr().err


def test_a_name_is_taken_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "add", "ops", "http://127.0.0.1:9/"]) == 0
    assert main(["webhooks", "add", "ops", "http://127.0.0.1:9/other"]) == 1
    assert "a webhook named 'ops' already exists" in capsys.readouterr().err
