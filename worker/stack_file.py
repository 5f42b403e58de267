"""Where a running ``dsimport up`` can be found: ``<home>/stack.json``, and the settings layer that reads it.

``dsimport up`` writes the addresses of its parts there once they all answer (broker, ledger, API base URL and the
path of the API key FILE, never a key; the jobs page and Flower; its pid and start time) and removes the file when it
stops. Every command run with the same ``DSIMPORT_HOME`` then takes the broker, the ledger and the API from it when
neither the environment nor ``.env`` names them: explicit environment > live stack file > embedded defaults.

A file whose writer is gone (its pid no longer runs) or whose broker no longer answers is stale: it is ignored, with
one line on stderr saying why. Whether the broker answers is asked with a raw ``PING`` over a socket, so that reading
settings loads no Redis client (``tests/cli/test_startup_imports.py``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "STACK_FILE_NAME",
    "StackRecord",
    "broker_answers",
    "live_stack",
    "pid_alive",
    "read_stack_file",
    "remove_stack_file",
    "settings_from_stack",
    "stack_file_path",
    "write_stack_file",
]

STACK_FILE_NAME = "stack.json"
_PING_TIMEOUT_S = 0.5
# Settings that only make sense together: a stack's API URL goes with its key file, never with another key.
_API_FIELDS = ("api_base_url", "api_key_file")
_API_EXPLICIT = ("api_base_url", "api_key_file", "api_key", "MISTRAL_API_KEY", "DSIMPORT_API_KEY")
# Stale files already reported by this process: a command that reads its settings twice says it once.
_reported: set[Path] = set()


@dataclass(frozen=True)
class StackRecord:
    """What ``dsimport up`` tells the other commands run with its home. Secrets stay in their own files."""

    pid: int
    started_at: str
    broker_url: str
    database_url: str
    api_base_url: str
    api_key_file: str | None
    jobs_page_url: str
    flower_url: str

    @classmethod
    def from_json(cls, data: Any) -> StackRecord:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in fields(cls)}
        missing = names - data.keys()
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        values = {name: data[name] for name in names}
        if not isinstance(values["pid"], int) or values["pid"] <= 0:
            raise ValueError("pid is not a process id")
        for name in names - {"pid", "api_key_file"}:
            if not isinstance(values[name], str):
                raise ValueError(f"{name} is not a string")
        if values["api_key_file"] is not None and not isinstance(values["api_key_file"], str):
            raise ValueError("api_key_file is not a string")
        return cls(**values)


def stack_file_path(home: Path) -> Path:
    return home / STACK_FILE_NAME


def write_stack_file(home: Path, record: StackRecord) -> Path:
    """Write ``record`` atomically (a reader sees the old file or the whole new one), readable by the owner only:
    the broker and ledger URLs may hold passwords."""
    path = stack_file_path(home)
    home.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".stack-", suffix=".json", dir=home)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(record), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def remove_stack_file(home: Path, *, pid: int) -> bool:
    """Remove the stack file if the process ``pid`` wrote it (a newer stack's file is left alone)."""
    path = stack_file_path(home)
    record = read_stack_file(path)
    if record is None or record.pid != pid:
        return False
    path.unlink(missing_ok=True)
    return True


def read_stack_file(path: Path) -> StackRecord | None:
    """The record in ``path``; None when there is none or it cannot be read as one."""
    try:
        return StackRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def broker_answers(url: str, *, timeout_s: float = _PING_TIMEOUT_S) -> bool:
    """True when a Redis answers at ``url``: any reply to ``PING`` counts (``-NOAUTH`` is a Redis answering)."""
    try:
        parts = urlsplit(url)
        if parts.scheme in ("unix", "redis+socket"):
            family, address = socket.AF_UNIX, parts.path
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            sock.connect(address)
        else:
            sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout_s)
    except (OSError, ValueError):
        return False
    with sock:
        if parts.scheme == "rediss":
            return True  # a TLS Redis would want a handshake first: that it accepts connections is enough
        try:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False


def live_stack(home: Path, *, notice: Any = None) -> StackRecord | None:
    """The record of the stack running from ``home``; None when there is none. A stale file is ignored, with one
    line written to ``notice`` (stderr when not given) saying why."""
    path = stack_file_path(home)
    if not path.exists():
        return None
    record = read_stack_file(path)
    problem = None
    if record is None:
        problem = "it cannot be read"
    elif not pid_alive(record.pid):
        problem = f"the stack that wrote it (pid {record.pid}) is no longer running"
    elif not broker_answers(record.broker_url):
        problem = f"its broker does not answer (pid {record.pid})"
    if problem is None:
        return record
    if notice is not None or path not in _reported:
        _reported.add(path)
        print(f"dsimport: ignoring {path}: {problem}", file=notice or sys.stderr)
    return None


def settings_from_stack(explicit: dict[str, Any], home: Path) -> dict[str, Any]:
    """The settings a live stack in ``home`` supplies, given the ``explicit`` ones (environment, ``.env``, keyword
    arguments), which win: each of the broker and the ledger on its own, the API URL and key file only together and
    only when no API URL or key is explicit."""
    wanted = [name for name in ("broker_url", "database_url") if not explicit.get(name)]
    api_wanted = not any(explicit.get(name) for name in _API_EXPLICIT)
    if not wanted and not api_wanted:
        return {}  # nothing to supply: the file is not even read (the stack's own children are here)
    record = live_stack(home)
    if record is None:
        return {}
    values: dict[str, Any] = {name: getattr(record, name) for name in wanted if getattr(record, name)}
    if api_wanted and record.api_key_file:
        values.update({name: getattr(record, name) for name in _API_FIELDS})
    return values
