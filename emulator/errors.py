"""Error answers, in the body shapes each API family uses.

``ApiProblem`` is the single exception route handlers raise; the operation wrapper turns it into
a response. Observability routes answer ``{"detail": {"message", "error_code"}}`` for every 4xx
(422 included, because the SDK only maps that shape to ``ObservabilityError``). Files and
Conversations answer FastAPI-like bodies: ``{"detail": "..."}``, or the list form for 422.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AUTH_UNAUTHORIZED",
    "CAMPAIGN_NOT_FOUND",
    "CAMPAIGN_NO_MATCHING_EVENTS",
    "CONVERSATION_NOT_FOUND",
    "DATASET_NOT_FOUND",
    "DATASET_RECORD_FORMAT_ERROR",
    "DATASET_RECORD_NOT_FOUND",
    "DATASET_TASK_NOT_FOUND",
    "EVENT_NOT_FOUND",
    "FILE_NOT_FOUND",
    "SEARCH_BAD_REQUEST",
    "TRACES_FILTER_QUERY_PARSE_ERROR",
    "UNKNOWN_ERROR",
    "VALIDATION_ERROR",
    "ApiProblem",
    "http_validation_error",
    "observability_error",
    "plain_error",
    "route_not_found",
    "validation_error",
]

VALIDATION_ERROR = "VALIDATION_ERROR"
UNKNOWN_ERROR = "UNKNOWN_ERROR"
AUTH_UNAUTHORIZED = "AUTH_UNAUTHORIZED"
DATASET_NOT_FOUND = "DATASET_NOT_FOUND"
DATASET_TASK_NOT_FOUND = "DATASET_TASK_NOT_FOUND"
DATASET_RECORD_NOT_FOUND = "DATASET_RECORD_NOT_FOUND"
DATASET_RECORD_FORMAT_ERROR = "DATASET_RECORD_FORMAT_ERROR"
CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"
CAMPAIGN_NO_MATCHING_EVENTS = "CAMPAIGN_NO_MATCHING_EVENTS"
SEARCH_BAD_REQUEST = "SEARCH_BAD_REQUEST"
# 3.x: a spans ``search_expression`` the server cannot parse.
TRACES_FILTER_QUERY_PARSE_ERROR = "TRACES_FILTER_QUERY_PARSE_ERROR"
# The 2.5.0 code list has no code for a missing chat-completion event; the search one is the nearest.
EVENT_NOT_FOUND = "SEARCH_NOT_FOUND"
# Not in the 2.5.0 code list (the enum is open); used when an import names a missing file or
# conversation, which the Observability service learns from another API.
FILE_NOT_FOUND = "FILE_NOT_FOUND"
CONVERSATION_NOT_FOUND = "CONVERSATION_NOT_FOUND"


class ApiProblem(Exception):
    """Raised by a handler to answer with an error status, a JSON body and optional headers."""

    def __init__(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def observability_error(status: int, error_code: str | None, message: str) -> ApiProblem:
    return ApiProblem(status, {"detail": {"message": message, "error_code": error_code}})


def validation_error(message: str) -> ApiProblem:
    return observability_error(422, VALIDATION_ERROR, message)


def plain_error(status: int, message: str) -> ApiProblem:
    return ApiProblem(status, {"detail": message})


def http_validation_error(loc: list[str | int], message: str, kind: str = "value_error") -> ApiProblem:
    return ApiProblem(422, {"detail": [{"loc": loc, "msg": message, "type": kind}]})


def route_not_found(method: str, path: str) -> ApiProblem:
    """What a route the API does not have answers, in the Observability shape so every SDK can parse it.

    ``error_code`` is null: no code of the API names a missing route, and null keeps it apart from a missing
    object (``DATASET_NOT_FOUND`` ...), which is also a 404.
    """
    return observability_error(404, None, f"Not Found: no route {method} {path}")
