"""The body of a spans import (SDK 3.x ``import_from_spans``): the spans to read and the mapping contract that
turns each span into a record's payload.

``POST /v1/observability/datasets/{dataset_id}/imports/from-spans``::

    {"span_references": [{"trace_id": "…", "span_id": "…"}],
     "mapping_contract": {"mappings": [{"target_field": "input",
                                        "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}],
                          "version": 1}}

The API skips references it cannot find and attaches each span's trace and span ids to its record's properties;
a mapping whose attribute is missing or blank leaves its target out. On the command line a reference is written
``TRACE_ID:SPAN_ID`` and a mapping ``TARGET=NAMESPACE:KEY`` (``input=span_attributes:gen_ai.prompt``); the key is
taken literally, dots and colons included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .fields import BodyError, Shape, as_list, short

__all__ = ["MAPPING_CONTRACT", "SPAN_REFERENCES"]

# The pydantic models (import_kinds.span_models) are imported where a value is checked, not here: the command line
# reads the registry, these shapes included, without loading pydantic.


class _SpanReferences(Shape):
    many = True
    repeatable = True
    description = "a list of span references"

    def message_type(self) -> Any:
        from .span_models import SpanReferences

        return SpanReferences

    def check(self, field: str, value: Any) -> list[dict[str, str]]:
        from pydantic import ValidationError

        from .span_models import SpanReference, one_line_error

        references = []
        for index, item in enumerate(as_list(field, value)):
            try:
                reference = item if isinstance(item, SpanReference) else SpanReference.model_validate(item)
            except ValidationError as exc:
                raise one_line_error(f"{field}[{index}]", exc) from None
            references.append(reference.model_dump())
        return references

    def from_cli(self, value: Any) -> list[dict[str, str]]:
        return [self._parse(text) for text in value]

    def from_schedule(self, value: Any, what: str) -> list[dict[str, str]]:
        if isinstance(value, str | Mapping):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise BodyError(f"{what} must be a non-empty list of TRACE_ID:SPAN_ID")
        parsed = [self._parse(item) if isinstance(item, str) else item for item in value]
        # The same span twice in a schedule is one item.
        unique: dict[str, dict[str, str]] = {}
        for reference in self.check(what, parsed):
            unique.setdefault(self.item_key(reference), reference)
        return list(unique.values())

    def item_key(self, item: Any) -> str:
        trace_id, span_id = item["trace_id"], item["span_id"]
        key = f"{trace_id}:{span_id}"
        # OpenTelemetry ids (32 and 16 hex digits) fit as they are; anything longer or ambiguous is hashed.
        if len(key) > 64 or ":" in trace_id:
            return "sha256:" + hashlib.sha256(f"{trace_id}\0{span_id}".encode()).hexdigest()[:57]
        return key

    @staticmethod
    def _parse(text: str) -> dict[str, str]:
        trace_id, colon, span_id = text.strip().partition(":")
        if not colon or not trace_id or not span_id:
            raise BodyError(f"expected TRACE_ID:SPAN_ID, got {short(text)}")
        return {"trace_id": trace_id, "span_id": span_id}


class _MappingContract(Shape):
    repeatable = True
    description = "a mapping contract"

    def message_type(self) -> Any:
        from .span_models import MappingContract

        return MappingContract

    def check(self, field: str, value: Any) -> dict[str, Any]:
        from pydantic import ValidationError

        from .span_models import MappingContract, one_line_error

        try:
            contract = value if isinstance(value, MappingContract) else MappingContract.model_validate(value)
        except ValidationError as exc:
            raise one_line_error(field, exc) from None
        return contract.model_dump(mode="json")

    def from_cli(self, value: Any) -> dict[str, Any]:
        return {"mappings": [self._parse(text) for text in value], "version": 1}

    def from_schedule(self, value: Any, what: str) -> dict[str, Any]:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            if not all(isinstance(item, str) for item in value):
                raise BodyError(f"{what} must be a list of TARGET=NAMESPACE:KEY or a mapping contract object")
            value = self.from_cli(value)
        return self.check(what, value)

    @staticmethod
    def _parse(text: str) -> dict[str, Any]:
        target, equals, source = text.partition("=")
        namespace, colon, key = source.partition(":")
        if not equals or not colon or not target.strip() or not key:
            raise BodyError(f"expected TARGET=NAMESPACE:KEY, got {short(text)}")
        return {"target_field": target.strip(), "source_field": {"namespace": namespace.strip(), "key": key}}


SPAN_REFERENCES: Shape = _SpanReferences()
MAPPING_CONTRACT: Shape = _MappingContract()
