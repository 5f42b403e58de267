"""One run of the fault campaign: start everything, play the plan of a seed, quiet down, collect, check.

A run owns all its servers, so it can break them: a Redis of its own (append-only, restartable), a SQLite file or a
PostgreSQL cluster of its own (crashable), the emulator on a loopback socket, and the worker and beat processes of
:mod:`tests.faultsim.fleet`. Requests come in as stream messages written by the run (a producer that retries while
Redis is down, as any producer would).

The timeline: processes start; once a consumer group exists (evidence the service reads), the plan's sends and
faults are played at their second, with the schedules' items arriving meanwhile (:mod:`tests.faultsim.schedule_run`
defines the schedules before the service starts); at ``fault_window_s`` every emulator fault is switched off, paused
processes resume, killed ones are back. The quiet period then waits until every request is a job, every job is
terminal and every schedule has fired once more after that (then the schedules are paused), or ``quiet_timeout_s``
passes. Last comes an idle window: with all jobs terminal, the API should not be called at all. What the run saw is
handed to :func:`tests.faultsim.checker.check`, which reads it without the code under test.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from emulator.testing import EmulatorServer
from store.db import upgrade
from tests.fixtures.servers import PostgresServer, RedisServer
from tests.integration.service import service_environment

from .checker import TERMINAL, Observation, ScheduleSeen, Verdict, check
from .fleet import Fleet
from .plan import POST_ROUTE, Fault, FaultPlan, Send
from .schedule_plan import COPY, PLAIN, READ_ROUTES, WINDOW, ScheduleFault
from .schedule_run import ScheduleDriver

STREAM = "dsimport:requests"
GROUP = "dsimport"
QUIET_TIMEOUT_S = 45.0
IDLE_WINDOW_S = 4.0


def message_body(send: Send, dataset_ids: list[str]) -> bytes:
    request = send.request
    body = {
        "id": request.message_id,
        "kind": "explorer",
        "dataset_id": dataset_ids[request.dataset],
        "completion_event_ids": [request.event_id],
    }
    return json.dumps(body, sort_keys=True).encode()


@dataclass
class Trace:
    """What the run did and saw while the plan played (input to the checker besides the final state)."""

    injected: Counter[str] = field(default_factory=Counter)
    foreign_tasks: set[str] = field(default_factory=set)
    deleted_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Processes interrupted mid-work (kill, pause) and server restarts, each with the submits it may have cut.
    interrupted_submits: int = 0
    # POSTs whose answer the client cannot have used although the server acted (slow past the timeout).
    late_posts: int = 0
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, amount: int = 1) -> None:
        with self.lock:
            self.injected[kind] += amount


class Run:
    def __init__(self, plan: FaultPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.timing = plan.timing
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.trace = Trace()
        self.redis_server: RedisServer | None = None
        self.postgres: PostgresServer | None = None
        self.emulator: EmulatorServer | None = None
        self.fleet: Fleet | None = None
        self.database_url = ""
        self.dataset_ids: list[str] = []
        self.schedules: ScheduleDriver | None = None
        self.threads: list[threading.Thread] = []
        self.sent: Counter[str] = Counter()
        # The import POSTs counted when the POST route turned slow (None while it is not).
        self.slow_posts_from: int | None = None
        # Two restarts of one server drawn close together take turns.
        self.restart_lock = threading.Lock()

    # Setting up -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.redis_server = RedisServer(self.workdir / "redis")
        self.redis_server.start()
        if self.plan.backend == "postgresql":
            self.postgres = PostgresServer()
            self.postgres.init()
            self.postgres.start()
            self.database_url = self.postgres.url
        else:
            self.database_url = f"sqlite:///{self.workdir / 'ledger.db'}"
        upgrade(self.database_url)
        self.emulator = EmulatorServer(task_duration_s=self.timing.task_duration_s)
        self.emulator.start()
        events = [request.event_id for request in self.plan.requests]
        self.emulator.seed(
            {
                "events": [
                    {"event_id": e, "request_messages": [{"role": "user", "content": e}], "response_messages": []}
                    for e in events
                ]
            }
        )
        # Dedupe off (the emulator's default, stated here because the checkers count on it): an item imported twice
        # is two records in its target, which the checkers count.
        self.emulator.configure(
            task_list_order=self.plan.task_list_order, random_seed=self.plan.seed, dedupe_imports=False
        )
        with httpx.Client(
            base_url=self.emulator.url, headers={"Authorization": f"Bearer {self.emulator.api_key}"}, timeout=10
        ) as client:

            def create_dataset(name: str) -> str:
                response = client.post("/v1/observability/datasets", json={"name": name, "description": ""})
                response.raise_for_status()
                return str(response.json()["id"])

            # The requests' datasets first (a request names one by index), then those only schedules write to.
            self.dataset_ids = [create_dataset(f"target {n}") for n in range(self.plan.targets)]
            self.schedules = ScheduleDriver(
                self.plan.schedule, self.emulator, self.workdir, targets=self.dataset_ids, ledger=self._ledger
            )
            self.schedules.seed_world(create_dataset)
        env = service_environment(
            self.workdir / "home",
            database_url=self.database_url,
            broker_url=self.redis_server.url(0),
            api_url=self.emulator.url,
            api_key=self.emulator.api_key,
            **self.timing.env(),
            **self.schedules.service_env(),
        )
        self.schedules.define(env)  # the command-line adds run while the processes start
        skewed = {**env, "DSIMPORT_CLOCK_OFFSET_S": str(self.plan.clock_offset_s)} if self.plan.clock_offset_s else None
        log_dir = self.workdir / "logs"
        log_dir.mkdir(exist_ok=True)
        self.fleet = Fleet(
            env,
            log_dir,
            workers=self.plan.workers,
            beats=self.plan.beats,
            concurrency=self.timing.worker_concurrency,
            skewed_env=skewed,
        )
        self.fleet.start()
        self._wait_for_consumer_group(timeout_s=60)
        self.schedules.wait_defined(timeout_s=60, logs=self.fleet.logs)

    def _redis(self) -> redis.Redis:
        assert self.redis_server is not None
        return redis.Redis.from_url(self.redis_server.url(0), socket_timeout=3, socket_connect_timeout=3)

    def _wait_for_consumer_group(self, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = self._redis()
        try:
            while time.monotonic() < deadline:
                try:
                    if client.exists(STREAM) and any(
                        group["name"] in (GROUP, GROUP.encode()) for group in client.xinfo_groups(STREAM)
                    ):
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        assert self.fleet is not None
        raise RuntimeError(f"no worker created the consumer group within {timeout_s:g}s\n{self.fleet.logs()}")

    # The timeline ---------------------------------------------------------------------------------------------

    def play(self) -> None:
        actions: list[tuple[float, int, Callable[[], None]]] = []
        for n, send in enumerate(self.plan.sends):
            actions.append((send.at_s, n, lambda send=send: self._send(send)))  # type: ignore[misc]
        base = len(actions)
        for n, fault in enumerate(self.plan.faults):
            for offset, action in self._fault_actions(fault):
                actions.append((fault.at_s + offset, base + n, action))
        base = len(actions)
        for n, schedule_fault in enumerate(self.plan.schedule.faults):
            for offset, action in self._schedule_fault_actions(schedule_fault):
                actions.append((schedule_fault.at_s + offset, base + n, action))
        base = len(actions)
        assert self.schedules is not None
        for n, (at_s, item) in enumerate(self.plan.schedule.arrivals()):
            actions.append((at_s, base + n, lambda item=item: self._arrive(item)))  # type: ignore[misc]
        actions.sort(key=lambda item: (item[0], item[1]))
        start = time.monotonic()
        for at_s, _, action in actions:
            delay = start + at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            action()
        remaining = start + self.plan.fault_window_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        for thread in self.threads:
            thread.join(timeout=30)
        self._faults_off()

    def _arrive(self, item: Any) -> None:
        assert self.schedules is not None
        try:
            self.schedules.arrival(item)
        except Exception as exc:  # the emulator's admin routes are not faulted; still, a note rather than a crash
            self.trace.notes.append(f"arrival of {item}: {type(exc).__name__}: {exc}")

    def _in_background(self, name: str, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as exc:  # a fault that could not be applied is a note, not a crash of the run
                self.trace.notes.append(f"{name}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=guarded, name=f"fault-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _send(self, send: Send) -> None:
        body = message_body(send, self.dataset_ids)
        deadline = time.monotonic() + 30
        while True:
            client = self._redis()
            try:
                client.xadd(STREAM, {"body": body})
                self.sent[send.request.message_id] += 1
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    self.trace.notes.append(f"send {send.request.message_id} failed: {exc}")
                    return
                time.sleep(0.2)
            finally:
                client.close()

    def _configure(self, **knobs: Any) -> None:
        assert self.emulator is not None
        self.emulator.configure(**knobs)

    def _fault_actions(self, fault: Fault) -> list[tuple[float, Callable[[], None]]]:
        """The actions of ``fault``, each at an offset from its start."""
        args = fault.args
        fleet, kind = self.fleet, fault.kind
        assert fleet is not None
        if kind == "post_lost_status":
            rule = {"status": args["status"], "next": args["next"], "phase": "after"}
            return [(0.0, lambda: self._post_fault(kind, rule))]
        if kind == "post_lost_reset":
            rule = {"status": 500, "kind": "reset", "next": args["next"], "phase": "after"}
            return [(0.0, lambda: self._post_fault(kind, rule))]
        if kind == "post_lost_timeout":
            rule = {"status": 503, "kind": "slow", "delay_ms": args["delay_ms"], "next": args["next"], "phase": "after"}
            return [(0.0, lambda: self._post_fault(kind, rule))]
        if kind == "post_refused":
            rule = {"status": args["status"], "next": args["next"], "phase": "before"}
            return [(0.0, lambda: self._post_fault(kind, rule))]
        if kind == "slow_over_lease":
            route, latency = args["route"], args["latency_ms"]
            return [
                (0.0, lambda: self._slow_route(route, latency)),
                (args["for_s"], lambda: self._slow_route(route, None)),
            ]
        if kind == "storm_429":
            rule = {"status": 429, "rate": args["rate"], "retry_after_s": args["retry_after_s"]}
            return [
                (0.0, lambda: self._configure_counted(kind, faults={"*": rule})),
                (args["for_s"], lambda: self._configure(faults={"*": None})),
            ]
        if kind == "vanish":
            return [(0.0, lambda: self._in_background(kind, lambda: self._vanish(args["count"])))]
        if kind == "unknown_spell":
            return [
                (
                    0.0,
                    lambda: self._configure_counted(kind, status_sequence=["RUNNING", "UNKNOWN", "UNKNOWN", "RUNNING"]),
                ),
                (args["for_s"], lambda: self._configure(status_sequence=["RUNNING"])),
            ]
        if kind == "crowd":
            return [(0.0, lambda: self._in_background(kind, lambda: self._crowd(args["status"], args["tasks"])))]
        if kind == "kill_worker":
            slot = fleet.workers[args["worker"]]
            return [(0.0, lambda: self._kill(kind, slot)), (args["down_s"], slot.ensure_running)]
        if kind == "kill_beat":
            slot = fleet.beats[args["beat"]]
            return [(0.0, lambda: self._kill(kind, slot)), (args["down_s"], slot.ensure_running)]
        if kind == "pause_worker":
            slot = fleet.workers[args["worker"]]
            return [(0.0, lambda: self._pause(slot)), (args["for_s"], slot.resume)]
        if kind == "redis_restart":
            return [(0.0, lambda: self._in_background(kind, lambda: self._restart_redis(args["down_s"])))]
        if kind == "postgres_restart":
            return [(0.0, lambda: self._in_background(kind, lambda: self._restart_postgres(args["down_s"])))]
        raise ValueError(f"unknown fault kind {kind}")

    def _schedule_fault_actions(self, fault: ScheduleFault) -> list[tuple[float, Callable[[], None]]]:
        """The schedules' reads refused (5xx) or slower than the lease for a while."""
        if fault.kind == "read_refused":
            rule = {"status": fault.status}
            return [
                (0.0, lambda: self._configure_counted(fault.kind, faults={route: rule for route in READ_ROUTES})),
                (fault.for_s, lambda: self._configure(faults={route: None for route in READ_ROUTES})),
            ]
        latency = fault.latency_ms
        actions: list[tuple[float, Callable[[], None]]] = [
            (0.0, lambda: self._configure_counted(fault.kind, route_latency_ms={r: latency for r in READ_ROUTES})),
            (fault.for_s, lambda: self._configure(route_latency_ms={route: None for route in READ_ROUTES})),
        ]
        if fault.stall_worker is not None:
            # A second in, the worker's fires are stuck in those reads: the stall leaves their runs STARTED.
            assert self.fleet is not None
            slot = self.fleet.workers[fault.stall_worker]
            actions += [(1.0, lambda: self._pause(slot, "read_stall")), (1.0 + fault.stall_for_s, slot.resume)]
        return actions

    def _configure_counted(self, kind: str, **knobs: Any) -> None:
        self._configure(**knobs)
        self.trace.count(kind)

    def _post_fault(self, kind: str, rule: dict[str, Any]) -> None:
        # On every import route in use: a copy schedule's POSTs lose their answers too.
        routes = self.plan.schedule.post_routes
        self._configure(faults={route: dict(rule) for route in routes})
        self.trace.count(kind)
        if rule.get("kind") == "slow":
            with self.trace.lock:
                self.trace.late_posts += int(rule["next"]) * len(routes)

    def _slow_route(self, route: str, latency_ms: int | None) -> None:
        routes = self.plan.schedule.post_routes if route == POST_ROUTE else (route,)
        self._configure(route_latency_ms={name: latency_ms for name in routes})
        if latency_ms is not None:
            self.trace.count("slow_over_lease")
            if route == POST_ROUTE:
                self.slow_posts_from = self._post_count()
        elif route == POST_ROUTE and self.slow_posts_from is not None:
            # Every POST sent while the route was slow got its answer after the client's timeout.
            with self.trace.lock:
                self.trace.late_posts += self._post_count() - self.slow_posts_from + self.timing.worker_concurrency
            self.slow_posts_from = None

    def _post_count(self) -> int:
        assert self.emulator is not None
        counts = self.emulator.stats(include_tasks=False)["requests"]
        return sum(int(counts.get(route, 0)) for route in self.plan.schedule.post_routes)

    def _ledger(self, sql: str) -> list[Any]:
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql)))
        finally:
            engine.dispose()

    def _vanish(self, count: int) -> None:
        assert self.emulator is not None
        stats = self.emulator.stats()
        owned = {
            row[0] for row in self._ledger("SELECT remote_task_id FROM import_jobs WHERE remote_task_id IS NOT NULL")
        }
        running = sorted(
            task_id
            for task_id, task in stats["tasks"].items()
            if task_id in owned and task["status"] not in TERMINAL and task_id not in self.trace.foreign_tasks
        )
        chosen = self.rng.sample(running, k=min(count, len(running)))
        origins = self.emulator.task_origins()
        for task_id in chosen:
            self.emulator.delete_task(task_id)
            self.trace.deleted_tasks[task_id] = origins.get(task_id, {})
        self.trace.count("vanish", len(chosen))
        if len(chosen) < count:
            self.trace.notes.append(f"vanish: {len(running)} running owned tasks, wanted {count}")

    def _crowd(self, status: int, tasks: int) -> None:
        assert self.emulator is not None
        self._configure(faults={POST_ROUTE: {"status": status, "next": 1, "phase": "after"}})
        deadline = time.monotonic() + 6
        while POST_ROUTE in self.emulator.configure()["faults"] and time.monotonic() < deadline:
            time.sleep(0.05)
        for dataset_id in self.dataset_ids:
            self.trace.foreign_tasks.update(self.emulator.add_foreign_tasks(dataset_id, tasks))
        self.trace.count("crowd")

    def _kill(self, kind: str, slot: Any) -> None:
        slot.kill()
        self.trace.count(kind)
        if slot.role == "worker":
            with self.trace.lock:
                self.trace.interrupted_submits += slot.concurrency

    def _pause(self, slot: Any, kind: str = "pause_worker") -> None:
        slot.pause()
        self.trace.count(kind)
        with self.trace.lock:
            self.trace.interrupted_submits += slot.concurrency

    def _every_submit_slot(self) -> int:
        return self.plan.workers * self.timing.worker_concurrency

    def _restart_redis(self, down_s: float) -> None:
        assert self.redis_server is not None
        with self.restart_lock:
            self.redis_server.restart(down_s=down_s)
        self.trace.count("redis_restart")
        with self.trace.lock:
            self.trace.interrupted_submits += self._every_submit_slot()

    def _restart_postgres(self, down_s: float) -> None:
        assert self.postgres is not None
        with self.restart_lock:
            self.postgres.restart(down_s=down_s)
        self.trace.count("postgres_restart")
        with self.trace.lock:
            self.trace.interrupted_submits += self._every_submit_slot()

    def _faults_off(self) -> None:
        self._configure(faults=None, route_latency_ms=None, status_sequence=["RUNNING"])
        assert self.fleet is not None
        self.fleet.ensure_running()

    # Quiet period and collection ------------------------------------------------------------------------------

    def _jobs(self) -> list[dict[str, Any]]:
        rows = self._ledger(
            "SELECT id, idempotency_key, kind, dataset_id, params, status, remote_task_id FROM import_jobs"
        )
        jobs = []
        for row in rows:
            params = row[4] if isinstance(row[4], dict) else json.loads(row[4])
            jobs.append(
                {"id": row[0], "key": row[1], "kind": row[2], "dataset_id": row[3], "params": params,
                 "status": row[5], "remote_task_id": row[6]}
            )  # fmt: skip
        return jobs

    def _events(self) -> dict[str, list[str]]:
        """Each job's status changes, as short lines (for explaining a violation, not for judging)."""
        rows = self._ledger("SELECT job_id, old_status, new_status, message FROM job_events ORDER BY id")
        events: dict[str, list[str]] = {}
        for job_id, old, new, message in rows:
            events.setdefault(job_id, []).append(f"{old}->{new}" + (f" ({message[:90]})" if message else ""))
        return events

    def quiet(self) -> tuple[float, bool]:
        """Wait for the end; returns (seconds waited, whether every job ended and the schedules settled).

        The plain schedules are paused first (each of their fires is a new job). The others keep firing until a
        fire of each has run after every job ended (so any failed chunk has been requested again) and after the
        last arrival; then they are paused and the jobs of a fire that was running then are waited for.
        """
        assert self.fleet is not None and self.schedules is not None
        started = time.monotonic()
        self.schedules.pause(self.database_url, (PLAIN,))
        keys = {f"message:{request.message_id}" for request in self.plan.requests}
        settled_since: float | None = None
        settled_jobs = -1
        paused_at: float | None = None
        while time.monotonic() - started < QUIET_TIMEOUT_S:
            self.fleet.check()
            self.fleet.ensure_running()
            try:
                jobs = self._jobs()
                converged = settled_since is not None and self.schedules.converged(settled_since)
            except SQLAlchemyError:  # the ledger can be briefly unreachable right after a restart
                time.sleep(0.5)
                continue
            ended = keys <= {job["key"] for job in jobs} and all(job["status"] in TERMINAL for job in jobs)
            if not ended:
                settled_since = None
            elif settled_since is None or len(jobs) != settled_jobs:
                settled_since, settled_jobs = time.time(), len(jobs)
            elif paused_at is not None:
                # Paused, and nothing new for a moment: any fire running at the pause has ended.
                if time.monotonic() - paused_at > 1.5:
                    return time.monotonic() - started, True
            elif converged:
                self.schedules.pause(self.database_url, (WINDOW, COPY))
                paused_at = time.monotonic()
                settled_since, settled_jobs = time.time(), len(jobs)
            time.sleep(0.5)
        if paused_at is None:  # the schedules stand still while the end is read
            self.schedules.pause(self.database_url, (WINDOW, COPY))
        return time.monotonic() - started, False

    def dump(self, stats: dict[str, Any], origins: dict[str, Any]) -> None:
        """The ledger's jobs and events and the emulator's view, as files next to the logs (for a failing seed)."""
        tables = {}
        for table in ("import_jobs", "job_events", "schedules", "schedule_runs", "schedule_items"):
            try:
                rows = self._ledger(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
                tables[table] = [{key: str(value) for key, value in row._mapping.items()} for row in rows]
            except Exception as exc:
                tables[table] = [{"error": f"{type(exc).__name__}: {exc}"}]
        (self.workdir / "ledger.json").write_text(json.dumps(tables, indent=1))
        (self.workdir / "emulator.json").write_text(json.dumps({"stats": stats, "origins": origins}, indent=1))
        (self.workdir / "plan.txt").write_text(self.plan.describe() + "\n")

    def observe(self, *, all_ended: bool) -> Observation:
        assert self.emulator is not None and self.fleet is not None
        before = self.emulator.stats(include_tasks=False)["requests_total"]
        if all_ended:
            # Evidence the service is still live through the idle window: every process is still running.
            time.sleep(IDLE_WINDOW_S)
        self.fleet.check()
        alive = all(slot.process is not None and slot.process.poll() is None for slot in self.fleet.slots)
        assert self.schedules is not None
        # The order of the reads matters when the service is still at work (a quiet period that timed out). The
        # remote tasks first, then the jobs: a job read is never behind its task, so a terminal task with a running
        # job is not mistaken for a stuck one. The jobs and the schedule rows before the records: a job read
        # COMPLETED has written its records by the time the inventory is read, and an item below the watermark
        # read here was requested by then (its job may end meanwhile, never the reverse).
        stats = self.emulator.stats()
        origins = self.emulator.task_origins()
        jobs = self._jobs()
        schedule_rows = self.schedules.rows()
        inventory = self.schedules.inventory()
        self.dump(stats, origins)
        (self.workdir / "inventory.json").write_text(json.dumps(inventory, indent=1))
        client = self._redis()
        try:
            pending = client.xpending_range(STREAM, GROUP, min="-", max="+", count=1000)
            groups = client.xinfo_groups(STREAM)
            length = client.xlen(STREAM)
            last_id = client.xinfo_stream(STREAM)["last-generated-id"]
        finally:
            client.close()
        group = next((g for g in groups if g["name"] in (GROUP, GROUP.encode())), {})
        return Observation(
            plan=self.plan,
            dataset_ids=list(self.dataset_ids),
            sent=dict(self.sent),
            jobs=jobs,
            events=self._events(),
            stats=stats,
            origins=origins,
            foreign_tasks=set(self.trace.foreign_tasks),
            deleted_tasks=dict(self.trace.deleted_tasks),
            interrupted_submits=self.trace.interrupted_submits,
            late_posts=self.trace.late_posts,
            pending=[
                {"id": _text(entry["message_id"]), "idle_ms": int(entry["time_since_delivered"])} for entry in pending
            ],
            last_delivered=_text(group.get("last-delivered-id", b"0-0")),
            stream_length=int(length),
            last_entry=_text(last_id),
            calls_in_idle_window=(stats["requests_total"] - before) if all_ended and alive else None,
            all_ended=all_ended,
            deaths=self.fleet.deaths(),
            notes=[*self.trace.notes, *self.fleet.refusals(), *self.schedules.notes],
            schedules=ScheduleSeen(
                since=self.schedules.since.isoformat() if self.schedules.since else None,
                schedules=schedule_rows["schedules"],
                runs=schedule_rows["runs"],
                items=schedule_rows["items"],
                records=inventory["records"],
                events=inventory["events"],
            ),
        )

    def stop(self) -> None:
        """Stop everything the run started; one part failing to stop does not keep the others running."""
        parts: list[tuple[str, Callable[[], None] | None]] = [
            ("processes", self.fleet.stop if self.fleet else None),
            ("emulator", self.emulator.stop if self.emulator else None),
            ("redis", self.redis_server.kill if self.redis_server else None),
            ("postgresql", self.postgres.destroy if self.postgres else None),
        ]
        for name, stop in parts:
            if stop is None:
                continue
            try:
                stop()
            except Exception as exc:
                self.trace.notes.append(f"stopping {name}: {type(exc).__name__}: {exc}")
        if self.postgres is not None:
            shutil.rmtree(self.postgres.folder, ignore_errors=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Outcome:
    plan: FaultPlan
    verdict: Verdict
    injected: dict[str, int]
    seconds: float
    workdir: Path | None
    notes: list[str] = field(default_factory=list)

    def repro(self) -> str:
        return (
            f"python -m tests.faultsim --seed {self.plan.seed}   (or: pytest tests/faultsim -k seed_{self.plan.seed})"
        )


def run_seed(plan: FaultPlan, workdir: Path, *, keep: str = "failed") -> Outcome:
    """Play ``plan`` in ``workdir`` and check it; ``keep`` is "always", "failed" or "never" for the folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = Run(plan, workdir)
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = round(now - since, 1)
        return now

    try:
        run.start()
        mark = phase("setup", started)
        run.play()
        mark = phase("play", mark)
        _, all_ended = run.quiet()
        mark = phase("quiet", mark)
        observation = run.observe(all_ended=all_ended)
        mark = phase("observe", mark)
    finally:
        run.stop()
    phase("stop", mark)
    verdict = check(observation)
    verdict.figures["phases_s"] = phases
    injected = dict(run.trace.injected)
    played = {fault.kind for fault in plan.faults} | {fault.kind for fault in plan.schedule.faults} | {"read_stall"}
    for kind, amount in plan.fault_counts().items():
        if kind not in played:
            injected[kind] = amount  # message duplicates, reordering, clock offset, list order: always applied
    keep_folder = keep == "always" or (keep == "failed" and not verdict.ok)
    if not keep_folder:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    notes = [
        *run.trace.notes,
        *(run.fleet.refusals() if run.fleet else []),
        *(run.schedules.notes if run.schedules else []),
        *verdict.notes,
    ]
    return Outcome(plan, verdict, injected, seconds, workdir if keep_folder else None, notes)
