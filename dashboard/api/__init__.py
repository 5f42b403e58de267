"""The HTTP API of the service, served by the jobs page under ``/api/v1`` with bearer tokens of its own.

Routes: ``POST /imports``, ``GET /jobs``, ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel``, ``GET|POST /schedules``,
``DELETE /schedules/{name}``, ``POST /schedules/{name}/pause|resume|run-now``, ``GET /openapi.json`` (the
document that describes them all). Unlike the page, the API writes to the ledger.
"""

from .app import API_PREFIX, ApiOptions, build_api
from .openapi import openapi_document
from .sender import ApiSender

__all__ = ["API_PREFIX", "ApiOptions", "ApiSender", "build_api", "openapi_document"]
