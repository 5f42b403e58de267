"""Structured log lines carry the job id; the API key, the UI password and Authorization headers never get out."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from worker import logging_setup
from worker.logging_setup import REDACTED, JsonFormatter, LogfmtFormatter, RedactingFilter, Redactor, job_id_of
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MARKER_KEY = "sk-MARKER-7f3a9c2e51d04b8e"
MARKER_PASSWORD = "ui-MARKER-pw-0c41d2"
JOB_ID = "5b0c1d9e-8f4a-4c2b-9e7d-0a1b2c3d4e5f"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Root logging configured as a service process configures it, into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    settings = Settings(api_key=MARKER_KEY, ui_password=MARKER_PASSWORD, log_level="DEBUG", home=Path("/nonexistent"))
    logging_setup.setup_process_logging(settings, stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        logging_setup.configure(Settings(home=Path("/nonexistent")))


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key is {MARKER_KEY}", "key is ***"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("{'Authorization': 'Bearer abc'}", "{'Authorization': 'Bearer ***'}"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "***"}'),
        ("[(b'authorization', b'Bearer tok123')]", "[(b'authorization', b'Bearer ***')]"),
        ("authorization=sometoken, next", "authorization=***, next"),
        ("basic auth enabled; the token expired", "basic auth enabled; the token expired"),
        ("authorization failed for user", "authorization failed for user"),
        (f"password {MARKER_PASSWORD}!", "password ***!"),
    ],
)
def test_redactor(text: str, expected: str) -> None:
    assert Redactor.of([MARKER_KEY, MARKER_PASSWORD, None, "short"])(text) == expected


def test_short_values_are_not_treated_as_secrets() -> None:
    # A one-letter "key" would blank every occurrence of that letter in every line.
    assert Redactor.of(["a", "abc"])("a cat and a bat") == "a cat and a bat"


def test_every_logger_is_structured_and_redacted(captured: io.StringIO) -> None:
    logging.getLogger("tasks.job_tasks").info("job %s: submit retry", JOB_ID)
    logging.getLogger("httpx").debug("sending headers %s", {"Authorization": f"Bearer {MARKER_KEY}"})
    logging.getLogger("uvicorn.error").warning("client sent Authorization: Basic %s", "d2F0Y2hlcjpwdw==")
    logging.getLogger("store").info("plain line", extra={"job_id": JOB_ID})
    try:
        raise RuntimeError(f"request failed with key {MARKER_KEY}")
    except RuntimeError:
        logging.getLogger("celery.app.trace").exception("task crashed")
    output = captured.getvalue()
    assert MARKER_KEY not in output and "d2F0Y2hlcjpwdw==" not in output
    records = lines(captured)
    assert len(records) == 5
    assert records[0]["job_id"] == JOB_ID  # found in the message
    assert records[0]["level"] == "INFO" and records[0]["logger"] == "tasks.job_tasks"
    assert records[1]["msg"] == "sending headers {'Authorization': 'Bearer ***'}"
    assert records[2]["msg"] == "client sent Authorization: ***"
    assert records[3]["job_id"] == JOB_ID  # from extra
    assert "RuntimeError: request failed with key ***" in str(records[4]["exc"])


def test_real_httpx_debug_logs_leak_nothing(captured: io.StringIO) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": f"bad key {request.headers['authorization']}"})

    with httpx.Client(transport=httpx.MockTransport(reply), headers={"Authorization": f"Bearer {MARKER_KEY}"}) as c:
        response = c.get("https://api.example/v1/x")
        logging.getLogger("api_client").warning("API said %s", response.text)
    assert MARKER_KEY not in captured.getvalue()
    assert any("Bearer ***" in str(r["msg"]) for r in lines(captured))


def test_logfmt_lines() -> None:
    args = (JOB_ID, 'a "b"')
    record = logging.LogRecord("jobs.poll_round", logging.INFO, __file__, 1, "job %s changed: %s", args, None)
    line = LogfmtFormatter(Redactor()).format(record)
    assert f"job_id={JOB_ID}" in line
    assert "level=INFO" in line and "logger=jobs.poll_round" in line
    assert f'msg="job {JOB_ID} changed: a \\"b\\""' in line


def test_the_filter_rewrites_records_for_foreign_formatters() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (MARKER_KEY,), None)
    assert RedactingFilter(Redactor.of([MARKER_KEY])).filter(record)
    assert record.getMessage() == f"token {REDACTED}"
    assert logging.Formatter("%(message)s").format(record) == "token ***"


def test_job_id_of_celery_lines_logged_outside_the_task() -> None:
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, "Task %(name)s[%(id)s] received",
                               None, None)
    record.data = {"name": "dsimport.submit", "id": "t-1", "args": f"['{JOB_ID}']"}
    assert job_id_of(record) == JOB_ID
    record.data = {"name": "dsimport.poll_due", "id": "t-2", "args": "()"}
    assert job_id_of(record) is None


def test_no_job_id_when_nothing_names_one() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "poll round: %d claimed", (3,), None)
    assert job_id_of(record) is None
    assert "job_id" not in json.loads(JsonFormatter().format(record))


def test_key_file_value_is_redacted(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(MARKER_KEY + "\n")
    redactor = logging_setup.secrets_of(Settings(api_key_file=key_file, home=tmp_path))
    assert redactor(f"x {MARKER_KEY} y") == "x *** y"


def test_url_passwords_are_redacted_and_the_redactor_keeps_quiet(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        broker_url="redis://:broker%2Fpw-123@host:6379/0",
        database_url="postgresql+psycopg://app:db-pw-4567@db/x",
    )
    redactor = logging_setup.secrets_of(settings)
    assert redactor("a broker%2Fpw-123 b broker/pw-123 c db-pw-4567") == "a *** b *** c ***"
    assert "pw" not in repr(redactor)


def test_celery_task_logs_in_a_worker_process(tmp_path: Path) -> None:
    """Celery's own logging set-up, then a log line inside a job task: JSON, job id from the task, key redacted."""
    script = textwrap.dedent(
        f"""
        import logging, sys
        from celery._state import _task_stack
        from worker.celery_app import create_app
        from worker.settings import Settings

        app = create_app(Settings(api_key={MARKER_KEY!r}, home={str(tmp_path)!r}, broker_url="redis://127.0.0.1:1/0"))
        app.log.setup(loglevel="INFO", redirect_stdouts=False, colorize=False)
        task = app.tasks["dsimport.finalize"]
        task.push_request(args=[{JOB_ID!r}], id="task-1")
        _task_stack.push(task)
        logging.getLogger("tasks.job_tasks").info("finishing with Authorization: Bearer %s", {MARKER_KEY!r})
        logging.getLogger("celery.task").info("key is %s", {MARKER_KEY!r})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert MARKER_KEY not in output
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(records) == 2, output
    for record in records:
        assert record["job_id"] == JOB_ID
        assert record["task"] == "dsimport.finalize" and record["task_id"] == "task-1"
    assert records[0]["msg"] == "finishing with Authorization: Bearer ***"
