"""The import request as a message: one pydantic model, its JSON Schema, and the parser every intake path uses.

A message is a JSON object whose ``kind`` picks the source field, for example::

    {"id": "order-42", "kind": "explorer", "dataset_id": "3f0e…", "completion_event_ids": ["evt-1"]}

``id`` is chosen by the producer and names the request: sending the same ``id`` twice asks for one import.
:func:`parse_message` turns raw bytes into a request or raises :class:`InvalidMessage` with a one-line reason;
it never raises anything else, whatever the bytes.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, NoReturn, TypeAlias, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from api_client.dataset_refs import MAX_SLUG_CHARS, SLUG_PATTERN, parse_dataset_ref
from import_kinds import IMPORT_KINDS, MAX_IDS, MAX_SOURCE_ID_CHARS, ImportKind, ImportKindSpec
from jobs.request_import import InvalidImportRequest

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_IDS",
    "MAX_ID_CHARS",
    "MAX_SOURCE_ID_CHARS",
    "REQUEST_MODELS",
    "SCHEMA_ID",
    "ImportRequest",
    "ImportRequestMessage",
    "InvalidMessage",
    "idempotency_key",
    "is_message_id",
    "json_schema",
    "parse_message",
    "parse_payload",
]

DEFAULT_MAX_BYTES = 64 * 1024
MAX_ID_CHARS = 200
"""Longest message ``id``; the idempotency key ``message:<id>`` must fit the ledger's 255 characters."""
SCHEMA_ID = "https://dsimport.invalid/schemas/import-request.schema.json"
_ID_PATTERN = r"^[!-~]+$"
_ID_CHARS = re.compile(_ID_PATTERN)

# Printable ASCII, no spaces: an id shows up in keys, logs and command lines, and must survive all three.
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=_ID_PATTERN)]
# A dataset's UUID (written the canonical way) or its workspace-scoped slug: see api_client.dataset_refs.
DatasetRef = Annotated[
    str,
    AfterValidator(parse_dataset_ref),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "uuid"},
                {"type": "string", "pattern": SLUG_PATTERN, "maxLength": MAX_SLUG_CHARS},
            ]
        }
    ),
]


class ImportRequest(BaseModel):
    """What every request message holds; each kind's model adds its ``kind`` and its body fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: MessageId = Field(description="Chosen by the producer; the same id twice is one import.")
    dataset_id: DatasetRef = Field(description="Dataset to import into: its UUID or its slug.")
    kind: str
    skip_existing: bool = Field(
        default=False,
        description="Leave out, before importing, the items the target dataset already holds (by payload or origin).",
    )

    def params(self) -> dict[str, Any]:
        """The import's body fields, as the ledger stores them."""
        return self.model_dump(mode="json", include=set(IMPORT_KINDS[ImportKind(self.kind)].field_names))


def _request_model(spec: ImportKindSpec) -> type[ImportRequest]:
    """The message model of one import kind, named after it (``CampaignRequest``), its fields from the registry."""
    fields: dict[str, Any] = {"kind": (Literal[spec.name], ...)}
    for body_field in spec.fields:
        fields[body_field.name] = (body_field.shape.message_type(), ...)
    return create_model(f"{spec.name.capitalize()}Request", __base__=ImportRequest, __doc__=spec.about, **fields)


REQUEST_MODELS: dict[ImportKind, type[ImportRequest]] = {
    kind: _request_model(spec) for kind, spec in IMPORT_KINDS.items()
}
"""The model of each kind's message; ``CampaignRequest`` and the like name them too."""

# For a type checker every message is an ImportRequest; at run time the union of the kinds' models picks the one
# its ``kind`` names.
ImportRequestMessage: TypeAlias = ImportRequest
_ADAPTER: TypeAdapter[ImportRequest] = TypeAdapter(
    Annotated[Union[tuple(REQUEST_MODELS.values())], Field(discriminator="kind")]  # type: ignore[arg-type]  # noqa: UP007
)
_KINDS = ", ".join(sorted(kind.value for kind in ImportKind))


