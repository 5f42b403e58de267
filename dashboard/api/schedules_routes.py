"""The schedules part of the API: list, create (the schedules file's keys), pause, resume, delete, run now.

Schedules created here are stored as the command line's (``source`` ``cli``): the table is their truth, and a
running beat picks a change up within ``DSIMPORT_SCHEDULES_REFRESH_S``.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from store.models import Schedule, ScheduleSource, TokenScope
from store.schedule_runs import jobs_of_runs, last_run
from store.schedules import (
    FileScheduleError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    create_schedule,
    list_schedules,
    remove_schedule,
    require_schedule,
    set_paused,
)
from triggers.schedules.fire_times import fire_time_iso
from triggers.schedules.specs import InvalidSchedule, build_definition
from triggers.schedules.views import schedule_to_dict

from .endpoint import ApiContext, Call, answer, endpoint, json_body
from .errors import ApiProblem
from .models import RunNowAnswer, ScheduleCreate, ScheduleList, ScheduleOut

__all__ = ["schedule_routes"]


class ScheduleHandlers:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _out(self, session: Session, schedule: Schedule) -> ScheduleOut:
        latest = last_run(session, schedule.id)
        jobs = jobs_of_runs(session, [latest] if latest else [])
        return ScheduleOut.model_validate(schedule_to_dict(schedule, latest, jobs, now=self.ctx.now()))

    def list(self, call: Call) -> Response:
        with self.ctx.read_sessions() as session:
            body = ScheduleList(schedules=[self._out(session, schedule) for schedule in list_schedules(session)])
        return answer(body)

    def create(self, call: Call) -> Response:
        try:
            wanted = ScheduleCreate.model_validate(json_body(call))
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
                for error in exc.errors(include_url=False, include_input=False)
            ]
            raise ApiProblem(
                422, "; ".join(f"{d['field']}: {d['message']}" for d in details), details=details
            ) from None
        if "snapshot" in (wanted.model_extra or {}):
            # A caller of the API does not choose where the service writes files.
            raise ApiProblem(
                422, "snapshot is set on the command line (--snapshot) or in the schedules file, not over the API"
            )
        try:
            definition = build_definition(
                wanted.name,
                kind=wanted.kind,
                dataset=wanted.dataset,
                cron=wanted.cron,
                every=wanted.every,
                options=wanted.model_extra,
                paused=wanted.paused,
            )
        except InvalidSchedule as exc:
            raise ApiProblem(422, str(exc)) from None
        with self.ctx.write_sessions() as session:
            try:
                schedule = create_schedule(session, definition, source=ScheduleSource.CLI, now=self.ctx.now())
            except ScheduleExistsError as exc:
                raise ApiProblem(409, str(exc)) from None
            session.commit()
            body = self._out(session, schedule)
        return answer(body, 201, headers={"Location": f"{call.request.url.path}/{body.name}"})

    def pause(self, call: Call) -> Response:
        return self._set_paused(call, True)

    def resume(self, call: Call) -> Response:
        return self._set_paused(call, False)

    def _set_paused(self, call: Call, paused: bool) -> Response:
        name = call.path("name")
        with self.ctx.write_sessions() as session:
            try:
                schedule = set_paused(session, name, paused, now=self.ctx.now())
            except ScheduleNotFoundError as exc:
                raise ApiProblem(404, str(exc)) from None
            session.commit()
            body = self._out(session, schedule)
        return answer(body)

    def delete(self, call: Call) -> Response:
        name = call.path("name")
        forget = call.request.query_params.get("forget", "false")
        if forget not in ("true", "false"):
            raise ApiProblem(422, "forget must be true or false")
        with self.ctx.write_sessions() as session:
            try:
                remove_schedule(session, name, now=self.ctx.now(), forget=forget == "true")
            except ScheduleNotFoundError as exc:
                raise ApiProblem(404, str(exc)) from None
            except FileScheduleError as exc:
                raise ApiProblem(409, str(exc)) from None
            session.commit()
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    def run_now(self, call: Call) -> Response:
        name = call.path("name")
        with self.ctx.read_sessions() as session:
            try:
                schedule = require_schedule(session, name)
            except ScheduleNotFoundError as exc:
                raise ApiProblem(404, str(exc)) from None
            if schedule.finished_at is not None:
                raise ApiProblem(409, f"schedule {name} is finished: {schedule.finished_reason}")
        if self.ctx.sender is None:
            raise ApiProblem(503, "this server was started without a broker: run-now cannot reach a worker")
        fire_time = fire_time_iso(self.ctx.now())
        try:
            self.ctx.sender.fire_schedule(name, fire_time)
        except Exception as exc:  # the broker's client raises its own errors when it cannot be reached
            raise ApiProblem(503, f"could not send the fire of {name}: {exc}") from None
        return answer(RunNowAnswer(name=name, fire_time=fire_time), 202)


def schedule_routes(ctx: ApiContext) -> list[Route]:
    handlers = ScheduleHandlers(ctx)
    read, write = TokenScope.READ, TokenScope.WRITE
    return [
        Route("/schedules", endpoint(ctx, read, handlers.list), methods=["GET"], name="list_schedules"),
        Route("/schedules", endpoint(ctx, write, handlers.create), methods=["POST"], name="create_schedule"),
        Route("/schedules/{name}", endpoint(ctx, write, handlers.delete), methods=["DELETE"], name="delete_schedule"),
        Route("/schedules/{name}/pause", endpoint(ctx, write, handlers.pause), methods=["POST"], name="pause"),
        Route("/schedules/{name}/resume", endpoint(ctx, write, handlers.resume), methods=["POST"], name="resume"),
        Route("/schedules/{name}/run-now", endpoint(ctx, write, handlers.run_now), methods=["POST"], name="run_now"),
    ]
