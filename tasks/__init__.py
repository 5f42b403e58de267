"""Celery tasks of the import service and the plain functions behind them."""

from .imports import FINALIZE, POLL_DUE, RECOVER, SUBMIT, finalize, poll_due, recover, submit
from .message_intake import Intake, IntakeResult, Outcome
from .message_tasks import REQUEST_IMPORT, request_import_task
from .messages import ImportRequestMessage, InvalidMessage, json_schema, parse_message
from .requests import InvalidImportRequest, request_import, validate_params
from .runtime import JobTuning, Runtime, get_runtime, install
from .schedule_firing import FireContext, FireOutcome, FireReport, fire
from .schedule_specs import InvalidSchedule, build_definition
from .schedules import FIRE_SCHEDULE, fire_schedule

__all__ = [
    "FINALIZE",
    "FIRE_SCHEDULE",
    "POLL_DUE",
    "RECOVER",
    "REQUEST_IMPORT",
    "SUBMIT",
    "FireContext",
    "FireOutcome",
    "FireReport",
    "ImportRequestMessage",
    "Intake",
    "IntakeResult",
    "InvalidImportRequest",
    "InvalidMessage",
    "InvalidSchedule",
    "JobTuning",
    "Outcome",
    "Runtime",
    "build_definition",
    "finalize",
    "fire",
    "fire_schedule",
    "get_runtime",
    "install",
    "json_schema",
    "parse_message",
    "poll_due",
    "recover",
    "request_import",
    "request_import_task",
    "submit",
    "validate_params",
]
