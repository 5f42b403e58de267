"""The Celery tasks of an import job. Each is thin: it looks up the runtime, calls a plain function, and decides
on retry. Arguments are ids only: Flower shows arguments, and nothing secret or large belongs there.

- ``dsimport.submit(job_id)``: POST the import (see :mod:`jobs.submit`).
- ``dsimport.submit_batch(job_ids)``: POST several at once (see :mod:`jobs.submit_batch`); what the request stream
  sends for each batch it reads. A job it cannot finish (a retry, a wait) goes on as its own ``submit``.
- ``dsimport.poll_due()``: periodic; batch-polls every due job (see :mod:`jobs.poll_round`).
- ``dsimport.finalize(job_id)``: one short task per finished job, whose result names the job and its outcome;
  ``dsimport.finalize_batch(job_ids)`` for a poll round that ended many at once.
- ``dsimport.recover()``: periodic; re-sends lost PENDING jobs, resolves SUBMITTING ones left by a crash.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from jobs import metrics
from jobs.poll_loop import run_poll_rounds
from jobs.recover import recover as run_recovery
from jobs.runtime import Runtime, get_runtime
from jobs.skip_existing import check_before_submit, jobs_to_check
from jobs.submit import SubmitOutcome, SubmitResult, submit_job
from jobs.submit_batch import submit_jobs
from store.clock import LedgerClock
from store.jobs import get_job
from store.models import ImportJob
from tasks.names import FINALIZE, FINALIZE_BATCH, POLL_DUE, RECOVER, SUBMIT, SUBMIT_BATCH

log = logging.getLogger(__name__)


# Submit outcomes that mean the API call failed (for the API error counter of /metrics), and those that made one.
_SUBMIT_API_ERRORS = frozenset(
    {SubmitOutcome.REJECTED, SubmitOutcome.RETRY, SubmitOutcome.FAILED, SubmitOutcome.AMBIGUOUS}
)
_SUBMIT_API_CALLS = _SUBMIT_API_ERRORS | {SubmitOutcome.ACCEPTED, SubmitOutcome.SUPERSEDED}
# Submit outcomes where the job's claim was another's: the message found it no longer PENDING, or a late answer
# found it taken over (the lease conflicts of /metrics).
_SUBMIT_CONFLICTS = frozenset({SubmitOutcome.SKIPPED, SubmitOutcome.SUPERSEDED})


def utcnow() -> datetime:
    """The time the tasks stamp and schedule with: the ledger's (the database's) clock, read through this host's.

    Due times and submit starts written by one worker are compared by others; on the database's clock they mean
    the same to every worker, whatever each host's own clock says (see :mod:`store.clock`).
    """
    return _ledger_clock(get_runtime())()


def process_now(offset_s: float = 0.0) -> datetime:
    """This host's own clock, shifted by ``offset_s`` (``DSIMPORT_CLOCK_OFFSET_S``: tests play a skewed host)."""
    return datetime.now(UTC) + timedelta(seconds=offset_s)


_clock_lock = threading.Lock()
_clock: tuple[Runtime, LedgerClock] | None = None


def _ledger_clock(runtime: Runtime) -> LedgerClock:
    # One clock per runtime (and so per process: the runtime is rebuilt after a fork), keeping its measured offset.
    global _clock
    with _clock_lock:
        if _clock is None or _clock[0] is not runtime:
            offset_s = runtime.tuning.clock_offset_s
            _clock = (runtime, LedgerClock(runtime.session_factory, local=lambda: process_now(offset_s)))
        return _clock[1]


