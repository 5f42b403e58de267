"""Skip what the target already holds: the step a ``skip_existing`` job takes once, before its POST.

The job's items are read and keyed (:mod:`import_kinds.item_keys`): explorer, playground and spans items by the
origin they name; a campaign by the events it selected (listed from the API); a file by the payload of each line
(the file is downloaded); copied records by their payload (each record fetched). The keys are checked against the
target's index in the ledger (:mod:`store.dataset_index`), read again from the API's record list when it is older
than ``refresh_after_s``. What is new is claimed in the index and becomes the job's params; the job records how
many it left out (``duplicates_skipped``). Items repeated inside one request count as duplicates too.

- Nothing new: the job ends COMPLETED without a POST, saying so.
- Some items held: the params are cut. A file gets a new upload holding only its new lines; a campaign becomes an
  explorer import of the selected events the dataset does not hold (the API cannot import part of a campaign).
- The source cannot be read (404: an unknown file, campaign or record): the job is sent as it was, unchanged,
  and the API's refusal says what is wrong, as it would without the option.

Why this cannot double an item, and what could make it false:

- *Two jobs with the same items at once* (a message and a schedule fire, two deliveries): the check and the claim
  happen in one transaction holding the dataset's index row (:func:`store.dataset_index.lock_dataset`); the
  second job finds the first one's claim.
- *The API answered slowly while another job claimed* (the cut is planned outside the lock because a file's new
  upload is a network call): under the lock the plan is checked again and, if any kept key was claimed meanwhile,
  planned once more.
- *A process killed between two writes*: the cut, the claim and ``deduped_at`` commit together before the job can
  be claimed for its POST; killed earlier, the next delivery plans again (an upload made then is left unused).
- *A retry of the POST*: it sends the params stored by the cut; the check never runs twice for one job.
- *The job that brings an item fails after another job trusted it*: a job never skips items that a job still
  active brings; it waits for that job to end (a fresh submit message every :data:`WAIT_FOR_CLAIM_S`, holding no
  worker), then skips them if it completed, or imports them if it failed.
- *Records written by another tool, or deleted by a user*: seen at the next listing of the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import ApiError, DatasetsClient, is_terminal
from import_kinds import MAX_IDS, spec_of
from import_kinds.item_keys import origin_key, payload_key, read_jsonl_lines, record_keys
from jobs import own_creators
from jobs.outcomes import mark_ending
from jobs.submit import SubmitOutcome, SubmitResult, is_retryable
from store import guarantees
from store.dataset_index import claim_keys, held_keys, index_state, key_states, lock_dataset, replace_listed
from store.models import ImportJob, ImportKind, JobStatus
from store.state_machine import apply_transition, new_event

__all__ = [
    "SkipOutcome",
    "check_before_submit",
    "held_now",
    "jobs_to_check",
    "refresh_index",
    "skip_existing_before_submit",
]

log = logging.getLogger(__name__)

_PLAN_ATTEMPTS = 5
# A re-check after a cut submit looks at this many of the dataset's tasks for one still running that no job tracks.
_TASKS_LOOKED_AT = 2000
WAIT_FOR_CLAIM_S = 3.0
"""How long a job whose items another active job brings waits before it looks again (a fresh submit message)."""


@dataclass(frozen=True)
class SkipOutcome:
    job_id: str
    offered: int
    skipped: int
    ended: bool
    """Nothing was new: the job ended COMPLETED without a POST."""
    note: str
    waiting_on: str | None = None
    """Another job still active brings some of the same items: nothing was decided, ask again once it ends."""


@dataclass(frozen=True)
class _Item:
    value: Any
    """The item as the request body holds it (an id, a span reference, a raw JSONL line)."""
    key: str | None
    """Its key; None when it has none we can compute (then it is always sent)."""


@dataclass(frozen=True)
class _Plan:
    kept: list[_Item]
    skipped: int

    @property
    def kept_keys(self) -> list[str]:
        return [item.key for item in self.kept if item.key is not None]


def jobs_to_check(session_factory: sessionmaker[Session], job_ids: list[str]) -> list[str]:
    """Those of ``job_ids`` that still have to take this step."""
    with session_factory() as session:
        found = set(
            session.scalars(
                select(ImportJob.id).where(
                    ImportJob.id.in_(job_ids), ImportJob.skip_existing.is_(True), ImportJob.deduped_at.is_(None)
                )
            )
        )
    return [job_id for job_id in job_ids if job_id in found]


def check_before_submit(
    job_id: str,
    *,
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    now: Callable[[], datetime],
    refresh_after_s: float,
    final_attempt: bool,
) -> SubmitResult | None:
    """The step as the submit tasks take it: None to go on to the POST, or what the submit ends with now.

    A failure to read (the API busy, unreachable) leaves the job PENDING for a retry like a failed POST would; the
    last one, or a refusal other than a 404, ends it FAILED: sending it unchecked would break the promise made.
    """
    try:
        outcome = skip_existing_before_submit(
            job_id, session_factory=session_factory, client=client, now=now, refresh_after_s=refresh_after_s
        )
    except ApiError as exc:
        if (is_retryable(exc) or isinstance(exc, _Contended)) and not final_attempt:
            log.warning("job %s: checking for duplicates failed (%s)", job_id, exc, extra={"job_id": job_id})
            return SubmitResult(SubmitOutcome.RETRY, job_id, f"checking for duplicates: {exc}", exc.retry_after_s)
        return _give_up(session_factory, job_id, exc, now)
    if outcome is not None and outcome.waiting_on is not None:
        _note_wait(session_factory, job_id, outcome.note, until=now() + timedelta(seconds=WAIT_FOR_CLAIM_S))
        return SubmitResult(SubmitOutcome.DEFERRED, job_id, outcome.note, retry_after_s=WAIT_FOR_CLAIM_S)
    if outcome is None or not outcome.ended:
        return None
    return SubmitResult(SubmitOutcome.NOTHING_NEW, job_id, outcome.note, finished=True)


def _note_wait(session_factory: sessionmaker[Session], job_id: str, note: str, *, until: datetime) -> None:
    """Say on the job why it waits, and until when: the recovery sweep leaves a PENDING job alone until then (its
    next look is already scheduled), so a long wait is one chain of messages, not one more per sweep."""
    with session_factory() as session:
        job = session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status != JobStatus.PENDING or job.deduped_at is not None:
            return
        job.message = note
        job.submit_not_before = until
        job.updated_at = until - timedelta(seconds=WAIT_FOR_CLAIM_S)
        session.commit()


def _give_up(
    session_factory: sessionmaker[Session], job_id: str, exc: ApiError, now: Callable[[], datetime]
) -> SubmitResult:
    note = f"could not check the dataset for duplicates: {exc}"
    with session_factory() as session:
        job = session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status != JobStatus.PENDING:
            return SubmitResult(SubmitOutcome.SKIPPED, job_id, "job is no longer PENDING")
        job.last_error = str(exc)
        job.error_code = exc.error_code
        job.message = note
        mark_ending(job, JobStatus.FAILED)
        apply_transition(job, JobStatus.FAILED, now=now(), message=note)
        session.commit()
    log.warning("job %s: %s", job_id, note, extra={"job_id": job_id})
    return SubmitResult(SubmitOutcome.FAILED, job_id, note, finished=True)


def refresh_index(
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    dataset_id: str,
    *,
    now: Callable[[], datetime],
    max_age_s: float,
) -> bool:
    """Read the dataset's whole record list into the index unless it was read less than ``max_age_s`` ago.
    True when it was read."""
    with session_factory() as session:
        state = index_state(session, dataset_id)
        if state is not None and state.refreshed_at is not None:
            if now() - state.refreshed_at < timedelta(seconds=max_age_s):
                return False
    started = now()
    listed: set[str] = set()
    count = 0
    for record in client.iter_records(dataset_id):
        listed.update(record_keys(record.payload_dict(), record.properties))
        count += 1
    with session_factory() as session:
        lock_dataset(session, dataset_id)
        replace_listed(session, dataset_id, listed, listing_started=started, record_count=count)
        session.commit()
    log.info("dataset %s: index read from %d records", dataset_id, count)
    return True


def held_now(
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    dataset_id: str,
    keys: list[str],
    *,
    now: datetime,
    max_age_s: float,
) -> set[str]:
    """Those of ``keys`` a job checked now would leave out, read without writing (for previews and dry runs): the
    index, and the record list itself when the index is older than ``max_age_s``."""
    with session_factory() as session:
        held = held_keys(session, dataset_id, keys)
        state = index_state(session, dataset_id)
        fresh = state is not None and state.refreshed_at is not None
        fresh = fresh and now - state.refreshed_at < timedelta(seconds=max_age_s)  # type: ignore[union-attr,operator]
    if not fresh:
        wanted = set(keys)
        try:
            for record in client.iter_records(dataset_id):
                held.update(wanted.intersection(record_keys(record.payload_dict(), record.properties)))
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            # No such dataset: it holds nothing (the jobs themselves would be refused).
    return held


def skip_existing_before_submit(
    job_id: str,
    *,
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    now: Callable[[], datetime],
    refresh_after_s: float,
) -> SkipOutcome | None:
    """Cut the job to what its target does not hold yet (see the module); None when there is nothing to do.

    :raises ApiError: reading the dataset or the source failed other than by a 404; nothing was written.
    """
    with session_factory() as session:
        job = session.get(ImportJob, job_id)
        if job is None or not job.skip_existing or job.deduped_at is not None or job.status != JobStatus.PENDING:
            return None
        if job.deadline_at is not None and now() >= job.deadline_at:
            return None  # the submit expires it, as any job past its deadline
        kind, dataset_id, params = ImportKind(job.kind), job.dataset_id, dict(job.params)
        # Checked again after a submit was cut and recovery found no task for it (see transitions.not_found).
        again = job.attempts > 0
    try:
        if again:
            running = _untracked_running_task(session_factory, client, dataset_id)
            if running is not None:
                return _waiting_for_task(job_id, running)
        refresh_index(session_factory, client, dataset_id, now=now, max_age_s=0 if again else refresh_after_s)
        items = _read_items(client, kind, params)
    except ApiError as exc:
        if exc.status_code != 404:
            raise
        return _send_unchanged(session_factory, job_id, f"could not read what to check for duplicates ({exc})", now)
    keys = [item.key for item in items if item.key is not None]
    for _ in range(_PLAN_ATTEMPTS):
        with session_factory() as session:
            states = key_states(session, dataset_id, keys, ignore_job=job_id)
        if states.in_flight:
            return _waiting(job_id, states.in_flight)
        plan = _plan(items, states.held)
        new_kind, new_params = _cut(client, kind, params, plan, len(items))
        with session_factory() as session:
            job = session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
            if job is None or job.deduped_at is not None or job.status != JobStatus.PENDING:
                return None
            lock_dataset(session, dataset_id)
            if guarantees.enabled("skip-existing-lock"):
                recheck = key_states(session, dataset_id, plan.kept_keys, ignore_job=job_id)
                if recheck.held or recheck.in_flight:
                    session.rollback()
                    continue  # another job claimed some of these meanwhile: plan again
            outcome = _write(session, job, plan, len(items), new_kind, new_params, at=now())
            session.commit()
        log.info("job %s: %s", job_id, outcome.note, extra={"job_id": job_id})
        return outcome
    raise _Contended(f"job {job_id}: the dataset's index kept changing while planning; will try again")


class _Contended(ApiError):
    """Other jobs of the same dataset kept claiming this job's items: retried like a busy API."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _untracked_running_task(
    session_factory: sessionmaker[Session], client: DatasetsClient, dataset_id: str
) -> str | None:
    """A remote import of ours on the dataset, still running, that no job tracks: an interrupted submit's task that
    recovery could not pair. Its records may be the ones this job is about to ask for again."""
    ours = own_creators.learn(session_factory, client)
    running = [
        task.id
        for _, task in zip(range(_TASKS_LOOKED_AT), client.iter_tasks(dataset_id), strict=False)
        if not is_terminal(task.status) and (not ours or task.creator_id in ours)
    ]
    if not running:
        return None
    with session_factory() as session:
        tracked = set(session.scalars(select(ImportJob.remote_task_id).where(ImportJob.remote_task_id.in_(running))))
    return next((task_id for task_id in running if task_id not in tracked), None)


