"""Typed client for Mistral's Observability Datasets API (beta) and the sources imports read from.

``DatasetsClient`` (blocking) and ``AsyncDatasetsClient`` (asyncio) have the same methods; both send requests
described once in :mod:`api_client.operations`, :mod:`api_client.record_operations` and
:mod:`api_client.source_operations`, and raise only :class:`ApiError` subclasses.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

# The names below are loaded on first use, all at once (PEP 562): importing one light module of the package (the
# command line checks a dataset reference with api_client.dataset_refs) then loads neither httpx nor the models.
if _typing.TYPE_CHECKING:
    from .async_client import AsyncDatasetsClient
    from .client import DatasetsClient
    from .dataset_refs import is_dataset_uuid, parse_dataset_ref
    from .deadline import DeadlineExceededError, call_with_deadline
    from .errors import (
        ApiError,
        AuthenticationError,
        ClientError,
        ConflictError,
        InvalidRequestError,
        NotFoundError,
        RateLimitedError,
        RouteNotFoundError,
        ServerError,
        TransportError,
        UnexpectedResponseError,
        ValidationError,
    )
    from .filters import time_window_filter
    from .models import (
        TERMINAL_TASK_STATUSES,
        ConversationPayload,
        CreateRecordSource,
        Dataset,
        DatasetImportResult,
        DatasetImportTask,
        DatasetPreview,
        DatasetRecord,
        ExportDatasetResponse,
        Page,
        RecordPayload,
        RecordSource,
        RecordSources,
        TaskStatus,
        TaskStatuses,
        is_terminal,
    )
    from .operations import IMPORT_BODY_FIELDS, IMPORT_KINDS, ImportKind
    from .record_models import (
        JudgeClassificationOption,
        JudgeClassificationOutput,
        JudgeDefinition,
        JudgeOutput,
        JudgeOutputSpec,
        JudgeRegressionOutput,
    )
    from .retry import RetryPolicy
    from .source_models import (
        Campaign,
        ChatCompletionEvent,
        ChatCompletionEventPreview,
        ChatTranscriptionEvent,
        Conversation,
        ConversationMessages,
        FileObject,
        MessageEntry,
        MessageInputEntry,
        MessageOutputEntry,
        Span,
        SpanFeed,
    )
    from .spec import UNSET, Unset

__all__ = [
    "IMPORT_BODY_FIELDS",
    "IMPORT_KINDS",
    "TERMINAL_TASK_STATUSES",
    "UNSET",
    "ApiError",
    "AsyncDatasetsClient",
    "AuthenticationError",
    "Campaign",
    "ChatCompletionEvent",
    "ChatCompletionEventPreview",
    "ChatTranscriptionEvent",
    "ClientError",
    "ConflictError",
    "Conversation",
    "ConversationMessages",
    "ConversationPayload",
    "CreateRecordSource",
    "Dataset",
    "DatasetImportResult",
    "DatasetImportTask",
    "DatasetPreview",
    "DatasetRecord",
    "DatasetsClient",
    "DeadlineExceededError",
    "ExportDatasetResponse",
    "FileObject",
    "ImportKind",
    "InvalidRequestError",
    "JudgeClassificationOption",
    "JudgeClassificationOutput",
    "JudgeDefinition",
    "JudgeOutput",
    "JudgeOutputSpec",
    "JudgeRegressionOutput",
    "MessageEntry",
    "MessageInputEntry",
    "MessageOutputEntry",
    "NotFoundError",
    "Page",
    "RateLimitedError",
    "RecordPayload",
    "RecordSource",
    "RecordSources",
    "RetryPolicy",
    "RouteNotFoundError",
    "ServerError",
    "Span",
    "SpanFeed",
    "TaskStatus",
    "TaskStatuses",
    "TransportError",
    "UnexpectedResponseError",
    "Unset",
    "ValidationError",
    "call_with_deadline",
    "is_dataset_uuid",
    "is_terminal",
    "parse_dataset_ref",
    "time_window_filter",
]

_FRONT_PAGE = (
    "async_client", "client", "dataset_refs", "deadline", "errors", "filters", "models", "operations",
    "record_models", "retry", "source_models", "spec",
)  # fmt: skip


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    modules = [_importlib.import_module(f"{__name__}.{module}") for module in _FRONT_PAGE]
    for public in __all__:
        globals()[public] = next(getattr(module, public) for module in modules if hasattr(module, public))
    return globals()[name]
