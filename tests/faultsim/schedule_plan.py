"""The schedules of a run and the source items they pick up, drawn from the seed like the rest of the plan.

A run has one or two ``explorer-window`` schedules (each imports the events of its own team, ``extra_fields.team``,
created since its ``since``), usually a ``dataset-copy`` schedule (it copies a source dataset of its own), and
sometimes a plain ``explorer`` schedule (the same event on every fire). Each fires every 1-3 s, in chunks of 1-4
items, into a dataset of its own or one the stream requests also import into. The world holds, besides the items
each schedule must import (some there from the start, some arriving while the faults play), items no schedule may
take: events of a team nobody's filter names, and events created before a window's start.

Faults of their own hit the schedules' reads (the search of a window, the listing of a copy's source): for a while
they answer 5xx (``read_refused``: the fire fails, the next one searches the same window again), or later than the
lease (``read_slow``: the client gives up after its timeouts, well inside the run's lease, and the fire fails). Half
the ``read_slow`` faults also stall a worker (SIGSTOP, longer than the lease) a second in, while its fires are stuck
in those reads: the run stays STARTED, a second beat's delivery of the same fire takes it over once its lease has
run out (``schedule_takeovers`` in the figures), and the stalled task, resumed, must write nothing. The import POSTs
of a copy get the run's lost answers too (``post_routes``).

The draw uses its own generator (seeded from the run's seed), so adding schedules left the rest of every seed's plan
(requests, faults) as it was.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace

WINDOW = "explorer-window"
COPY = "dataset-copy"
PLAIN = "explorer"
# A window's first start lies this long before the run (events older than that are never imported).
SINCE_AGE_S = 60.0
# The import routes the kinds POST to.
EXPLORER_ROUTE = "import_from_explorer"
DATASET_ROUTE = "import_from_dataset"
SHORT = {WINDOW: "window", COPY: "copy", PLAIN: "plain"}
READ_ROUTES = ("search_event_ids", "list_records")
MAX_FIRES_PER_S = 2.0
SCHEDULE_FAULTS = ("read_refused", "read_slow")


@dataclass(frozen=True)
class ScheduleFault:
    """A fault on the schedules' read routes from ``at_s`` for ``for_s`` seconds."""

    at_s: float
    kind: str  # SCHEDULE_FAULTS
    for_s: float
    status: int = 503  # read_refused
    latency_ms: int = 0  # read_slow
    # read_slow: the worker stalled (SIGSTOP) a second in, and for how long (longer than the lease).
    stall_worker: int | None = None
    stall_for_s: float = 0.0

    def line(self) -> str:
        what = f"status={self.status}" if self.kind == "read_refused" else f"latency_ms={self.latency_ms}"
        if self.stall_worker is not None:
            what += f" stall_worker={self.stall_worker} stall_for_s={self.stall_for_s}"
        return f"t={self.at_s:5.2f}s {self.kind} for_s={self.for_s} {what}"


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule: its kind, period and chunks, where it writes and what it reads."""

    name: str
    kind: str  # WINDOW, COPY or PLAIN
    every_s: int
    # "cli" (``dsimport schedules add``) or "file" (``DSIMPORT_SCHEDULES_FILE``, synced by the beats).
    via: str
    # Target: 0..datasets-1 are the stream requests' datasets, datasets.. the schedules' own (FaultPlan.targets).
    target: int
    chunk_size: int = 1
    team: str | None = None  # WINDOW: its filter is extra_fields.team == team
    source: int | None = None  # COPY: index of the source dataset
    event_id: str | None = None  # PLAIN: the event imported on every fire


@dataclass(frozen=True)
class WindowEvent:
    """An explorer event: there from the start (created ``age_s`` before the run) or arriving at ``at_s``."""

    event_id: str
    team: str
    age_s: float | None = None
    at_s: float | None = None


@dataclass(frozen=True)
class SourceRecord:
    """A record of a copy source: there from the start (``at_s`` None) or created at ``at_s``."""

    record_id: str
    source: int
    at_s: float | None = None


@dataclass(frozen=True)
class SchedulePlan:
    schedules: tuple[ScheduleSpec, ...] = ()
    events: tuple[WindowEvent, ...] = ()
    records: tuple[SourceRecord, ...] = ()
    own_datasets: int = 0  # target datasets only schedules write to
    sources: int = 0  # copy sources
    # Import routes whose POST faults are played (the copy's route joins the explorer's when a copy runs).
    post_routes: tuple[str, ...] = (EXPLORER_ROUTE,)
    names: tuple[str, ...] = field(default=())
    faults: tuple[ScheduleFault, ...] = ()

    def arrivals(self) -> list[tuple[float, WindowEvent | SourceRecord]]:
        """Items created while the run goes on, by second."""
        timed: list[tuple[float, WindowEvent | SourceRecord]] = [
            (item.at_s, item) for item in (*self.events, *self.records) if item.at_s is not None
        ]
        return sorted(timed, key=lambda pair: (pair[0], str(pair[1])))

    def describe(self) -> list[str]:
        lines = []
        for spec in self.schedules:
            what = {WINDOW: f"team={spec.team}", COPY: f"source={spec.source}", PLAIN: f"event={spec.event_id}"}
            lines.append(
                f"  schedule {spec.name} {spec.kind} every={spec.every_s}s chunk={spec.chunk_size} via={spec.via} "
                f"target={spec.target} {what[spec.kind]}"
            )
        lines += [f"  fault {fault.line()}" for fault in self.faults]
        start = sum(1 for event in self.events if event.at_s is None)
        late = sum(1 for event in self.events if event.at_s is not None)
        kept = sum(1 for record in self.records if record.at_s is None)
        added = sum(1 for record in self.records if record.at_s is not None)
        if self.schedules:
            lines.append(
                f"  schedule world: events {start} at start + {late} arriving, source records {kept} at start + "
                f"{added} arriving, post faults on {','.join(self.post_routes)}"
            )
        return lines


def draw_schedules(seed: int, *, datasets: int, workers: int, fault_window_s: float, lease_s: float) -> SchedulePlan:
    """The schedules of seed ``seed``, for a run whose requests use ``datasets`` datasets."""
    rng = random.Random(seed * 104_729 + 17)
    kinds = [WINDOW] * rng.choice((1, 1, 2))
    if rng.random() < 0.7:
        kinds.append(COPY)
    if rng.random() < 0.3:
        kinds.append(PLAIN)
    own = 0
    specs: list[ScheduleSpec] = []
    events: list[WindowEvent] = []
    records: list[SourceRecord] = []
    sources = 0
    last_arrival = fault_window_s - 2.0

    def target() -> int:
        nonlocal own
        if rng.random() < 0.5:
            return rng.randrange(datasets)
        own += 1
        return datasets + own - 1

    for n, kind in enumerate(kinds):
        name = f"s{seed}-{SHORT[kind]}{n}"
        common = {"name": name, "kind": kind, "every_s": rng.choice((1, 2, 2)), "via": rng.choice(("cli", "file"))}
        if kind == WINDOW:
            team = f"team{n}"
            specs.append(ScheduleSpec(**common, target=target(), chunk_size=rng.randint(1, 4), team=team))
            # Before the window's start: never imported. In the window from the start, and arriving meanwhile.
            for k in range(rng.randint(1, 2)):
                events.append(WindowEvent(f"w{seed}-{n}-old{k}", team, age_s=round(rng.uniform(90, 200), 1)))
            for k in range(rng.randint(3, 9)):
                events.append(WindowEvent(f"w{seed}-{n}-{k:02d}", team, age_s=round(rng.uniform(1, 45), 1)))
            for k in range(rng.randint(2, 7)):
                at_s = round(rng.uniform(0.5, last_arrival), 2)
                events.append(WindowEvent(f"w{seed}-{n}-late{k:02d}", team, at_s=at_s))
        elif kind == COPY:
            source = sources
            sources += 1
            specs.append(ScheduleSpec(**common, target=target(), chunk_size=rng.randint(1, 4), source=source))
            for _ in range(rng.randint(3, 10)):
                records.append(SourceRecord(str(uuid.UUID(int=rng.getrandbits(128), version=4)), source))
            for _ in range(rng.randint(2, 6)):
                at_s = round(rng.uniform(0.5, last_arrival), 2)
                records.append(SourceRecord(str(uuid.UUID(int=rng.getrandbits(128), version=4)), source, at_s))
        else:
            event_id = f"p{seed}-{n}"
            events.append(WindowEvent(event_id, "plain", age_s=5.0))
            specs.append(ScheduleSpec(**{**common, "every_s": 3}, target=target(), event_id=event_id))
    # At most two fires a second per beat: every fire is a task, and a worker of two processes on a loaded host
    # that cannot keep up with the fires lets everything else wait behind them (an overload, not a fault).
    if sum(1 / spec.every_s for spec in specs) > MAX_FIRES_PER_S:
        specs = [replace(spec, every_s=max(spec.every_s, 2)) for spec in specs]
    # Events of a team no filter names, some there, some arriving: no schedule may import them.
    for k in range(rng.randint(1, 3)):
        at_s = round(rng.uniform(0.5, last_arrival), 2) if rng.random() < 0.5 else None
        events.append(WindowEvent(f"x{seed}-{k}", "nobody", age_s=None if at_s else 10.0, at_s=at_s))
    routes = (EXPLORER_ROUTE, DATASET_ROUTE) if sources else (EXPLORER_ROUTE,)
    faults = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        at_s = round(rng.uniform(0.3, 11.0), 2)
        if rng.random() < 0.5:
            faults.append(
                ScheduleFault(at_s, "read_refused", round(rng.uniform(1.0, 3.0), 2), status=rng.choice((500, 502, 503)))
            )
        else:
            latency = int((lease_s + rng.uniform(0.3, 2.0)) * 1000)
            stall = rng.randrange(workers) if rng.random() < 0.5 else None
            stall_for_s = round(lease_s + rng.uniform(1.0, 3.0), 2) if stall is not None else 0.0
            faults.append(
                ScheduleFault(at_s, "read_slow", round(rng.uniform(1.5, 4.0), 2), latency_ms=latency,
                              stall_worker=stall, stall_for_s=stall_for_s)
            )  # fmt: skip
    return SchedulePlan(
        schedules=tuple(specs),
        events=tuple(events),
        records=tuple(records),
        own_datasets=own,
        sources=sources,
        post_routes=routes,
        names=tuple(spec.name for spec in specs),
        faults=tuple(sorted(faults, key=lambda fault: fault.at_s)),
    )