def _waiting_for_task(job_id: str, task_id: str) -> SkipOutcome:
    note = (f"remote task {task_id} of ours on this dataset is still running and no job tracks it (a cut submit's, "
            "perhaps this job's own): waiting for it to end before checking again")  # fmt: skip
    return SkipOutcome(job_id, 0, 0, False, note, waiting_on=task_id)


def _waiting(job_id: str, in_flight: dict[str, str]) -> SkipOutcome:
    others = sorted(set(in_flight.values()))
    note = f"{len(in_flight)} of its items are on their way with job {others[0]}"
    if len(others) > 1:
        note += f" and {len(others) - 1} other(s)"
    note += ": waiting for it to end before deciding (skipped now, they would be lost if it failed)"
    return SkipOutcome(job_id, 0, 0, False, note, waiting_on=others[0])


def _read_items(client: DatasetsClient, kind: ImportKind, params: dict[str, Any]) -> list[_Item]:
    if kind == ImportKind.FILE:
        content = client.download_file(str(params["file_id"]))
        return [_Item(line.raw, line.key) for line in read_jsonl_lines(content)]
    if kind == ImportKind.CAMPAIGN:
        events = client.iter_campaign_events(str(params["campaign_id"]))
        return [_Item(event.event_id, origin_key("campaign", event.event_id)) for event in events]
    values = spec_of(kind).items_of(params)
    if kind == ImportKind.DATASET:
        return [_Item(value, _record_payload_key(client, str(value))) for value in values]
    return [_Item(value, origin_key(str(kind), value)) for value in values]


