"""The schedules' part of a run: their source items in the emulator, their definitions, their end, their rows.

- Before the service starts: the copy sources and their first records, the events (some older than the windows'
  start, some of a team no filter names), the schedules file for the schedules drawn ``via="file"`` (the beats sync
  it when they start), and ``dsimport schedules add`` for the others.
- While the plan plays: events and source records arriving at their second (:meth:`ScheduleDriver.arrival`).
- In the quiet period: the plain schedule is paused at once (every fire of it is a new import, so it never lets the
  run settle); the others fire on until :meth:`ScheduleDriver.converged` (a completed fire after the last arrival
  and after every job had ended: any failed chunk has then been requested again), then they are paused too, so the
  idle window that follows sees no search or listing.
- At the end: the ledger's schedules, runs and items as rows, and the emulator's inventory (records by origin per
  dataset, events with their times), for :mod:`tests.faultsim.schedule_checker`.

Schedules are added with the command line (``dsimport schedules add``, run as ``python -m cli`` while the service
starts) or the schedules file, as a user would; they are paused through the ledger's own function
(``store.schedules.set_paused``, what ``schedules pause`` calls), since a command's start-up costs seconds on a
loaded machine and the pause is in the run's timed part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from emulator.testing import EmulatorServer
from store.db import make_engine, make_session_factory
from store.schedules import set_paused

from .schedule_plan import COPY, PLAIN, SINCE_AGE_S, WINDOW, SchedulePlan, ScheduleSpec, SourceRecord, WindowEvent

REPO = Path(__file__).resolve().parents[2]


def iso(value: Any) -> str | None:
    """A ledger time (an aware datetime from PostgreSQL, naive UTC text from SQLite) as ISO-8601 UTC."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def event_fixture(event: WindowEvent, *, arriving: bool) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "created_at_offset_s": 0.0 if arriving else -float(event.age_s or 0.0),
        "extra_fields": {"team": event.team},
        "request_messages": [{"role": "user", "content": event.event_id}],
        "response_messages": [],
    }


