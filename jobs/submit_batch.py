"""Submitting a batch of import jobs at once: the function behind the ``submit_batch`` task.

One submit task per job costs a broker message, a claim transaction and a write-back transaction per job, and its
POST waits for the one before it. A batch (what one read of the request stream yields) is claimed in one
transaction, POSTed concurrently, and its answers are recorded in one transaction. Each job goes through the same
steps and the same conditional writes as :func:`jobs.submit.submit_job`: the claim moves it PENDING -> SUBMITTING
under a lease, and every write after the POST applies only if that claim still holds.

What batching could break, and what keeps it whole:

- *Recovery pairs by time.* When a worker dies between its POSTs and the write-back, every job of the batch is
  left SUBMITTING, and recovery pairs the interrupted submits of a dataset with the unowned remote tasks in order
  of submit start (the API cannot say which request started which task). So the jobs of one dataset are POSTed one
  after another, in the order of their submit starts (stamped a millisecond apart at the claim); only different
  datasets are POSTed at the same time. And a dataset's chain goes on only after an accepted answer: after any
  other (refused, retried, unknown) the rest of the chain is handed back unsent (PENDING again, its claim undone).
  Then the remote tasks of a dataset always come from a prefix of its chain, and recovery's pairing is exact.
- *A POST slower than the lease.* The claim's lease starts for the whole batch at once. A POST starts only if it
  can end (its own deadline included) within :data:`POST_LEASE_FRACTION` of the lease after the claim, leaving the
  rest for the write-back; otherwise it and the rest of its chain are handed back, so recovery never takes over a
  job whose request is still to be sent.
- *Two deliveries of one batch, or a job in two batches.* The claim is the same conditional update as one job's.
- *A failed write-back.* The jobs stay SUBMITTING under their leases: recovery adopts their tasks (see above).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_client import ApiError, DatasetImportTask, DatasetsClient, call_with_deadline
from jobs import transitions
from jobs.poll_backoff import PollPolicy
from jobs.submit import (
    SubmitClaim,
    SubmitOutcome,
    SubmitResult,
    Writer,
    accepted_seen,
    accepted_writer,
    after_accepted,
    before_claim,
    failure_seen,
    failure_writer,
    log_late_answer,
    write_answer,
)
from store.jobs import begin_submits
from store.models import ImportJob

log = logging.getLogger(__name__)

MAX_BATCH = 50
"""Most jobs claimed together; a longer list is submitted in slices of this size, each with its own claim."""

POST_LEASE_FRACTION = 0.75
"""Share of the lease, from the claim, by which every POST of a batch must have ended."""

START_STEP = timedelta(milliseconds=1)
"""How far apart the submit starts of one dataset's chain are stamped, in the order its POSTs are sent."""


@dataclass(frozen=True)
class _Planned:
    claim: SubmitClaim
    kind: str
    dataset_id: str
    params: dict[str, Any]


@dataclass
class _Answers:
    """What each POST of a slice got: a task, an error, or a reason it was not sent."""

    tasks: dict[str, DatasetImportTask] = field(default_factory=dict)
    errors: dict[str, ApiError] = field(default_factory=dict)
    unsent: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit_jobs(
    job_ids: Sequence[str],
    *,
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    owner: str,
    now: Callable[[], datetime],
    policy: PollPolicy,
    lease_s: float,
    final_attempt: bool,
    post_deadline_s: float | None = None,
) -> list[SubmitResult]:
    """Submit each of ``job_ids`` once; one result per distinct job, in order. The caller decides on retries.

    A job handed back unsent ends the call PENDING with the outcome :attr:`SubmitOutcome.HANDED_BACK`.
    """
    distinct = list(dict.fromkeys(job_ids))
    results: list[SubmitResult] = []
    for start in range(0, len(distinct), MAX_BATCH):
        results += _submit_slice(
            distinct[start : start + MAX_BATCH],
            session_factory=session_factory,
            client=client,
            owner=owner,
            now=now,
            policy=policy,
            lease_s=lease_s,
            final_attempt=final_attempt,
            post_deadline_s=post_deadline_s if post_deadline_s is not None else lease_s / 2,
        )
    return results


def _submit_slice(
    job_ids: list[str],
    *,
    session_factory: sessionmaker[Session],
    client: DatasetsClient,
    owner: str,
    now: Callable[[], datetime],
    policy: PollPolicy,
    lease_s: float,
    final_attempt: bool,
    post_deadline_s: float,
) -> list[SubmitResult]:
    early, chains = _claim(session_factory, job_ids, owner=owner, now=now, lease_s=lease_s)
    claimed_at = time.monotonic()
    answers = _Answers()
    if chains:
        # One thread per dataset: a chain's POSTs follow each other, chains run side by side.
        with ThreadPoolExecutor(max_workers=len(chains), thread_name_prefix="submit-batch") as pool:
            for chain in chains:
                pool.submit(
                    _post_chain,
                    chain,
                    client=client,
                    answers=answers,
                    post_deadline_s=post_deadline_s,
                    must_end_by=claimed_at + lease_s * POST_LEASE_FRACTION,
                )
    recorded = _record(
        [planned for chain in chains for planned in chain],
        answers,
        session_factory=session_factory,
        now=now,
        policy=policy,
        final_attempt=final_attempt,
    )
    by_id = {result.job_id: result for result in [*early, *recorded]}
    return [by_id[job_id] for job_id in job_ids if job_id in by_id]


