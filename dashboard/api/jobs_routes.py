"""The jobs part of the API: request an import, list jobs, read one with its history, cancel one."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import Route

from jobs.request_import import InvalidImportRequest, validate_params
from store.errors import JobAlreadyFinishedError, JobNotFoundError
from store.jobs import cancel_job, get_job, job_events
from store.models import ImportJob, ImportKind, TokenScope
from triggers.messages.intake import Outcome
from triggers.messages.message_model import ImportRequestMessage, InvalidMessage, is_message_id, parse_message

from .endpoint import ApiContext, Call, answer, endpoint
from .errors import ApiProblem
from .job_pages import JobFilters, read_page
from .models import ImportAnswer, JobDetailOut, JobOut, JobPage

__all__ = ["job_routes"]


def _job_id(call: Call) -> str:
    job_id = call.path("job_id")
    # Job ids are UUIDs: anything else names no job, and must not reach the database (PostgreSQL refuses NUL).
    try:
        if str(uuid.UUID(job_id)) == job_id:
            return job_id
    except ValueError:
        pass
    raise ApiProblem(404, f"no job {job_id!r}")


def _same_request(job: ImportJob, message: ImportRequestMessage) -> bool:
    kind = ImportKind(message.kind)
    # A job cut by --skip-existing keeps what was asked beside what it sends.
    asked_kind, asked_params = job.kind, job.params
    if job.original_request is not None:
        asked_kind, asked_params = ImportKind(job.original_request["kind"]), job.original_request["params"]
    return (
        asked_kind == kind
        and job.dataset_id == str(message.dataset_id)
        and asked_params == validate_params(kind, message.params())
        and job.skip_existing == message.skip_existing
    )


class JobHandlers:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def create_import(self, call: Call) -> Response:
        key = call.request.headers.get("idempotency-key")
        if key is not None and not is_message_id(key):
            raise ApiProblem(422, "the Idempotency-Key header must be 1-200 printable ASCII characters, no spaces")
        try:
            # The same reading as a queue message's, so both accept and refuse the same requests. A refused one
            # is answered 422 instead of becoming a dead letter: the caller is there to read the reason and fix
            # the request, while a stream's producer has gone and only a dead letter keeps its message.
            message = parse_message(call.body, max_bytes=self.ctx.max_body_bytes, default_id=key)
        except InvalidMessage as exc:
            missing_id = "id: Field required" in exc.reason
            hint = " (name the request with an Idempotency-Key header or its id)" if missing_id else ""
            raise ApiProblem(422, exc.reason + hint) from None
        if key is not None and message.id != key:
            raise ApiProblem(422, f"the Idempotency-Key header ({key!r}) and the body's id ({message.id!r}) differ")
        try:
            result = self.ctx.intake.create(message, origin=f"api:{call.caller.name}")
        except InvalidImportRequest as exc:
            raise ApiProblem(422, str(exc)) from None
        assert result.job_id is not None
        with self.ctx.read_sessions() as session:
            job = get_job(session, result.job_id)
            assert job is not None
            if result.outcome == Outcome.DUPLICATE and not _same_request(job, message):
                # The key names a request already made with other content: which one the caller meant is a guess.
                raise ApiProblem(
                    409,
                    f"idempotency key {message.id!r} was used for a different request (job {job.id})",
                    details=[{"job_id": job.id}],
                )
            body = ImportAnswer(created=result.outcome == Outcome.CREATED, job=JobOut.of(job))
        status = 202 if body.created else 200
        return answer(body, status, headers={"Location": f"{call.request.url.path.rsplit('/', 1)[0]}/jobs/{job.id}"})

    def list_jobs(self, call: Call) -> Response:
        query = call.request.query_params
        filters = JobFilters.from_query({name: query.getlist(name) for name in query})
        with self.ctx.read_sessions() as session:
            jobs, cursor = read_page(session, filters)
            page = JobPage(jobs=[JobOut.of(job) for job in jobs], next_cursor=cursor)
        return answer(page)

    def get_job(self, call: Call) -> Response:
        job_id = _job_id(call)
        with self.ctx.read_sessions() as session:
            job = get_job(session, job_id)
            if job is None:
                raise ApiProblem(404, f"no job {job_id}")
            detail = JobDetailOut.with_events(job, job_events(session, job_id))
        return answer(detail)

    def cancel(self, call: Call) -> Response:
        job_id = _job_id(call)
        with self.ctx.write_sessions() as session:
            try:
                job = cancel_job(session, job_id, now=self.ctx.now(), message=f"cancelled by api:{call.caller.name}")
            except JobNotFoundError:
                raise ApiProblem(404, f"no job {job_id}") from None
            except JobAlreadyFinishedError as exc:
                raise ApiProblem(
                    409, f"job {job_id} has already ended ({exc.old})", details=[{"status": str(exc.old)}]
                ) from None
            session.commit()
            body = JobOut.of(job)
        return answer(body)


def job_routes(ctx: ApiContext) -> list[Route]:
    handlers = JobHandlers(ctx)
    read, write = TokenScope.READ, TokenScope.WRITE
    return [
        Route("/imports", endpoint(ctx, write, handlers.create_import), methods=["POST"], name="create_import"),
        Route("/jobs", endpoint(ctx, read, handlers.list_jobs), methods=["GET"], name="list_jobs"),
        Route("/jobs/{job_id}", endpoint(ctx, read, handlers.get_job), methods=["GET"], name="get_job"),
        Route("/jobs/{job_id}/cancel", endpoint(ctx, write, handlers.cancel), methods=["POST"], name="cancel_job"),
    ]