def _record_payload_key(client: DatasetsClient, record_id: str) -> str | None:
    try:
        record = client.fetch_record(record_id)
    except ApiError as exc:
        if exc.status_code == 404:
            return None  # the API will say the record is missing
        raise
    return payload_key(record.payload_dict())


def _plan(items: list[_Item], held: set[str]) -> _Plan:
    kept: list[_Item] = []
    seen: set[str] = set()
    for item in items:
        if item.key is not None:
            if item.key in held or item.key in seen:
                continue
            seen.add(item.key)
        kept.append(item)
    return _Plan(kept, len(items) - len(kept))


def _cut(
    client: DatasetsClient, kind: ImportKind, params: dict[str, Any], plan: _Plan, offered: int
) -> tuple[ImportKind, dict[str, Any]]:
    """The kind and params that import ``plan.kept`` only (unchanged when nothing was left out)."""
    if plan.skipped == 0 or not plan.kept:
        return kind, params
    if kind == ImportKind.FILE:
        content = b"".join(item.value + b"\n" for item in plan.kept)
        uploaded = client.upload_file(f"{params['file_id']}-new-lines.jsonl", content)
        return kind, {**params, "file_id": uploaded.id}
    if kind == ImportKind.CAMPAIGN:
        if len(plan.kept) > MAX_IDS:
            return kind, params  # too many to name one by one: the campaign is imported whole (see _write)
        return ImportKind.EXPLORER, {"completion_event_ids": [item.value for item in plan.kept]}
    return kind, spec_of(kind).with_items(params, [item.value for item in plan.kept])


