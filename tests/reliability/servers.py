"""Throwaway Redis and PostgreSQL servers on free ports, for tests that stop and restart them.

The shared servers (Redis on 6379, PostgreSQL on 5432) serve every other test at the same time: a test that kills
its server starts one of its own here, in a temporary folder removed afterwards.

- :class:`RedisServer`: ``redis-server`` with an append-only file written on every command (``appendfsync always``),
  so a server killed with SIGKILL comes back with everything it had acknowledged.
- :class:`PostgresServer`: a fresh cluster (``initdb``) run as the ``postgres`` user, since PostgreSQL refuses to
  run as root. :meth:`PostgresServer.crash` is ``pg_ctl stop -m immediate``: every backend dies without a clean
  shutdown, and the next start replays the write-ahead log, as after a power cut of the database host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: object, *, timeout_s: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """One ``redis-server`` process on a free port, with append-only persistence; restartable on the same port."""

    def __init__(self, folder: Path, *, persistent: bool = True) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (the Debian package redis-server provides it)")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", *persistence, "--daemonize", "no", "--protected-mode", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.starts += 1
        _wait(self._ping, timeout_s=15, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to the clients; only what the append-only file holds survives."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, down_s: float) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@contextmanager
def redis_server(folder: Path, *, persistent: bool = True) -> Iterator[RedisServer]:
    server = RedisServer(folder, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class PostgresServer:
    """A PostgreSQL 15 cluster of its own on a free port: trust authentication on 127.0.0.1, or, given a
    ``password``, SCRAM password authentication for its one user (only a client holding that password gets in)."""

    def __init__(self, *, password: str | None = None) -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            pytest.fail(f"PostgreSQL server binaries not found under {PG_BIN} (Debian package postgresql-15)")
        # Not under pytest's tmp_path: its folders are root's and closed to the postgres user.
        self.folder = Path(tempfile.mkdtemp(prefix="dsimport-pg-"))
        shutil.chown(self.folder, user=PG_USER, group=PG_USER)
        self.data = self.folder / "data"
        self.port = free_port()
        self.starts = 0
        self.password = password

    @property
    def url(self) -> str:
        login = f"{PG_USER}:{self.password}" if self.password is not None else PG_USER
        return f"postgresql+psycopg://{login}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout_s: float = 60) -> None:
        result = subprocess.run(
            ["runuser", "-u", PG_USER, "--", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=self.folder,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr or result.stdout}")

    def init(self) -> None:
        auth = ["--auth=trust"]
        if self.password is not None:
            password_file = self.folder / "password"
            password_file.write_text(self.password + "\n")
            shutil.chown(password_file, user=PG_USER, group=PG_USER)
            auth = ["--auth=scram-sha-256", f"--pwfile={password_file}"]
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), *auth, "--username", PG_USER,
            "--no-sync", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
            # Durability across a crash of the server process needs no fsync (the OS keeps the pages); speed does.
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        self.starts += 1

    def crash(self) -> None:
        """Every backend killed at once, no checkpoint: the next start recovers from the write-ahead log."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self, *, down_s: float) -> None:
        self.crash()
        time.sleep(down_s)
        self.start()

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def postgres_server(*, password: str | None = None) -> Iterator[PostgresServer]:
    server = PostgresServer(password=password)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