def worker_identity() -> str:
    """Who holds a lease: host and process, so a lease left by a dead process is recognisable."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_submit(job_id: str) -> None:
    submit.apply_async(args=[job_id])


FINALIZE_ONE_BY_ONE_UP_TO = 20
"""A poll round that ends more jobs than this finalizes them in batches (``dsimport.finalize_batch``)."""
FINALIZE_BATCH_SIZE = 500


def send_finalize(finished: list[tuple[str, str]]) -> None:
    """One ``finalize`` per finished job, so Flower shows each; a burst goes in batches instead.

    At 10,000 imports in flight one worker process ends hundreds of jobs a second, and a task per job (a few
    milliseconds of Celery each) took the process's time from the poll ticks: detection lag grew with it.
    """
    if len(finished) <= FINALIZE_ONE_BY_ONE_UP_TO:
        for job_id, _status in finished:
            finalize.apply_async(args=[job_id])
        return
    job_ids = [job_id for job_id, _status in finished]
    for start in range(0, len(job_ids), FINALIZE_BATCH_SIZE):
        finalize_batch.apply_async(args=[job_ids[start : start + FINALIZE_BATCH_SIZE]])


@shared_task(name=SUBMIT, bind=True, acks_late=True, max_retries=None)
def submit(self: Task, job_id: str) -> dict[str, Any]:
    runtime = get_runtime()
    tuning = runtime.tuning
    final_attempt = self.request.retries >= tuning.submit_max_retries
    with runtime.client_factory() as client:
        result = check_before_submit(
            job_id,
            session_factory=runtime.session_factory,
            client=client,
            now=utcnow,
            refresh_after_s=tuning.skip_existing_refresh_s,
            final_attempt=final_attempt,
        ) or submit_job(
            job_id,
            session_factory=runtime.session_factory,
            client=client,
            owner=worker_identity(),
            now=utcnow,
            policy=runtime.poll_policy,
            lease_s=tuning.lease_s,
            final_attempt=final_attempt,
            post_deadline_s=tuning.post_deadline_s,
        )
    if result.outcome == SubmitOutcome.DEFERRED:
        # A fresh message, not a retry: waiting out the API's Retry-After is not a failed attempt.
        submit.apply_async(args=[job_id], countdown=result.retry_after_s)
        return {"job_id": job_id, "outcome": str(result.outcome), "detail": result.detail}
    _count_submit(result)
    if result.outcome == SubmitOutcome.RETRY:
        countdown = _retry_countdown(result, retries=self.request.retries)
        raise self.retry(countdown=countdown)
    if result.finished:
        finalize.apply_async(args=[job_id])
    return {"job_id": job_id, "outcome": str(result.outcome), "detail": result.detail}


def _count_submit(result: SubmitResult) -> None:
    """The /metrics counters a submit outcome adds to: API calls and errors, lease conflicts."""
    if result.outcome in _SUBMIT_API_CALLS:
        metrics.record_api_call("submit", error=result.outcome in _SUBMIT_API_ERRORS)
    if result.outcome in _SUBMIT_CONFLICTS:
        metrics.record_lease_conflicts("submit")


def _retry_countdown(result: SubmitResult, *, retries: int) -> float:
    """Seconds before the next attempt: exponential backoff, jittered, never before the API's Retry-After."""
    backoff = get_runtime().tuning.submit_retry_backoff_s * (2**retries)
    countdown = float(max(result.retry_after_s or 0.0, backoff * random.uniform(0.5, 1.0)))
    log.info(
        "job %s: submit retry %d in %.1f s",
        result.job_id,
        retries + 1,
        countdown,
        extra={"job_id": result.job_id},
    )
    return countdown


def _malformed_ids(task: str, job_ids: object) -> dict[str, Any] | None:
    """A batch task's result when its argument is not a list of job ids (logged); None when it is.

    Only our own senders put messages on these tasks; a malformed one is reported, never crashes the worker.
    """
    if isinstance(job_ids, list) and all(isinstance(job_id, str) for job_id in job_ids):
        return None
    log.error("%s: expected a list of job ids, got %s", task, type(job_ids).__name__)
    return {"jobs": 0, "outcomes": {"malformed": 1}}


@shared_task(name=SUBMIT_BATCH, bind=True, acks_late=True)
def submit_batch(self: Task, job_ids: list[str]) -> dict[str, Any]:
    malformed = _malformed_ids("submit_batch", job_ids)
    if malformed is not None:
        return malformed
    runtime = get_runtime()
    tuning = runtime.tuning
    checked: list[SubmitResult] = []
    with runtime.client_factory() as client:
        for job_id in jobs_to_check(runtime.session_factory, job_ids):
            early = check_before_submit(
                job_id,
                session_factory=runtime.session_factory,
                client=client,
                now=utcnow,
                refresh_after_s=tuning.skip_existing_refresh_s,
                final_attempt=tuning.submit_max_retries <= 0,
            )
            if early is not None:
                checked.append(early)
        done = {result.job_id for result in checked}
        results = checked + submit_jobs(
            [job_id for job_id in job_ids if job_id not in done],
            session_factory=runtime.session_factory,
            client=client,
            owner=worker_identity(),
            now=utcnow,
            policy=runtime.poll_policy,
            lease_s=tuning.lease_s,
            final_attempt=tuning.submit_max_retries <= 0,
            post_deadline_s=tuning.post_deadline_s,
        )
    outcomes: dict[str, int] = {}
    handed_back: list[str] = []
    for result in results:
        outcomes[str(result.outcome)] = outcomes.get(str(result.outcome), 0) + 1
        if result.outcome == SubmitOutcome.HANDED_BACK:
            handed_back.append(result.job_id)
        else:
            _follow_up(result)
    if handed_back:
        # Sent again after the same pause as a failed attempt: what stopped their chain was an API answer.
        submit_batch.apply_async(args=[handed_back], countdown=tuning.submit_retry_backoff_s)
    return {"jobs": len(results), "outcomes": outcomes}