def _write(
    session: Session,
    job: ImportJob,
    plan: _Plan,
    offered: int,
    new_kind: ImportKind,
    new_params: dict[str, Any],
    *,
    at: datetime,
) -> SkipOutcome:
    job.deduped_at = at
    if not plan.kept:
        job.duplicates_skipped = plan.skipped + (job.duplicates_skipped or 0)
        job.requested_count = job.imported_count = 0
        note = f"all {offered} items are in dataset {job.dataset_id} already: nothing sent"
        job.message = note
        mark_ending(job, JobStatus.COMPLETED)
        apply_transition(job, JobStatus.COMPLETED, now=at, message=note)
        return SkipOutcome(job.id, offered, plan.skipped, True, note)
    whole_campaign = job.kind == ImportKind.CAMPAIGN and new_kind == ImportKind.CAMPAIGN and plan.skipped > 0
    skipped = (0 if whole_campaign else plan.skipped) + (job.duplicates_skipped or 0)
    if whole_campaign:
        note = f"{plan.skipped} of {offered} selected events are held already, but the {len(plan.kept)} others are "
        note += f"too many to name (limit {MAX_IDS}): the campaign is imported whole"
    elif skipped:
        note = f"{skipped} of {offered} items are in the dataset already and left out; {len(plan.kept)} to import"
        if new_kind != job.kind:
            note += f" as an {new_kind} import of the events by id"
    else:
        note = f"none of the {offered} items is in the dataset yet"
    job.duplicates_skipped = skipped
    if (new_kind, new_params) != (job.kind, job.params) and job.original_request is None:
        job.original_request = {"kind": str(job.kind), "params": dict(job.params)}
    job.kind, job.params = new_kind, new_params
    claim_keys(session, job.dataset_id, plan.kept_keys, job_id=job.id, now=at)
    new_event(job, job.status, job.status, now=at, progress=job.progress, message=note)
    return SkipOutcome(job.id, offered, skipped, False, note)


def _send_unchanged(
    session_factory: sessionmaker[Session], job_id: str, note: str, now: Callable[[], datetime]
) -> SkipOutcome | None:
    with session_factory() as session:
        job = session.get(ImportJob, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.deduped_at is not None or job.status != JobStatus.PENDING:
            return None
        at = now()
        job.deduped_at = at
        new_event(job, job.status, job.status, now=at, progress=job.progress, message=note)
        session.commit()
    return SkipOutcome(job_id, 0, 0, False, note)
