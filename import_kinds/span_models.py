"""The pydantic models of a spans import's body: a span reference, and the mapping contract with its parts.

Apart from :mod:`import_kinds.spans` so that reading the registry (the command line's options and help) does not
load pydantic: the shapes import them when a value is checked or the message model is built.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .fields import MAX_IDS, BodyError
from .message_types import SourceId

__all__ = ["MappingContract", "SpanMapping", "SpanReference", "SpanReferences", "SpanSource", "one_line_error"]

SpanNamespace = Literal["span_attributes", "resource_attributes"]
_TEXT = Annotated[str, Field(min_length=1, max_length=256)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpanReference(_Part):
    """One telemetry span, by the ids of its trace and of itself."""

    trace_id: SourceId
    span_id: SourceId


SpanReferences = Annotated[list[SpanReference], Field(min_length=1, max_length=MAX_IDS)]


class SpanSource(_Part):
    """Where a record field's value comes from: one key of one of the span's attribute maps."""

    namespace: SpanNamespace
    key: _TEXT = Field(description="The attribute's key, literally: dots do not denote a nested path.")


class SpanMapping(_Part):
    """One field of the record's payload, and the span attribute it is taken from."""

    target_field: _TEXT = Field(description="Top-level key of the record's payload.")
    source_field: SpanSource


class MappingContract(_Part):
    """How every span of the import becomes a record's payload (version 1 of the API's contract)."""

    mappings: Annotated[list[SpanMapping], Field(min_length=1)]
    version: Literal[1] = 1


def one_line_error(field: str, exc: ValidationError) -> BodyError:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    return BodyError(f"{field}{where}: {error['msg']}")
