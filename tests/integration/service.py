"""Real service processes for integration tests: workers and beat as subprocesses of `python -m cli`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs.request_import import request_import
from store import guarantees
from store.jobs import get_job
from store.models import TERMINAL_JOB_STATUSES, ImportJob, ImportKind
from worker.celery_app import create_app
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def service_environment(
    home: Path, *, database_url: str, broker_url: str, api_url: str, api_key: str, **overrides: str
) -> dict[str, str]:
    """The environment of service processes under test: this one's, minus our own settings, plus fast polling.

    A mutation run's switch (``DSIMPORT_TEST_DISABLE_GUARANTEES``) is kept: the mechanism it removes lives in
    these processes.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_")) or k == guarantees.ENV_VAR
    }
    env.update(
        {
            "DSIMPORT_HOME": str(home),
            "DSIMPORT_DATABASE_URL": database_url,
            "DSIMPORT_BROKER_URL": broker_url,
            "DSIMPORT_API_BASE_URL": api_url,
            "MISTRAL_API_KEY": api_key,
            "DSIMPORT_POLL_TICK_S": "0.5",
            "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.5",
            "DSIMPORT_RECOVERY_INTERVAL_S": "5",
            "DSIMPORT_LOG_LEVEL": "INFO",
            **overrides,
        }
    )
    home.mkdir(exist_ok=True)
    return env


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings those processes read, for requests made from the test process."""
    fields: dict[str, Any] = {
        key.removeprefix("DSIMPORT_").lower(): value for key, value in env.items() if key.startswith("DSIMPORT_")
    }
    return Settings(api_key=env["MISTRAL_API_KEY"], **fields)


@dataclass
class ServiceProcesses:
    """Workers and one beat on the given environment; stopped (and reaped) by ``stop``."""

    env: dict[str, str]
    log_dir: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append((name, process))
        return process

    def start_worker(self, name: str = "worker", *, concurrency: int = 2) -> subprocess.Popen[bytes]:
        return self.start(
            name,
            "worker",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        )

    def wait_until_consuming(self, name: str = "worker", *, timeout_s: float = 60.0) -> None:
        """Wait for worker ``name`` to answer a Celery ping: it is then taking tasks from the broker.

        For tests whose clock starts with the request (a job deadline): a worker still importing its modules on a
        loaded machine would otherwise eat into it.
        """
        app = create_app(settings_from_env(self.env))
        deadline = time.monotonic() + timeout_s
        try:
            while not app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=1.0):
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker {name} did not answer a ping within {timeout_s:g} s\n{self.logs()}")
        finally:
            app.close()

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", "beat")

    def stop(self) -> None:
        for _, process in self.processes:
            _kill_group(process, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait()
            _kill_group(process, signal.SIGKILL)
        self.processes.clear()

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name} (last 4000 chars)\n{text[-4000:]}")
        return "\n".join(parts)


def _kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Requester:
    """Requests imports the way every trigger does: a ledger row, then a submit message on the broker."""

    settings: Settings
    sessions: sessionmaker[Session]

    def __post_init__(self) -> None:
        self.app = create_app(self.settings)

    def request(self, kind: ImportKind, dataset_id: str, params: dict[str, Any], key: str | None = None) -> str:
        requested = request_import(
            self.sessions,
            kind=kind,
            dataset_id=dataset_id,
            params=params,
            origin="test",
            now=_now(),
            deadline_s=self.settings.job_deadline_s,
            send=lambda job_id: self.app.send_task("dsimport.submit", args=[job_id]),
            idempotency_key=key,
        )
        return requested.job_id

    def close(self) -> None:
        self.app.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def wait_for_jobs(
    sessions: sessionmaker[Session],
    job_ids: Iterable[str],
    *,
    timeout_s: float,
    on_timeout: Callable[[], str] = lambda: "",
) -> dict[str, ImportJob]:
    """Wait until every job is terminal; returns them (detached, readable)."""
    ids = list(job_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as session:
            jobs = {job_id: get_job(session, job_id) for job_id in ids}
            pending = [j for j in jobs.values() if j is None or j.status not in TERMINAL_JOB_STATUSES]
            if not pending:
                for job in jobs.values():
                    session.expunge(job)  # type: ignore[arg-type]
                return jobs  # type: ignore[return-value]
            summary = {str(j.status) for j in pending if j is not None}
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} of {len(ids)} jobs not finished ({summary})\n{on_timeout()}")
        time.sleep(0.25)


def wait_for_poll_ticks(
    broker_url: str,
    *,
    after: float,
    spread_s: float = 1.0,
    timeout_s: float = 30.0,
    on_timeout: Callable[[], str] = lambda: "",
) -> None:
    """Wait until the poller has run ticks for ``spread_s`` past ``after`` (a ``time.time()``).

    The evidence a negative check needs first: a check that nothing was called since ``after`` proves something only
    if the service was live and could have called. Every poll tick stamps ``last_poll_at`` in the metrics hash on
    the broker's Redis (:func:`jobs.metrics.record_poll`), whether or not it found a job to poll.
    """
    import redis

    from jobs.metrics import METRICS_KEY

    client = redis.Redis.from_url(broker_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            raw = client.hget(METRICS_KEY, "last_poll_at")
            if raw is not None and float(raw) >= after + spread_s:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no poll tick {spread_s} s after the moment checked\n{on_timeout()}")
            time.sleep(0.1)
    finally:
        client.close()
