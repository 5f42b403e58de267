"""What every benchmark needs: an emulator process, a Redis database, a ledger, service processes, and a sampler
that reads CPU time and memory of a process tree from /proc.

Each benchmark gets its own emulator (a subprocess on a free port), its own Redis database number (flushed before
use) and its own SQLite ledger in a temporary folder, so runs never disturb each other or the test suite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
EVENT_ID = "bench-event-1"
REDIS_BASE_URL = os.environ.get("DSIMPORT_BENCH_REDIS", "redis://127.0.0.1:6379")
# Redis hashes the baseline loops write (task id -> Unix time, or count).
STARTED = "bench:started"
DETECTED = "bench:detected"
OUTCOME = "bench:outcome"
ERRORS = "bench:errors"
# The benchmarks' Redis databases; the test suite uses 3, 4, 11 and 13.
BENCH_DBS = (5, 6, 7, 8)
# The ledgers a benchmark can run on. PostgreSQL: a database created on this server for the run and dropped after
# (the server's default database in the URL is only used to create and drop it).
LEDGERS = ("sqlite", "postgresql")
POSTGRES_BASE_URL = os.environ.get("DSIMPORT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_redis(db: int) -> str:
    """The URL of Redis database ``db``, flushed."""
    if db not in BENCH_DBS:
        raise ValueError(f"benchmarks use Redis databases {BENCH_DBS}, not {db}")
    url = f"{REDIS_BASE_URL}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def wait_until(predicate: Any, *, timeout_s: float, interval_s: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------------------------------- emulator


class Emulator:
    """``python -m emulator`` in a subprocess, and the admin calls the benchmarks make."""

    def __init__(self, *, task_duration: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT), EMULATOR_API_KEY=API_KEY)
        command = [sys.executable, "-m", "emulator", "--port", str(self.port), "--task-duration", task_duration]
        log = (log_dir / "emulator.log").open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.admin = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
        wait_until(self._healthy, timeout_s=20, what="the emulator")
        self.admin.post("/_emulator/seed", json={"events": [{"event_id": EVENT_ID}]}).raise_for_status()

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {self.process.returncode}")
        try:
            return self.admin.get("/_emulator/health").status_code == 200
        except httpx.TransportError:
            return False

    def configure(self, **knobs: Any) -> None:
        self.admin.post("/_emulator/config", json=knobs).raise_for_status()

    def freeze(self) -> None:
        self.admin.post("/_emulator/clock", json={"frozen": True}).raise_for_status()

    def unfreeze(self) -> float:
        """Let the clock run again; returns wall time minus emulator time (add it to an emulator timestamp)."""
        before = time.time()
        answer = self.admin.post("/_emulator/clock", json={"frozen": False})
        after = time.time()
        answer.raise_for_status()
        return (before + after) / 2 - float(answer.json()["now_ts"])

    def clock_offset(self) -> float:
        before = time.time()
        answer = self.admin.post("/_emulator/clock", json={})
        after = time.time()
        answer.raise_for_status()
        return (before + after) / 2 - float(answer.json()["now_ts"])

    def stats(self, *, tasks: bool = True) -> dict[str, Any]:
        answer = self.admin.get("/_emulator/stats", params={"tasks": "true" if tasks else "false"})
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def reset_stats(self) -> None:
        self.admin.post("/_emulator/stats/reset").raise_for_status()

    def create_datasets(self, count: int) -> list[str]:
        ids = []
        for n in range(count):
            created = self.admin.post("/v1/observability/datasets", json={"name": f"bench {n}", "description": ""})
            created.raise_for_status()
            ids.append(created.json()["id"])
        return ids

    def create_tasks(self, dataset_ids: Sequence[str]) -> list[str]:
        """Start one explorer import per entry of ``dataset_ids``; returns the task ids, in the same order."""
        return asyncio.run(_create_tasks(self.url, dataset_ids))

    def stop(self) -> None:
        self.admin.close()
        stop_process(self.process)


async def _create_tasks(url: str, dataset_ids: Sequence[str]) -> list[str]:
    # Several small clients: one httpx pool with many connections is slower than the server (see emulator_rps.py).
    clients = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            timeout=120,
        )
        for _ in range(8)
    ]
    semaphore = asyncio.Semaphore(32)
    body = {"completion_event_ids": [EVENT_ID]}

    async def one(index: int, dataset_id: str) -> str:
        async with semaphore:
            client = clients[index % len(clients)]
            answer = await client.post(f"/v1/observability/datasets/{dataset_id}/imports/from-explorer", json=body)
            answer.raise_for_status()
            task_id: str = answer.json()["id"]
            return task_id

    try:
        return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(dataset_ids))))
    finally:
        for client in clients:
            await client.aclose()


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------------------------------------------------- ledger


@dataclass
class Workspace:
    """A temporary folder holding the service's home and the logs of one benchmark, and its ledger: a SQLite file
    in the folder, or a PostgreSQL database of its own (see :func:`postgres_database`)."""

    path: Path
    database_url: str

    @property
    def logs(self) -> Path:
        return self.path / "logs"


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database on ``POSTGRES_BASE_URL``'s server, migrated; dropped on exit (connections
    still open to it are closed by the server: ``WITH (FORCE)``)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from store.db import make_engine, upgrade

    base = make_url(POSTGRES_BASE_URL)
    database = f"bench_{name.replace('-', '_')}_{os.getpid()}"
    admin = make_engine(base.render_as_string(hide_password=False), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = base.set(database=database).render_as_string(hide_password=False)
        try:
            upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def workspace(
    name: str, *, ledger: str = "sqlite", keep: bool = bool(os.environ.get("BENCH_KEEP"))
) -> Iterator[Workspace]:
    """A temporary folder and a migrated ledger: ``ledger`` is "sqlite" (a file in the folder) or "postgresql"."""
    from store.db import upgrade

    if ledger not in LEDGERS:
        raise ValueError(f"ledger must be one of {LEDGERS}, not {ledger!r}")
    path = Path(tempfile.mkdtemp(prefix=f"dsimport-bench-{name}-"))
    (path / "logs").mkdir()
    (path / "home").mkdir()
    try:
        if ledger == "postgresql":
            with postgres_database(name) as url:
                yield Workspace(path, url)
        else:
            url = f"sqlite:///{path / 'ledger.db'}"
            upgrade(url)
            yield Workspace(path, url)
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- processes


def service_env(ws: Workspace, *, broker_url: str, api_url: str, **settings: str) -> dict[str, str]:
    """The environment of our worker and beat: the defaults, pointed at this benchmark's ledger, Redis and API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DSIMPORT_HOME": str(ws.path / "home"),
            "DSIMPORT_DATABASE_URL": ws.database_url,
            "DSIMPORT_BROKER_URL": broker_url,
            "DSIMPORT_API_BASE_URL": api_url,
            "MISTRAL_API_KEY": API_KEY,
        }
    )
    env.update({f"DSIMPORT_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class Service:
    """One long-running process (worker or beat), its log file, and how to tell it is ready."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, command: Sequence[str], *, env: dict[str, str], log_dir: Path) -> Service:
        log_path = log_dir / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return cls(name, process, log_path)

    def wait_for_log(self, text: str, *, timeout_s: float = 60.0) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            return text in self.log_path.read_text(errors="replace")

        wait_until(seen, timeout_s=timeout_s, interval_s=0.2, what=f"{self.name} to log {text!r}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        stop_process(self.process)

    def interrupt(self, *, timeout_s: float = 60.0) -> None:
        """Ctrl-C and wait (py-spy writes its output on SIGINT only)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.stop()


def our_worker(
    env: dict[str, str], log_dir: Path, *, pool: str, concurrency: int, name: str = "worker", routed: bool = False
) -> Service:
    """``dsimport worker``; with ``routed``, the same app with the poll tick on its own queue (bench/routed_app.py)."""
    start = (
        [sys.executable, "-m", "celery", "-A", "bench.routed_app", "worker", "-Q", "dsimport,dsimport.poll"]
        if routed
        else [sys.executable, "-m", "cli", "worker"]
    )
    command = [
        *start,
        "--pool", pool, "--concurrency", str(concurrency),
        "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    service = Service.start(name, command, env=env, log_dir=log_dir)
    service.wait_for_log(" ready.")
    return service


def our_beat(env: dict[str, str], log_dir: Path, *, routed: bool = False) -> Service:
    start = [sys.executable, "-m", "celery", "-A", "bench.routed_app"] if routed else [sys.executable, "-m", "cli"]
    service = Service.start("beat", [*start, "beat", "--loglevel", "INFO"], env=env, log_dir=log_dir)
    service.wait_for_log("beat: Starting")
    return service


@dataclass
class Stack:
    """Our service for one benchmark: its workspace, Redis database, emulator, worker and (optionally) beat."""

    ws: Workspace
    broker_url: str
    emulator: Emulator
    env: dict[str, str]
    worker: Service
    beat: Service | None

    def session_factory(self, *, read_only: bool = False) -> Any:
        from store.db import make_engine, make_session_factory

        return make_session_factory(make_engine(self.ws.database_url), read_only=read_only)


@contextmanager
def our_stack(
    name: str,
    *,
    redis_db: int,
    task_duration: str,
    pool: str = "prefork",
    concurrency: int = 1,
    beat: bool = True,
    routed: bool = False,
    settings: dict[str, str] | None = None,
) -> Iterator[Stack]:
    with workspace(name) as ws:
        broker = fresh_redis(redis_db)
        emu = Emulator(task_duration=task_duration, log_dir=ws.logs)
        services: list[Service] = []
        try:
            env = service_env(ws, broker_url=broker, api_url=emu.url, **(settings or {}))
            worker = our_worker(env, ws.logs, pool=pool, concurrency=concurrency, routed=routed)
            services.append(worker)
            beat_service = our_beat(env, ws.logs, routed=routed) if beat else None
            if beat_service is not None:
                services.append(beat_service)
            yield Stack(ws, broker, emu, env, worker, beat_service)
        finally:
            for service in reversed(services):
                service.stop()
            emu.stop()


def celery_sender(broker_url: str) -> Any:
    """A bare Celery app that sends tasks by name, as any producer would."""
    from celery import Celery

    return Celery("bench-sender", broker=broker_url, set_as_current=False)


def py_spy(worker: Service, output: Path, log_dir: Path) -> Service:
    """Record ``worker``'s process tree with py-spy (collapsed stacks) until ``interrupt()``."""
    command = [
        str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "--nonblocking", "--rate", "50",
        "--format", "raw", "--output", str(output), "--pid", str(worker.process.pid),
    ]  # fmt: skip
    profiler = Service.start("py-spy", command, env=dict(os.environ), log_dir=log_dir)
    time.sleep(1.0)
    return profiler
