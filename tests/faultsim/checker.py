"""The verdict on one run, from what the emulator, the ledger's tables and Redis say, without the code under test.

Nothing here imports ``store``, ``tasks`` or ``worker``: the ledger is read as rows (plain SQL in the campaign), the
job statuses that end a job are listed here, and the tie between a remote task and a request comes from the
emulator (the origins of the records a task imports: ``event:<id>``), not from the job's own ``remote_task_id``.

Invariants (each violation is a kind and a line):

- ``request-without-job``: a request (message id) that is not exactly one job (key ``message:<id>``).
- ``job-without-request``: a job no request asked for.
- ``job-mismatch``: a job whose dataset or events differ from its message.
- ``stuck-job``: after the quiet period, a job neither terminal nor explainably waiting (explained: its remote
  task is still running at the emulator).
- ``outcome-disagrees``: a terminal job whose remote task ended otherwise (COMPLETED against FAILED, ...), or a
  job LOST although its task still exists.
- ``double-import``: more than one remote task imports one request's event (a second import).
- ``request-record-doubled``: a request's event held more than once in its dataset (the emulator runs with
  ``dedupe_imports`` off, so a second import that reached the API shows as a second record, whichever task did it).
- ``request-record-missing``: a job the ledger says COMPLETED whose item has no record in its dataset, and which the
  API did not say it skipped (:mod:`tests.faultsim.record_checker`; a schedule's chunks are judged by the schedule
  checker's ``schedule-item-skipped``).
- ``orphan-task``: a remote task (not another client's) that no job owns.
- ``wrong-owner``: a job owns a task that imports another request's event.
- ``dataset-overfilled``: a dataset with more remote imports started than jobs on it.
- ``stale-unacked``: a stream entry still pending (delivered, not acked) for longer than the claim window, or
  entries never delivered.
- ``api-calls-over-bound``: more import POSTs, or more task reads, than the bound below.
- ``calls-after-end``: API calls while every job had ended and every process was running (nothing left to do).
- ``process-died``: a worker or beat that exited without being killed by the run (a start refused in one line
  because Redis or the database was down at that moment is a note, not a violation: a supervisor starts it again).
- The schedule family (``schedule-fire-twice``, ``schedule-item-doubled``, ``schedule-item-skipped``,
  ``schedule-item-stray``, ``schedule-window-gap``): see :mod:`tests.faultsim.schedule_checker`. A schedule's jobs
  (key ``schedule:NAME:FIRE_TIME...``) are judged there, not as requests; they count in the bounds below.

The request checks above concern the stream requests; the remote-task checks (orphan, wrong owner, overfilled)
cover every job, a schedule's chunks too (a task's origins must be its job's events or records).

The POST bound (import POSTs of explorer and dataset imports together): one per request and one per schedule job,
plus one per answer the client could not use although the server may have acted
(every non-2xx answer and every reset counted by the emulator on the import route, and every answer the run made
slower than the client's timeout), plus one per submit a fault interrupted (a killed or paused worker: its
concurrency; a Redis or PostgreSQL restart: every worker's concurrency). Every extra POST must be explained by one
of those.

The read bound (``fetch_task`` + ``list_tasks``): for each remote import, one read per initial poll interval over
its life at the emulator (created to first read after its end), plus the lease and stale-PENDING delay a recovery
adds, times the read attempts; plus one per spoiled read answer; plus for each possible adoption scan (the POST
extras above) the pages of the largest dataset's task list. A poller that loops, or re-polls a batch it keeps
losing, exceeds it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .plan import POLL_ROUTES, POST_ROUTE, FaultPlan
from .record_checker import check_completed_records
from .schedule_checker import ScheduleSeen, check_schedules, record_origin
from .schedule_plan import DATASET_ROUTE

__all__ = ["REMOTE_TERMINAL", "TERMINAL", "Observation", "ScheduleSeen", "Verdict", "check"]
POST_ROUTES = (POST_ROUTE, DATASET_ROUTE)

TERMINAL = frozenset(
    {"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT", "REJECTED", "LOST", "EXPIRED", "CANCELLED_LOCALLY"}
)
REMOTE_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"})
LIST_PAGE_SIZE = 100


@dataclass
class Observation:
    """Everything the checker reads, collected by the campaign after the quiet period."""

    plan: FaultPlan
    dataset_ids: list[str]
    sent: dict[str, int]
    jobs: list[dict[str, Any]]
    # Status changes per job id (only to explain a violation).
    events: dict[str, list[str]]
    stats: dict[str, Any]
    origins: dict[str, dict[str, Any]]
    foreign_tasks: set[str]
    deleted_tasks: dict[str, dict[str, Any]]
    interrupted_submits: int
    late_posts: int
    pending: list[dict[str, Any]]
    last_delivered: str
    stream_length: int
    last_entry: str
    calls_in_idle_window: int | None
    all_ended: bool
    deaths: list[str]
    notes: list[str] = field(default_factory=list)
    schedules: ScheduleSeen | None = None


@dataclass
class Verdict:
    violations: list[tuple[str, str]]
    figures: dict[str, Any]
    # What the checker found explainable rather than wrong (an item still on its way, ...).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def kinds(self) -> Counter[str]:
        return Counter(kind for kind, _ in self.violations)


def _ts(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def check(seen: Observation) -> Verdict:
    plan, timing = seen.plan, seen.plan.timing
    violations: list[tuple[str, str]] = []
    notes: list[str] = []

    def violation(kind: str, line: str) -> None:
        violations.append((kind, line))

    schedule_names = {row["name"] for row in seen.schedules.schedules} if seen.schedules else set()

    def schedule_job(job: dict[str, Any]) -> bool:
        key = str(job["key"])
        return key.startswith("schedule:") and key.split(":", 2)[1] in schedule_names

    requests = {request.message_id: request for request in plan.requests}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for job in seen.jobs:
        by_key.setdefault(job["key"], []).append(job)

    def history(message_id: str) -> str:
        found = by_key.get(f"message:{message_id}", [])
        if not found:
            return f"{message_id}: no job"
        job = found[0]
        return f"{message_id} job {job['id'][:8]} {job['status']}: " + "; ".join(seen.events.get(job["id"], []))

    # Every request is exactly one job, with the dataset and source its message named.
    for message_id, request in requests.items():
        if not seen.sent.get(message_id):
            continue  # never written (Redis unreachable for the producer's whole retry time): see the notes
        found = by_key.get(f"message:{message_id}", [])
        if len(found) != 1:
            violation("request-without-job", f"{message_id}: {len(found)} jobs (sent {seen.sent.get(message_id, 0)}x)")
            continue
        job = found[0]
        events = job["params"].get("completion_event_ids")
        if job["dataset_id"] != seen.dataset_ids[request.dataset] or events != [request.event_id]:
            violation("job-mismatch", f"{message_id}: job {job['id']} dataset={job['dataset_id']} events={events}")
    request_keys = {f"message:{m}" for m in requests}
    for job in seen.jobs:
        if job["key"] not in request_keys and not schedule_job(job):
            violation("job-without-request", f"job {job['id']} key={job['key']} status={job['status']}")

    # Remote tasks: which request each imports (from the emulator), and who owns it (from the ledger).
    records = seen.schedules.records if seen.schedules else {}
    copied_origin = {str(record["id"]): record_origin(record) for held in records.values() for record in held}
    tasks: dict[str, dict[str, Any]] = dict(seen.stats["tasks"])
    origins = {**{k: v for k, v in seen.deleted_tasks.items()}, **seen.origins}
    ours = {task_id for task_id in set(tasks) | set(seen.deleted_tasks) if task_id not in seen.foreign_tasks}
    event_of_request = {request.event_id: message_id for message_id, request in requests.items()}
    imports_per_request: dict[str, list[str]] = {}
    for task_id in sorted(ours):
        for origin in origins.get(task_id, {}).get("origins", []):
            event = origin.removeprefix("event:")
            if event in event_of_request:  # a schedule's items are counted in its target (schedule_checker)
                imports_per_request.setdefault(event_of_request[event], []).append(task_id)
    for message_id, task_ids in sorted(imports_per_request.items()):
        if len(task_ids) > 1:
            violation("double-import", f"{len(task_ids)} remote imports {task_ids} for {history(message_id)}")
    # The records themselves (datasets the inventory covers): one request, at most one record of its event.
    for message_id, request in sorted(requests.items()):
        held = records.get(seen.dataset_ids[request.dataset])
        found = sum(1 for record in held or [] if record_origin(record) == f"event:{request.event_id}")
        if found > 1:
            line = f"event:{request.event_id} {found}x in its dataset: {history(message_id)}"
            violation("request-record-doubled", line)
    # Every item of a COMPLETED job has its record (a schedule's chunks: see the schedule checker).
    records_checked = check_completed_records(
        seen.jobs,
        records,
        origins,
        copied_origin,
        violation,
        notes.append,
        judged_elsewhere=schedule_job,
        history=lambda job: f"{job['status']}: " + "; ".join(seen.events.get(job["id"], [])),
    )
    owner = {job["remote_task_id"]: job for job in seen.jobs if job["remote_task_id"]}
    for task_id in sorted(ours):
        if task_id not in owner:
            info = tasks.get(task_id) or seen.deleted_tasks.get(task_id, {})
            imported = origins.get(task_id, {}).get("origins", [])
            asked_by = [event_of_request.get(o.removeprefix("event:"), o) for o in imported]
            violation(
                "orphan-task",
                f"task {task_id} on {str(info.get('dataset_id'))[:8]} imports {imported}, no job owns it; "
                + " | ".join(history(m) for m in asked_by),
            )
            continue
        job = owner[task_id]
        imported = origins.get(task_id, {}).get("origins", [])
        wanted = [f"event:{e}" for e in job["params"].get("completion_event_ids", [])] + [
            copied_origin.get(r, f"record:{r}") for r in job["params"].get("dataset_record_ids", [])
        ]
        if imported and imported != wanted:
            violation("wrong-owner", f"job {job['id']} wants {wanted} but owns task {task_id} importing {imported}")
    for task_id, job in owner.items():
        if task_id in seen.foreign_tasks:
            message_id = job["key"].removeprefix("message:")
            violation("wrong-owner", f"adopted task {task_id} of another client: {history(message_id)}")

    # Remote imports per dataset never exceed the jobs on it.
    jobs_per_dataset = Counter(job["dataset_id"] for job in seen.jobs)
    for dataset_id, created in sorted(seen.stats["tasks_created"].items()):
        if created > jobs_per_dataset.get(dataset_id, 0):
            violation(
                "dataset-overfilled",
                f"dataset {dataset_id}: {created} remote imports started, {jobs_per_dataset.get(dataset_id, 0)} jobs",
            )

    # Every job ended, or is explainably waiting; an ended job agrees with its remote task.
    for job in seen.jobs:
        remote = tasks.get(job["remote_task_id"]) if job["remote_task_id"] else None
        if job["status"] not in TERMINAL:
            if remote is not None and remote["status"] not in REMOTE_TERMINAL:
                continue  # the remote import is still running: waiting is right
            violation(
                "stuck-job",
                f"job {job['id']} ({job['key']}) {job['status']} remote={job['remote_task_id']} "
                f"remote_status={remote['status'] if remote else None}",
            )
            continue
        if remote is not None and remote["status"] in REMOTE_TERMINAL and remote["status"] != job["status"]:
            violation("outcome-disagrees", f"job {job['id']} {job['status']} but its task ended {remote['status']}")
        if job["status"] == "LOST" and job["remote_task_id"] and job["remote_task_id"] in tasks:
            violation("outcome-disagrees", f"job {job['id']} LOST but its task {job['remote_task_id']} exists")

    # The request stream: everything delivered, nothing pending past the claim window.
    claim_window_ms = (timing.claim_min_idle_s + timing.claim_interval_s) * 1000 * 2 + 2000
    for entry in seen.pending:
        if entry["idle_ms"] > claim_window_ms:
            violation("stale-unacked", f"entry {entry['id']} pending for {entry['idle_ms']} ms")
    if seen.stream_length and _stream_id(seen.last_delivered) < _stream_id(seen.last_entry):
        violation("stale-unacked", f"entries after {seen.last_delivered} never delivered (last {seen.last_entry})")

    # API calls within the bound.
    requests_by_route: dict[str, int] = seen.stats["requests"]
    responses: dict[str, dict[str, int]] = seen.stats["responses"]

    def spoiled(route: str) -> int:
        return sum(n for code, n in responses.get(route, {}).items() if not code.startswith("2"))

    posts = sum(requests_by_route.get(route, 0) for route in POST_ROUTES)
    post_extras = sum(spoiled(route) for route in POST_ROUTES) + seen.late_posts + seen.interrupted_submits
    post_bound = len(requests) + sum(1 for job in seen.jobs if schedule_job(job)) + post_extras
    if posts > post_bound:
        violation("api-calls-over-bound", f"{posts} import POSTs, bound {post_bound}")
    now = _ts(seen.stats["now"]) or 0.0
    reads_bound = 0.0
    for task_id in ours:
        task = tasks.get(task_id)
        if task is None:
            life = 2 * timing.lease_s
        else:
            created = _ts(task["created_at"]) or now
            life = (_ts(task["observed_at"]) or now) - created
        life += timing.lease_s + timing.stale_pending_s
        reads_bound += timing.api_max_attempts * (life / timing.poll_initial_interval_s + 2)
    largest = max([seen.stats["tasks_created"].get(d, 0) for d in seen.dataset_ids] or [0]) + max(
        [sum(1 for t in seen.foreign_tasks if tasks.get(t, {}).get("dataset_id") == d) for d in seen.dataset_ids] or [0]
    )
    pages = math.ceil(largest / LIST_PAGE_SIZE) + 1
    reads_bound += sum(spoiled(route) for route in POLL_ROUTES) + post_extras * pages * timing.api_max_attempts
    reads = sum(requests_by_route.get(route, 0) for route in POLL_ROUTES)
    if reads > reads_bound:
        violation("api-calls-over-bound", f"{reads} task reads (fetch_task+list_tasks), bound {reads_bound:.0f}")
    if seen.calls_in_idle_window:
        violation("calls-after-end", f"{seen.calls_in_idle_window} API calls while every job had ended")

    for death in seen.deaths:
        violation("process-died", death)

    schedule_figures: dict[str, Any] = {}
    if seen.schedules is not None and seen.schedules.schedules:
        request_origins: dict[str, set[str]] = {dataset: set() for dataset in seen.dataset_ids}
        for request in requests.values():
            request_origins[seen.dataset_ids[request.dataset]].add(f"event:{request.event_id}")
        schedule_figures = check_schedules(seen.schedules, seen.jobs, request_origins, violation, notes.append)
        # Why a schedule's chunk did not complete (its retry is judged above): one line each, for the reader.
        for job in seen.jobs:
            if schedule_job(job) and job["status"] in TERMINAL and job["status"] != "COMPLETED":
                history = seen.events.get(job["id"]) or []
                ending = next((line for line in history if f"->{job['status']}" in line
                               and not line.startswith(f"{job['status']}->")), "?")  # fmt: skip
                notes.append(f"schedule job {job['key']} ended {job['status']}: {ending}")

    figures = {
        "requests": len(requests),
        "jobs": len(seen.jobs),
        "statuses": dict(Counter(job["status"] for job in seen.jobs)),
        "remote_imports": sum(seen.stats["tasks_created"].values()),
        "posts": posts,
        "post_bound": post_bound,
        "reads": reads,
        "reads_bound": round(reads_bound),
        "all_ended": seen.all_ended,
        "completed_items_checked": records_checked,
    }
    if schedule_figures:
        figures["schedule_fires"] = schedule_figures.get("fires", 0)
        figures["schedule_failed_fires"] = schedule_figures.get("failed_fires", 0)
        figures["schedule_retries"] = schedule_figures.get("retries", 0)
        figures["schedule_takeovers"] = schedule_figures.get("takeovers", 0)
        figures["schedule_items"] = schedule_figures.get("items_covered", 0)
        figures["schedule_waiting"] = schedule_figures.get("items_waiting", 0)
    return Verdict(violations, figures, notes)
