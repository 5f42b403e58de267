"""The fault plan of one run, drawn from its seed alone.

Everything a run does on purpose is in the plan: how many workers and beats, which ledger, which requests are sent
when (with duplicates and out of order), which faults start and end when, and which schedules fire on which source
items (:mod:`tests.faultsim.schedule_plan`). The same seed gives the same plan on
every machine (``random.Random(seed)``, nothing else), so a failing seed can be replayed. What the plan cannot fix is
the service's own timing: a kill drawn for second 4.2 lands wherever the workers happen to be by then, so a replay
repeats the faults, not always the exact interleaving.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .schedule_plan import COPY, PLAIN, WINDOW, SchedulePlan, draw_schedules

# Fault kinds, the weight of each in a draw, and what it imitates.
FAULT_WEIGHTS: dict[str, int] = {
    "post_lost_status": 5,  # the import was created, the answer became a 500..504
    "post_lost_reset": 3,  # the import was created, the connection was reset before the answer
    "post_lost_timeout": 3,  # the import was created, the answer came after the client's timeout
    "post_refused": 2,  # a 5xx before the server acted (the ordinary retryable failure)
    "slow_over_lease": 3,  # answers of a route slower than the lease, for a while
    "storm_429": 2,  # every route answers 429 with Retry-After, for a while
    "vanish": 2,  # running tasks disappear from the API (404 from then on)
    "unknown_spell": 2,  # tasks created for a while report UNKNOWN for part of their run
    "crowd": 2,  # more than 500 tasks of another client land on a dataset just after a lost answer
    "kill_worker": 4,  # SIGKILL of a worker's whole process group, restarted after a moment
    "kill_beat": 2,  # SIGKILL of a beat, restarted after a moment
    "pause_worker": 2,  # SIGSTOP of a worker for longer than the lease, then SIGCONT (a stalled VM or GC)
    "redis_restart": 2,  # broker and stream server killed and restarted (append-only file kept)
    "postgres_restart": 2,  # the ledger's server crashed and restarted (PostgreSQL runs only)
}
POST_ROUTE = "import_from_explorer"
POLL_ROUTES = ("fetch_task", "list_tasks")


@dataclass(frozen=True)
class Timing:
    """The service settings of every run: short leases and fast recovery, so a run lasts tens of seconds.

    ``api_timeout_s * api_max_attempts < lease_s`` holds, so a service that refuses a lease shorter than its API
    calls starts with these settings too.
    """

    lease_s: float = 4.0
    api_timeout_s: float = 1.5
    api_max_attempts: int = 2
    stale_pending_s: float = 3.0
    recovery_interval_s: float = 1.0
    claim_min_idle_s: float = 2.0
    claim_interval_s: float = 0.5
    poll_initial_interval_s: float = 0.5
    poll_max_interval_s: float = 2.0
    submit_max_retries: int = 5
    worker_concurrency: int = 2
    task_duration_s: tuple[float, float] = (0.5, 2.0)

    def env(self) -> dict[str, str]:
        return {
            "DSIMPORT_LEASE_S": str(self.lease_s),
            "DSIMPORT_API_TIMEOUT_S": str(self.api_timeout_s),
            "DSIMPORT_API_MAX_ATTEMPTS": str(self.api_max_attempts),
            "DSIMPORT_STALE_PENDING_S": str(self.stale_pending_s),
            "DSIMPORT_RECOVERY_INTERVAL_S": str(self.recovery_interval_s),
            "DSIMPORT_STREAM_BLOCK_S": "0.5",
            "DSIMPORT_STREAM_CLAIM_MIN_IDLE_S": str(self.claim_min_idle_s),
            "DSIMPORT_STREAM_CLAIM_INTERVAL_S": str(self.claim_interval_s),
            "DSIMPORT_STREAM_BACKOFF_MAX_S": "1",
            "DSIMPORT_POLL_TICK_S": "0.5",
            "DSIMPORT_POLL_INITIAL_INTERVAL_S": str(self.poll_initial_interval_s),
            "DSIMPORT_POLL_MAX_INTERVAL_S": str(self.poll_max_interval_s),
            "DSIMPORT_SUBMIT_MAX_RETRIES": str(self.submit_max_retries),
            "DSIMPORT_SUBMIT_RETRY_BACKOFF_S": "0.5",
        }


@dataclass(frozen=True)
class Request:
    """One import request sent as a stream message: explorer import of one event into one dataset."""

    message_id: str
    dataset: int
    event_id: str


@dataclass(frozen=True)
class Send:
    """A stream entry written at ``at_s``; ``duplicate`` marks the second copy of an already planned body."""

    at_s: float
    request: Request
    duplicate: bool = False


@dataclass(frozen=True)
class Fault:
    """A fault starting at ``at_s``; ``args`` hold its drawn parameters (duration, status, target, ...)."""

    at_s: float
    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        shown = " ".join(f"{key}={value}" for key, value in sorted(self.args.items()))
        return f"t={self.at_s:5.2f}s {self.kind} {shown}".rstrip()


@dataclass(frozen=True)
class FaultPlan:
    seed: int
    backend: str  # "sqlite" or "postgresql"
    workers: int
    beats: int
    datasets: int
    # Seconds of clock offset of the last worker (0: none), passed as DSIMPORT_CLOCK_OFFSET_S.
    clock_offset_s: float
    task_list_order: str
    sends: tuple[Send, ...]
    faults: tuple[Fault, ...]
    # Faults are switched off at this second; the quiet period starts then.
    fault_window_s: float
    timing: Timing = Timing()
    schedule: SchedulePlan = field(default_factory=SchedulePlan)

    @property
    def requests(self) -> tuple[Request, ...]:
        return tuple(send.request for send in self.sends if not send.duplicate)

    @property
    def targets(self) -> int:
        """Datasets created for the run: the requests' (first), then those only schedules write to."""
        return self.datasets + self.schedule.own_datasets

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.faults:
            counts[fault.kind] = counts.get(fault.kind, 0) + 1
        duplicates = sum(1 for send in self.sends if send.duplicate)
        if duplicates:
            counts["duplicate_message"] = duplicates
        if self.clock_offset_s:
            counts["clock_offset"] = 1
        if self.task_list_order != "newest":
            counts["list_oldest_first"] = 1
        reordered = sum(
            1 for a, b in zip(self.sends, self.sends[1:], strict=False) if a.request.message_id > b.request.message_id
        )
        if reordered:
            counts["reordered_message"] = reordered
        for kind, label in ((WINDOW, "schedule_window"), (COPY, "schedule_copy"), (PLAIN, "schedule_plain")):
            drawn = sum(1 for spec in self.schedule.schedules if spec.kind == kind)
            if drawn:
                counts[label] = drawn
        for schedule_fault in self.schedule.faults:
            counts[schedule_fault.kind] = counts.get(schedule_fault.kind, 0) + 1
            if schedule_fault.stall_worker is not None:
                counts["read_stall"] = counts.get("read_stall", 0) + 1
        arriving = len(self.schedule.arrivals())
        if arriving:
            counts["schedule_item_arriving"] = arriving
        return counts

    def describe(self) -> str:
        """The plan as printable lines (the same seed prints the same text)."""
        head = (
            f"seed {self.seed}: backend={self.backend} workers={self.workers} beats={self.beats} "
            f"datasets={self.datasets} requests={len(self.requests)} sends={len(self.sends)} "
            f"clock_offset_s={self.clock_offset_s:g} task_list_order={self.task_list_order} "
            f"fault_window_s={self.fault_window_s:g}"
        )
        order = " ".join(
            f"{send.request.message_id}{'(dup)' if send.duplicate else ''}@{send.at_s:.1f}" for send in self.sends
        )
        faults = [f"  fault {fault.line()}" for fault in self.faults]
        return "\n".join([head, f"  sends: {order}", *faults, *self.schedule.describe()])


