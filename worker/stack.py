"""``dsimport up``: the whole service on one machine, from embedded defaults.

Starts, as child processes in their own process groups: the API emulator with its demo world (only when no
``MISTRAL_API_KEY`` is set; with a key the real API is used), a Redis server when none answers at the broker URL,
a worker and beat. Migrates the SQLite ledger under ``DSIMPORT_HOME`` first. Ctrl-C (or SIGTERM) stops every child:
SIGTERM first, SIGKILL for any that is still alive after a grace period, so nothing is left behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from store.db import upgrade

from .preflight import check_broker
from .settings import Settings

STOP_GRACE_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Stack:
    """The running children, stopped in reverse order of start."""

    home: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        log_path = self.home / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            list(argv), env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [child for child in self.children if child.process.poll() is not None]

    def stop(self) -> None:
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
            # Whatever the child started in its group goes too.
            _signal_group(child.process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_http(url: str, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _wait_redis(url: str, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check_broker(url, timeout_s=0.5) is None:
            return True
        time.sleep(0.1)
    return False


def run_stack(settings: Settings, *, worker_concurrency: int = 2, echo: object = print) -> int:
    """Start everything, print the addresses, wait for Ctrl-C or a child's death, stop everything."""
    say = echo if callable(echo) else print
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["DSIMPORT_HOME"] = str(home)
    env["DSIMPORT_DATABASE_URL"] = settings.database_url
    exe = [sys.executable, "-m", "worker"]
    stack = Stack(home)

    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        upgrade(settings.database_url)
        say(f"ledger    {settings.database_url}")

        broker_url = settings.broker_url
        if check_broker(broker_url, timeout_s=1.0) is not None:
            redis_server = shutil.which("redis-server")
            if redis_server is None:
                say(
                    f"no Redis at {broker_url} and no redis-server to start: install Redis or set DSIMPORT_BROKER_URL"
                )
                return 1
            port = free_port()
            data = home / "redis"
            data.mkdir(exist_ok=True)
            stack.start(
                "redis",
                [
                    redis_server,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(data),
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                ],
                env,
            )
            broker_url = f"redis://127.0.0.1:{port}/0"
            if not _wait_redis(broker_url):
                say("the embedded Redis did not start; see " + str(home / "logs" / "redis.log"))
                return 1
        env["DSIMPORT_BROKER_URL"] = broker_url
        say(f"broker    {broker_url}")

        if settings.resolved_api_key() is None:
            port = free_port()
            key_file = home / "emulator-api-key"
            if not key_file.exists():
                key_file.write_text(secrets.token_urlsafe(24), encoding="utf-8")
                key_file.chmod(0o600)
            env["EMULATOR_API_KEY"] = key_file.read_text(encoding="utf-8").strip()
            env["DSIMPORT_API_KEY_FILE"] = str(key_file)
            env.pop("MISTRAL_API_KEY", None)
            emulator_url = f"http://127.0.0.1:{port}"
            stack.start(
                "emulator",
                [
                    *exe,
                    "emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--seed",
                    "demo",
                    "--state",
                    str(home / "emulator-state.json"),
                ],
                env,
            )
            if not _wait_http(emulator_url + "/_emulator/health"):
                say("the emulator did not start; see " + str(home / "logs" / "emulator.log"))
                return 1
            env["DSIMPORT_API_BASE_URL"] = emulator_url
            say(f"emulator  {emulator_url}/  (API key in {key_file})")
        else:
            say(f"api       {settings.api_base_url}/")

        stack.start(
            "worker",
            [*exe, "worker", "--concurrency", str(worker_concurrency), "--hostname", "dsimport@%h"],
            env,
        )
        stack.start("beat", [*exe, "beat"], env)
        say(f"logs      {home / 'logs'}/")
        say("running; press Ctrl-C to stop")
        while not stopping:
            dead = stack.dead()
            if dead:
                for child in dead:
                    say(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
                return 1
            time.sleep(0.5)
        return 0
    finally:
        say("stopping")
        stack.stop()
