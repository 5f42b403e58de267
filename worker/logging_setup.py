"""Structured log lines with the job id, and secrets redacted from every line.

Every process of the service (worker, beat, Flower, the jobs page) writes one line per record, as a JSON object or
as ``key=value`` text (``DSIMPORT_LOG_FORMAT``). A line about a job carries ``job_id``: taken from the record's
``extra={"job_id": ...}`` when the code passed it, else from the Celery task being run when that task takes a job
id (submit, finalize), else from a ``job <uuid>`` in the message itself.

Redaction happens twice, because a secret can reach a log line by many roads (a task's log call, an exception
that quotes a request, httpx/httpcore debug output, a web server's log): a filter on every handler rewrites the
record (message and traceback) before any formatter sees it, and the formatters redact their finished output
again. What is redacted: the API key and the UI password (their values, from settings) and the credentials of
any ``Authorization`` header or ``Bearer``/``Basic`` token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from worker.settings import Settings, SettingsError

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "LogfmtFormatter",
    "RedactingFilter",
    "Redactor",
    "configure",
    "install_on",
    "job_id_of",
    "make_formatter",
    "secrets_of",
    "setup_process_logging",
]

REDACTED = "***"
# Shorter values would redact ordinary words; no real key or generated password is this short.
_MIN_SECRET_CHARS = 6
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_JOB_IN_MESSAGE = re.compile(rf"\bjob[\s_=:]+({_UUID})\b", re.IGNORECASE)
# A bearer token wherever it appears ("Authorization: Bearer x", "(b'authorization', b'Bearer x')").
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
# An Authorization value in any scheme (Basic included) or none: everything up to the end of the value.
_AUTH_VALUE = re.compile(r"""(?i)(\bauthorization\b['"]?\s*[:=,]\s*(?:b?['"])?)(?!\*\*\*)([^'"\r\n,)}]+)""")
# Celery tasks whose first argument is a job id.
_JOB_TASKS = frozenset({"dsimport.submit", "dsimport.finalize"})

Format = Literal["json", "text"]


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values and authorization credentials in a text by ``***``."""

    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        kept = {value for value in values if value and len(value) >= _MIN_SECRET_CHARS}
        # Longest first, so a secret containing another is replaced whole.
        return cls(tuple(sorted(kept, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _SCHEME_TOKEN.sub(rf"\1\2{REDACTED}", text)
        return _AUTH_VALUE.sub(lambda m: m.group(1) + (m.group(2) if _is_redacted(m.group(2)) else REDACTED), text)


def _is_redacted(value: str) -> bool:
    # "Bearer ***" was already handled by the scheme pattern; keep it readable.
    return value.strip().endswith(REDACTED)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback with the secrets replaced; never drops a record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def job_id_of(record: logging.LogRecord) -> str | None:
    """The job a record is about: ``extra``, else the job task running (or logged about by Celery), else a
    ``job <uuid>`` in the message."""
    explicit = getattr(record, "job_id", None)
    if explicit:
        return str(explicit)
    task_job = _current_task_job_id() or _celery_data_job_id(record)
    if task_job is not None:
        return task_job
    match = _JOB_IN_MESSAGE.search(record.getMessage())
    return match.group(1) if match else None


def _current_task() -> tuple[str | None, str | None, Any]:
    """(task name, task id, args) of the Celery task this thread runs, or Nones outside a task."""
    if "celery" not in sys.modules:  # never import Celery just to find out that no task runs
        return None, None, None
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or task.request is None:
        return None, None, None
    request = task.request
    return task.name, getattr(request, "id", None), getattr(request, "args", None)


def _current_task_job_id() -> str | None:
    name, _task_id, args = _current_task()
    if name in _JOB_TASKS and isinstance(args, list | tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _celery_data_job_id(record: logging.LogRecord) -> str | None:
    # Celery's "received" and "failed" lines are logged outside the task, with the task in extra={"data": ...}.
    data = getattr(record, "data", None)
    if isinstance(data, dict) and data.get("name") in _JOB_TASKS:
        match = re.search(_UUID, str(data.get("args", "")))
        return match.group(0) if match else None
    return None


def _fields(record: logging.LogRecord, redactor: Redactor) -> dict[str, Any]:
    task_name, task_id, _ = _current_task()
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname,
        "logger": record.name,
        "msg": redactor(record.getMessage()),
    }
    job_id = job_id_of(record)
    if job_id is not None:
        out["job_id"] = job_id
    if task_name is not None:
        out["task"] = task_name
        out["task_id"] = task_id
    out["pid"] = record.process
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        out["exc"] = redactor(record.exc_text)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, job_id, task, task_id, pid, exc."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(json.dumps(_fields(record, self.redactor), ensure_ascii=False, default=str))


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs, values quoted when they hold spaces or quotes; the traceback on following lines."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self.redactor)
        exc = fields.pop("exc", None)
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        if exc:
            line += "\n" + exc
        return self.redactor(line)


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


def make_formatter(log_format: Format, redactor: Redactor) -> logging.Formatter:
    return JsonFormatter(redactor) if log_format == "json" else LogfmtFormatter(redactor)


@dataclass
class _Config:
    log_format: Format = "json"
    redactor: Redactor = field(default_factory=Redactor)


# Set once per process by `configure` (the Celery app does it when created); read by the logging signal hooks.
_config = _Config()


def secrets_of(settings: Settings) -> Redactor:
    """A redactor for the secrets ``settings`` holds: the API key (environment or key file), the UI password, and
    the passwords of the broker and database URLs (Celery and SQLAlchemy mask those already; this is the net)."""
    try:
        key = settings.resolved_api_key()
    except SettingsError:
        key = None
    values = [
        None if key is None else key.get_secret_value(),
        None if settings.ui_password is None else settings.ui_password.get_secret_value(),
    ]
    for url in (settings.broker_url, settings.database_url, settings.stream_redis_url):
        values.extend(_url_passwords(url))
    return Redactor.of(values)


def _url_passwords(url: str) -> list[str]:
    """A URL's password as written (percent-encoded) and decoded."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [] if password is None else [password, unquote(password)]


def configure(settings: Settings) -> None:
    """Remember this process's log format and secrets for :func:`install_on`."""
    global _config
    _config = _Config(log_format=settings.log_format, redactor=secrets_of(settings))


def install_on(logger: logging.Logger) -> None:
    """Give every handler of ``logger`` the structured formatter and the redacting filter (idempotent)."""
    formatter = make_formatter(_config.log_format, _config.redactor)
    for handler in logger.handlers:
        handler.setFormatter(formatter)
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(_config.redactor))


def setup_process_logging(settings: Settings, *, stream: Any = None) -> None:
    """Root logging for a process Celery does not set up (the jobs page, Flower): one stderr handler."""
    configure(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.StreamHandler(stream or sys.stderr))
    root.setLevel(settings.log_level.upper())
    install_on(root)