def draw_plan(seed: int, *, postgres_share: float = 0.3) -> FaultPlan:
    """The plan of ``seed``; nothing but the seed decides it."""
    rng = random.Random(seed)
    backend = "postgresql" if rng.random() < postgres_share else "sqlite"
    workers = rng.choice((1, 2, 2))
    beats = rng.choice((1, 1, 2))
    datasets = rng.randint(2, 3)
    clock_offset_s = 30.0 if workers > 1 and rng.random() < 0.3 else 0.0
    task_list_order = "oldest" if rng.random() < 0.3 else "newest"
    fault_window_s = 14.0

    requests = [
        Request(message_id=f"s{seed}-m{n:02d}", dataset=rng.randrange(datasets), event_id=f"evt-{seed}-{n:02d}")
        for n in range(rng.randint(10, 22))
    ]
    sends = [Send(at_s=round(rng.uniform(0.0, 9.0), 2), request=request) for request in requests]
    # Duplicates: the same body again, sometimes at once, sometimes long after the first copy was handled.
    for request in rng.sample(requests, k=rng.randint(0, min(4, len(requests)))):
        first = next(send.at_s for send in sends if send.request == request)
        sends.append(Send(at_s=round(rng.uniform(first, fault_window_s), 2), request=request, duplicate=True))
    sends.sort(key=lambda send: (send.at_s, send.request.message_id, send.duplicate))

    kinds = [kind for kind in FAULT_WEIGHTS if backend == "postgresql" or kind != "postgres_restart"]
    weights = [FAULT_WEIGHTS[kind] for kind in kinds]
    faults = [_draw_fault(rng, kind, workers, beats) for kind in rng.choices(kinds, weights, k=rng.randint(3, 7))]
    faults.sort(key=lambda fault: fault.at_s)
    # Last, from a generator of its own: the requests and faults of a seed are what they were before schedules.
    schedule = draw_schedules(
        seed, datasets=datasets, workers=workers, fault_window_s=fault_window_s, lease_s=Timing().lease_s
    )
    return FaultPlan(
        seed=seed,
        backend=backend,
        workers=workers,
        beats=beats,
        datasets=datasets,
        clock_offset_s=clock_offset_s,
        task_list_order=task_list_order,
        sends=tuple(sends),
        faults=tuple(faults),
        fault_window_s=fault_window_s,
        schedule=schedule,
    )