@dataclass
class ScheduleDriver:
    plan: SchedulePlan
    emulator: EmulatorServer
    workdir: Path
    # Target datasets of the run (the requests' first, then the schedules' own) and the copy sources.
    targets: list[str]
    ledger: Callable[[str], list[Any]]
    sources: list[str] = field(default_factory=list)
    since: datetime | None = None
    # Wall time (epoch seconds) of the last item that arrived during the run.
    last_arrival: float = 0.0
    notes: list[str] = field(default_factory=list)
    _adding: list[tuple[ScheduleSpec, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.workdir / "schedules.toml"

    def service_env(self) -> dict[str, str]:
        """Settings the schedules need: no settle lag (the emulator's events are searchable at once), a quick table
        refresh, and the schedules file when some schedules come from it."""
        env = {"DSIMPORT_SCHEDULE_SETTLE_LAG_S": "0", "DSIMPORT_SCHEDULES_REFRESH_S": "1"}
        if any(spec.via == "file" for spec in self.plan.schedules):
            env["DSIMPORT_SCHEDULES_FILE"] = str(self.file)
        return env

    # Before the service starts -------------------------------------------------------------------------------

    def seed_world(self, create_dataset: Callable[[str], str]) -> None:
        """Copy sources, their first records and the events that are there from the start."""
        if not self.plan.schedules:
            return
        self.sources = [create_dataset(f"source {n}") for n in range(self.plan.sources)]
        events = [event_fixture(event, arriving=False) for event in self.plan.events if event.at_s is None]
        records = [self._record_fixture(record) for record in self.plan.records if record.at_s is None]
        self.emulator.seed({"events": events, "records": records})
        self.since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=SINCE_AGE_S)

    def _record_fixture(self, record: SourceRecord) -> dict[str, Any]:
        return {
            "id": record.record_id,
            "dataset_id": self.sources[record.source],
            "payload": {"messages": [{"role": "user", "content": f"record {record.record_id}"}]},
            "properties": {"source": record.source},
        }

    def define(self, env: dict[str, str]) -> None:
        """Write the schedules file and start adding the command-line schedules (a process each, at once; they run
        while the service starts, :meth:`wait_defined` waits for them)."""
        in_file = [spec for spec in self.plan.schedules if spec.via == "file"]
        if in_file:
            self.file.write_text("".join(self._toml(spec) for spec in in_file))
        self._adding = [(spec, self._cli(env, "add", *self._add_args(spec))) for spec in self.plan.schedules
                        if spec.via == "cli"]  # fmt: skip

    def _cli(self, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "schedules", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def _filter(self, spec: ScheduleSpec) -> dict[str, Any]:
        return {"field": "extra_fields.team", "op": "eq", "value": spec.team}

    def _add_args(self, spec: ScheduleSpec) -> list[str]:
        head = [spec.name, "--every", f"{spec.every_s}s", spec.kind, "--dataset", self.targets[spec.target]]
        if spec.kind == WINDOW:
            assert self.since is not None
            return [*head, "--filter", json.dumps(self._filter(spec)), "--chunk-size", str(spec.chunk_size),
                    "--since", self.since.isoformat()]  # fmt: skip
        if spec.kind == COPY:
            assert spec.source is not None
            return [*head, "--from-dataset", self.sources[spec.source], "--chunk-size", str(spec.chunk_size)]
        assert spec.event_id is not None
        return [*head, "--event", spec.event_id]

    def _toml(self, spec: ScheduleSpec) -> str:
        lines = [
            f"[schedules.{spec.name}]",
            f'every = "{spec.every_s}s"',
            f'kind = "{spec.kind}"',
            f'dataset = "{self.targets[spec.target]}"',
        ]
        if spec.kind == WINDOW:
            assert self.since is not None
            lines += [
                f'filter = {{ field = "extra_fields.team", op = "eq", value = "{spec.team}" }}',
                f"chunk_size = {spec.chunk_size}",
                f"since = {self.since.isoformat().replace('+00:00', 'Z')}",
            ]
        elif spec.kind == COPY:
            assert spec.source is not None
            lines += [f'from_dataset = "{self.sources[spec.source]}"', f"chunk_size = {spec.chunk_size}"]
        else:
            lines.append(f'events = ["{spec.event_id}"]')
        return "\n".join(lines) + "\n\n"

    def wait_defined(self, *, timeout_s: float, logs: Callable[[], str]) -> None:
        """Until every schedule is in the ledger (those of the file appear when a beat has synced it)."""
        deadline = time.monotonic() + timeout_s
        for spec, process in self._adding:
            out, _ = process.communicate(timeout=timeout_s)
            if process.returncode != 0:
                raise RuntimeError(f"schedules add {spec.name} failed: {out.decode(errors='replace')}")
        self._adding = []
        wanted = set(self.plan.names)
        while wanted:
            try:
                found = {row[0] for row in self.ledger("SELECT name FROM schedules")}
            except Exception:  # the ledger may be starting
                found = set()
            if wanted <= found:
                return
            if time.monotonic() > deadline:
                missing = sorted(wanted - found)
                raise RuntimeError(f"schedules {missing} not in the ledger after {timeout_s:g}s\n{logs()}")
            time.sleep(0.2)

    # While the plan plays --------------------------------------------------------------------------------------

    def arrival(self, item: WindowEvent | SourceRecord) -> None:
        """An event or a source record created now (the emulator is not subject to the run's faults)."""
        if isinstance(item, WindowEvent):
            self.emulator.seed({"events": [event_fixture(item, arriving=True)]})
        else:
            self.emulator.seed({"records": [self._record_fixture(item)]})
        self.last_arrival = time.time()

    # The end ---------------------------------------------------------------------------------------------------

    def pause(self, database_url: str, kinds: tuple[str, ...]) -> None:
        """Pause the schedules of ``kinds``: a fire that starts after this finds them paused and does nothing."""
        names = [spec.name for spec in self.plan.schedules if spec.kind in kinds]
        if not names:
            return
        engine = make_engine(database_url)
        try:
            sessions = make_session_factory(engine)
            for attempt in range(3):
                try:
                    with sessions() as session:
                        for name in names:
                            set_paused(session, name, True, now=datetime.now(UTC))
                        session.commit()
                    return
                except SQLAlchemyError as exc:  # the ledger just restarted: once more
                    if attempt == 2:
                        self.notes.append(f"pausing {names} failed: {type(exc).__name__}: {exc}")
                    time.sleep(0.5)
        finally:
            engine.dispose()

    def item_schedules(self) -> list[ScheduleSpec]:
        return [spec for spec in self.plan.schedules if spec.kind != PLAIN]

    def converged(self, settled_since: float) -> bool:
        """Every item schedule has completed a fire timed after ``settled_since`` (every job had ended by then)
        and after the last arrival: it has searched or listed everything, and retried every failed chunk."""
        specs = self.item_schedules()
        if not specs:
            return True
        rows = self.ledger(
            "SELECT s.name, r.fire_time FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id "
            "WHERE r.status IN ('SUBMITTED', 'EMPTY')"
        )
        latest: dict[str, float] = {}
        for name, fire_time in rows:
            moment = iso(fire_time)
            assert moment is not None
            stamp = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
            latest[name] = max(latest.get(name, 0.0), stamp)
        after = max(settled_since, self.last_arrival)
        return all(latest.get(spec.name, 0.0) > after for spec in specs)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """The ledger's schedules, runs and items, as plain values."""
        schedules = [
            {"id": row[0], "name": row[1], "kind": row[2], "dataset_id": row[3], "params": _json(row[4]),
             "watermark": iso(row[5]), "paused": bool(row[6]), "removed_at": iso(row[7]),
             "skip_existing": bool(row[8])}
            for row in self.ledger(
                "SELECT id, name, kind, dataset_id, params, watermark, paused, removed_at, skip_existing FROM schedules"
            )
        ]  # fmt: skip
        runs = [
            {"schedule_id": row[0], "fire_time": iso(row[1]), "status": row[2], "job_ids": _json(row[3]) or [],
             "window_start": iso(row[4]), "window_end": iso(row[5]), "message": row[6], "attempts": int(row[7] or 1)}
            for row in self.ledger(
                "SELECT schedule_id, fire_time, status, job_ids, window_start, window_end, message, attempts "
                "FROM schedule_runs"
            )
        ]  # fmt: skip
        items = [
            {"schedule_id": row[0], "item_id": row[1], "job_id": row[2], "retries": int(row[3] or 0),
             "given_up": row[4] is not None}
            for row in self.ledger("SELECT schedule_id, item_id, job_id, retries, given_up_at FROM schedule_items")
        ]  # fmt: skip
        return {"schedules": schedules, "runs": runs, "items": items}

    def inventory(self) -> dict[str, Any]:
        # The requests' datasets are read even without a schedule: a completed request's records are counted there.
        return self.emulator.inventory([*self.targets, *self.sources])