def __getattr__(name: str) -> type[ImportRequest]:
    # CampaignRequest, ExplorerRequest, ...: each kind's model by its name.
    for model in REQUEST_MODELS.values():
        if model.__name__ == name:
            return model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class InvalidMessage(InvalidImportRequest):
    """Raised when a message cannot be read as an import request; ``reason`` is one line saying why."""

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        self.reason = reason
        self.message_id = message_id
        super().__init__(reason)


def idempotency_key(message_id: str) -> str:
    """The ledger key of the request a message names: every path (stream, task, retry) uses the same one."""
    return f"message:{message_id}"


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a message, generated from the model."""
    schema = _ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ImportRequest",
        "description": (
            "A request for one import into a Mistral Observability dataset, sent as the `body` field of a Redis "
            "Stream entry. `kind` selects the source field. `id` is chosen by the producer: a second message "
            "with the same id creates no second import."
        ),
        **schema,
    }


def parse_message(
    body: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES, default_id: str | None = None
) -> ImportRequestMessage:
    """Read raw bytes as an import request; ``default_id`` is its ``id`` when the body names none (the HTTP API's
    ``Idempotency-Key`` header).

    :raises InvalidMessage: missing, too large, not UTF-8, not JSON (NaN, Infinity and duplicate keys
        included), not an object, or not a valid request. The reason starts with which of those it was.
    """
    if body is None:
        raise InvalidMessage("no body: the entry has no 'body' field")
    if len(body) > max_bytes:
        raise InvalidMessage(f"too large: {len(body)} bytes, the limit is {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        payload = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise InvalidMessage(f"invalid JSON: duplicate key {exc.key!r}") from None
    except _NonFiniteNumber as exc:
        raise InvalidMessage(f"invalid JSON: {exc.constant} is not a JSON number") from None
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InvalidMessage("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # An integer of more than 4,300 digits: Python refuses to convert it (CVE-2020-10735), with a message
        # that tells the reader to raise a limit; only its first clause says what is wrong with the message.
        raise InvalidMessage(f"invalid JSON: {str(exc).split(':')[0]}") from None
    if default_id is not None and isinstance(payload, dict) and "id" not in payload:
        payload = {"id": default_id, **payload}
    return parse_payload(payload)


def parse_payload(payload: Any) -> ImportRequestMessage:
    """Validate an already decoded JSON value as an import request.

    :raises InvalidMessage: not an object, or not a valid request.
    """
    if not isinstance(payload, dict):
        raise InvalidMessage(f"not a JSON object: got {_json_type(payload)}")
    message_id = _usable_id(payload.get("id"))
    try:
        return _ADAPTER.validate_python(payload)
    except ValidationError as exc:
        _raise_schema_error(exc, payload, message_id)


def is_message_id(value: Any) -> bool:
    """True when ``value`` is a valid message ``id`` (1-200 printable ASCII characters, no spaces)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and bool(_ID_CHARS.fullmatch(value))


def _usable_id(value: Any) -> str | None:
    # The id of a refused message is kept to find its dead letter by; only one valid as an id is worth keeping.
    return value if is_message_id(value) else None


def _raise_schema_error(exc: ValidationError, payload: dict[str, Any], message_id: str | None) -> NoReturn:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "union_tag_not_found":
        raise InvalidMessage("schema: kind: field required", message_id=message_id) from None
    if first["type"] == "union_tag_invalid":
        raise InvalidMessage(
            f"unknown kind {_short(payload.get('kind'))} (expected one of {_KINDS})", message_id=message_id
        ) from None
    parts = [f"{_location(error['loc'])}: {error['msg']}" for error in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    raise InvalidMessage("schema: " + "; ".join(parts) + more, message_id=message_id) from None


def _location(loc: tuple[int | str, ...]) -> str:
    # The first element is the kind the union picked; the reader wants the field path.
    path = ""
    for part in loc[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        # An unexpected key is the producer's text: keep the reason one printable line.
        name = part if part.isprintable() else json.dumps(part)
        path += f".{name}" if path else name
    return path or "message"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


class _NonFiniteNumber(ValueError):
    def __init__(self, constant: str) -> None:
        self.constant = constant
        super().__init__(constant)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key: which one a producer meant is a guess, and other parsers guess differently.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(constant: str) -> NoReturn:
    raise _NonFiniteNumber(constant)