def _draw_fault(rng: random.Random, kind: str, workers: int, beats: int) -> Fault:
    at_s = round(rng.uniform(0.3, 11.0), 2)
    timing = Timing()
    args: dict[str, Any]
    if kind == "post_lost_status":
        args = {"status": rng.randint(500, 504), "next": rng.randint(1, 3)}
    elif kind == "post_lost_reset":
        args = {"next": rng.randint(1, 2)}
    elif kind == "post_lost_timeout":
        args = {"next": rng.randint(1, 2), "delay_ms": int((timing.api_timeout_s + rng.uniform(0.5, 2.0)) * 1000)}
    elif kind == "post_refused":
        args = {"status": rng.choice((500, 502, 503, 504)), "next": rng.randint(1, 3)}
    elif kind == "slow_over_lease":
        route = rng.choice((POST_ROUTE, POST_ROUTE, *POLL_ROUTES))
        args = {"route": route, "latency_ms": int((timing.lease_s + rng.uniform(0.3, 2.0)) * 1000)}
        args["for_s"] = round(rng.uniform(1.5, 4.0), 2)
    elif kind == "storm_429":
        args = {"rate": round(rng.uniform(0.5, 1.0), 2), "retry_after_s": rng.choice((1, 2))}
        args["for_s"] = round(rng.uniform(1.0, 3.0), 2)
    elif kind == "vanish":
        args = {"count": rng.randint(1, 2)}
    elif kind == "unknown_spell":
        args = {"for_s": round(rng.uniform(2.0, 5.0), 2)}
    elif kind == "crowd":
        # A lost answer first, then the crowd on every dataset: the orphan is older than 500 tasks wherever it is.
        args = {"tasks": rng.randint(510, 650), "status": rng.randint(500, 504)}
    elif kind in ("kill_worker", "pause_worker"):
        args = {"worker": rng.randrange(workers)}
        if kind == "kill_worker":
            args["down_s"] = round(rng.uniform(0.2, 2.5), 2)
        else:
            args["for_s"] = round(timing.lease_s + rng.uniform(0.5, 3.0), 2)
    elif kind == "kill_beat":
        args = {"beat": rng.randrange(beats), "down_s": round(rng.uniform(0.2, 2.5), 2)}
    elif kind in ("redis_restart", "postgres_restart"):
        args = {"down_s": round(rng.uniform(0.5, 2.0), 2)}
    else:
        raise ValueError(f"unknown fault kind {kind}")
    return Fault(at_s=at_s, kind=kind, args=args)


def parse_seeds(text: str) -> list[int]:
    """``"1-300"``, ``"7"`` or ``"1,5,9-12"`` as a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            seeds.extend(range(low, high + 1))
        else:
            seeds.append(int(part))
    return seeds
