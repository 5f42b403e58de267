"""`EmulatorServer`: the emulator on a real loopback socket for tests, in a background thread.

Typical use::

    with EmulatorServer(seed="demo", task_duration_s=1, clock=EmulatorClock(frozen=True)) as emu:
        client = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.api_key}"})
        emu.configure(failure_rate=0.5)
        emu.advance_clock(2)
        emu.stats()["requests"]
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .app import build_app
from .clock import Clock, EmulatorClock
from .config import EmulatorSettings, Knobs, parse_duration
from .faults import uvicorn_closer
from .runtime import Emulator

__all__ = ["DEFAULT_TEST_KEY", "EmulatorServer"]

# Sent by clients when the server accepts any token.
DEFAULT_TEST_KEY = "emulator-test-key"


class EmulatorServer:
    """Serves `build_app` with uvicorn on 127.0.0.1 and a free port; a context manager.

    ``removed_import_routes="gone"`` makes the from-campaign and from-explorer import routes answer as today's API
    does (a route it does not have: 404, ``error_code`` null); ``emu.configure(removed_import_routes=...)`` switches
    it at run time.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        seed: str | dict[str, Any] | None = None,
        state_path: Path | None = None,
        task_duration_s: float | str | tuple[float, float] = 2.0,
        failure_rate: float = 0.0,
        latency_ms: float = 0.0,
        removed_import_routes: str = "served",
        knobs: Knobs | None = None,
        clock: Clock | None = None,
        startup_timeout_s: float = 10.0,
    ) -> None:
        if knobs is None:
            knobs = Knobs(
                task_duration_s=parse_duration(
                    list(task_duration_s) if isinstance(task_duration_s, tuple) else task_duration_s
                ),
                failure_rate=failure_rate,
                latency_ms=latency_ms,
            ).updated({"removed_import_routes": removed_import_routes})
        self._required_key = api_key
        self._fixture = seed if isinstance(seed, dict) else None
        self.settings = EmulatorSettings(
            api_key=api_key,
            seed=seed if isinstance(seed, str) else None,
            state_path=state_path,
            knobs=knobs,
        )
        self.clock: Clock = clock if clock is not None else EmulatorClock()
        self._startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._admin: httpx.Client | None = None
        self._emulator: Emulator | None = None
        self._socket: socket.socket | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"

    @property
    def api_key(self) -> str:
        """The bearer token clients should send."""
        return self._required_key or DEFAULT_TEST_KEY

    @property
    def emulator(self) -> Emulator:
        """The in-process emulator (world, stats) for direct inspection."""
        if self._emulator is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._emulator

    def start(self) -> EmulatorServer:
        app = build_app(self.settings, clock=self.clock)
        self._emulator = app.state.emulator
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            loop="asyncio",
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        # Lets a `reset` fault drop the connection its request came on.
        self._emulator.faults.closer = uvicorn_closer(server)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"emulator-{port}", daemon=True)
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{port}"
        self._admin = httpx.Client(base_url=self.url, timeout=30.0)
        if self._fixture is not None:
            self.seed(self._fixture)
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Admin helpers (over the socket, like any other client) --------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._admin is None:
            raise RuntimeError("EmulatorServer is not started")
        response = self._admin.request(method, "/_emulator" + path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def seed(self, fixture: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/seed", json=fixture)
        return result

    def configure(self, **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/config", json=knobs)
        return result

    def stats(self, *, include_tasks: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats", params={"tasks": str(include_tasks).lower()})
        return result

    def reset_stats(self) -> None:
        self._call("POST", "/stats/reset")

    def reset(self, *, reseed: bool = True) -> None:
        self._call("POST", "/reset", json={"reseed": reseed})

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/clock", json={"advance_s": seconds})
        return result

    def delete_task(self, task_id: str) -> None:
        self._call("DELETE", f"/tasks/{task_id}")

    def add_foreign_tasks(self, dataset_id: str, count: int) -> list[str]:
        """Start ``count`` tasks on ``dataset_id`` as another client would (not counted in ``tasks_created``)."""
        result: dict[str, Any] = self._call("POST", "/tasks", json={"dataset_id": dataset_id, "count": count})
        return [str(task_id) for task_id in result["ids"]]

    def task_origins(self) -> dict[str, dict[str, Any]]:
        """What each live task imports: ``{task_id: {"dataset_id", "kind", "origins": [...], "requested"}}``."""
        result: dict[str, dict[str, dict[str, Any]]] = self._call("GET", "/task-origins")
        return result["tasks"]

    def inventory(self, datasets: list[str] | None = None) -> dict[str, Any]:
        """What the world holds: records per dataset (``id``, ``origin``, ``created_at``) and every event's time and
        ``extra_fields`` (``datasets``: only those datasets' records)."""
        params = {"datasets": ",".join(datasets)} if datasets else None
        result: dict[str, Any] = self._call("GET", "/inventory", params=params)
        return result

    def save(self, path: Path | None = None) -> str:
        body = {"path": str(path)} if path is not None else {}
        result: dict[str, Any] = self._call("POST", "/save", json=body)
        return str(result["saved"])