def _follow_up(result: SubmitResult) -> None:
    """What a batch leaves to do for one job: count its API call, send its retry or wait, or finalize it."""
    if result.outcome == SubmitOutcome.DEFERRED:
        submit.apply_async(args=[result.job_id], countdown=result.retry_after_s)
        return
    _count_submit(result)
    if result.outcome == SubmitOutcome.RETRY:
        # Its next attempt is a plain submit task that counts this one as its first retry.
        submit.apply_async(args=[result.job_id], countdown=_retry_countdown(result, retries=0), retries=1)
    elif result.finished:
        finalize.apply_async(args=[result.job_id])


@shared_task(name=POLL_DUE, ignore_result=True)
def poll_due() -> dict[str, Any]:
    runtime = get_runtime()
    started = time.monotonic()
    report = run_poll_rounds(runtime, owner=worker_identity(), now=utcnow, on_finished=send_finalize)
    metrics.record_poll(
        duration_s=time.monotonic() - started,
        claimed=report.claimed,
        api_calls=report.api_calls,
        errors=report.errors,
    )
    return {"claimed": report.claimed, "api_calls": report.api_calls, "finished": len(report.finished)}


@shared_task(name=FINALIZE, acks_late=True)
def finalize(job_id: str) -> dict[str, Any]:
    """Close the books on a finished job; the result is what Flower shows for it."""
    runtime = get_runtime()
    with runtime.session_factory() as session:
        job = get_job(session, job_id)
        summary = _summary(job_id, job)
    log.info("job %s finished: %s", job_id, summary["outcome"], extra={"job_id": job_id})
    return summary


@shared_task(name=FINALIZE_BATCH, acks_late=True)
def finalize_batch(job_ids: list[str]) -> dict[str, Any]:
    """``finalize`` for many jobs ended by one poll round; the result counts outcomes and names each job's."""
    malformed = _malformed_ids("finalize_batch", job_ids)
    if malformed is not None:
        return malformed
    runtime = get_runtime()
    with runtime.session_factory() as session:
        found = {job.id: job for job in session.scalars(select(ImportJob).where(ImportJob.id.in_(job_ids)))}
        summaries = [_summary(job_id, found.get(job_id)) for job_id in job_ids]
    outcomes: dict[str, int] = {}
    for summary in summaries:
        outcomes[summary["outcome"]] = outcomes.get(summary["outcome"], 0) + 1
        log.info("job %s finished: %s", summary["job_id"], summary["outcome"], extra={"job_id": summary["job_id"]})
    return {
        "jobs": len(summaries),
        "outcomes": outcomes,
        "by_job": {summary["job_id"]: summary["outcome"] for summary in summaries},
    }


def _summary(job_id: str, job: ImportJob | None) -> dict[str, Any]:
    if job is None:
        return {"job_id": job_id, "outcome": "missing"}
    return {
        "job_id": job.id,
        "kind": str(job.kind),
        "dataset_id": job.dataset_id,
        "outcome": str(job.status),
        "remote_task_id": job.remote_task_id,
        "imported": job.imported_count,
        "message": job.message,
    }


@shared_task(name=RECOVER, ignore_result=True)
def recover() -> dict[str, Any]:
    runtime = get_runtime()
    report = run_recovery(runtime, owner=worker_identity(), now=utcnow, resend=send_submit)
    send_finalize(report.finished)
    return {"resent": len(report.resent), "adopted": len(report.adopted), "reset": len(report.reset)}
