"""Celery tasks of the import service and the plain functions behind them."""

from .imports import FINALIZE, POLL_DUE, RECOVER, SUBMIT, finalize, poll_due, recover, submit
from .requests import InvalidImportRequest, request_import, validate_params
from .runtime import JobTuning, Runtime, get_runtime, install

__all__ = [
    "FINALIZE",
    "POLL_DUE",
    "RECOVER",
    "SUBMIT",
    "InvalidImportRequest",
    "JobTuning",
    "Runtime",
    "finalize",
    "get_runtime",
    "install",
    "poll_due",
    "recover",
    "request_import",
    "submit",
    "validate_params",
]