def _claim(
    session_factory: sessionmaker[Session],
    job_ids: list[str],
    *,
    owner: str,
    now: Callable[[], datetime],
    lease_s: float,
) -> tuple[list[SubmitResult], list[list[_Planned]]]:
    """Claim the slice's PENDING jobs in one transaction; the rest get their result at once.

    Returns those results and, per dataset, the claimed jobs in the order their POSTs must go.
    """
    early: list[SubmitResult] = []
    by_dataset: dict[str, list[str]] = {}
    with session_factory() as session:
        at = now()
        jobs = {
            job.id: job
            for job in session.scalars(
                select(ImportJob)
                .where(ImportJob.id.in_(job_ids))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        }
        for job_id in job_ids:
            early_result = before_claim(jobs.get(job_id), job_id, now=at)
            if early_result is not None:
                early.append(early_result)
            else:
                by_dataset.setdefault(jobs[job_id].dataset_id, []).append(job_id)
        session.flush()
        claimed: dict[str, ImportJob] = {}
        # Position p of every chain is claimed by one statement, its submit start p steps after the first.
        longest = max((len(chain) for chain in by_dataset.values()), default=0)
        for position in range(longest):
            wanted = [chain[position] for chain in by_dataset.values() if len(chain) > position]
            for job in begin_submits(
                session, wanted, owner=owner, now=at, lease_s=lease_s, start_offset=START_STEP * position
            ):
                claimed[job.id] = job
        chains: list[list[_Planned]] = []
        for chain_ids in by_dataset.values():
            chain: list[_Planned] = []
            for job_id in chain_ids:
                mine = claimed.get(job_id)
                if mine is None:  # taken meanwhile (not possible under the row locks, but never POST unclaimed)
                    early.append(SubmitResult(SubmitOutcome.SKIPPED, job_id, "job is no longer PENDING"))
                    continue
                claim = SubmitClaim(mine.id, owner, mine.version)
                chain.append(_Planned(claim, str(mine.kind), mine.dataset_id, dict(mine.params)))
            if chain:
                chains.append(chain)
        session.commit()
    return early, chains


def _post_chain(
    chain: list[_Planned],
    *,
    client: DatasetsClient,
    answers: _Answers,
    post_deadline_s: float,
    must_end_by: float,
) -> None:
    """POST one dataset's jobs in order; stop at the first answer that is not an acceptance, or out of time."""
    stopped: str | None = None
    for planned in chain:
        job_id = planned.claim.job_id
        if stopped is None and time.monotonic() + post_deadline_s > must_end_by:
            stopped = "not sent: its POST could not end in time within the lease of the batch's claim"
        if stopped is not None:
            with answers.lock:
                answers.unsent[job_id] = stopped
            continue
        try:
            task = call_with_deadline(
                partial(client.start_import, planned.dataset_id, planned.kind, planned.params),
                deadline_s=post_deadline_s,
                operation=f"start_import {planned.kind}",
                on_late=partial(log_late_answer, job_id),
            )
        except ApiError as exc:
            with answers.lock:
                answers.errors[job_id] = exc
            stopped = f"not sent: the submit before it on this dataset got no acceptance ({exc})"
            continue
        except Exception as exc:  # a bug must not leave the chain's other answers unrecorded
            log.exception("job %s: submit failed unexpectedly", job_id, extra={"job_id": job_id})
            with answers.lock:
                answers.unsent[job_id] = f"not sent: {type(exc).__name__}"
            stopped = f"not sent: the submit before it on this dataset failed ({type(exc).__name__})"
            continue
        with answers.lock:
            answers.tasks[job_id] = task


def _record(
    planned: list[_Planned],
    answers: _Answers,
    *,
    session_factory: sessionmaker[Session],
    now: Callable[[], datetime],
    policy: PollPolicy,
    final_attempt: bool,
) -> list[SubmitResult]:
    """Every answer of the slice in one transaction, each under its own claim check."""
    results: list[SubmitResult] = []
    accepted: list[tuple[SubmitClaim, DatasetImportTask, int]] = []
    with session_factory() as session:
        at = now()
        for item in planned:
            claim, job_id = item.claim, item.claim.job_id
            write: Writer
            if job_id in answers.tasks:
                task = answers.tasks[job_id]
                write, seen = accepted_writer(claim, task, policy), accepted_seen(task)
                accepted.append((claim, task, len(results)))
            elif job_id in answers.errors:
                exc = answers.errors[job_id]
                write, seen = failure_writer(claim, exc, final_attempt), failure_seen(exc)
            else:
                reason = answers.unsent.get(job_id, "not sent")
                write, seen = _handed_back_writer(claim, reason), reason
            results.append(write_answer(session, claim, write, at=at, seen=seen))
        session.commit()
    for claim, task, index in accepted:
        after_accepted(claim, task, results[index])
    return results


def _handed_back_writer(claim: SubmitClaim, reason: str) -> Writer:
    def write(job: ImportJob, at: datetime) -> SubmitResult:
        transitions.handed_back(job, now=at, reason=reason)
        return SubmitResult(SubmitOutcome.HANDED_BACK, claim.job_id, reason)

    return write
