"""What an import's body field holds (its *shape*), and every way such a value is written down.

A shape is one kind of value: one source id, one uuid, a list of source ids, a list of uuids (and, in
:mod:`import_kinds.spans`, span references and a mapping contract). Each shape answers, once, for every layer:

- ``message_type``: its pydantic type in a queue message, and so in the published JSON Schema (from
  :mod:`import_kinds.message_types`, loaded only then: the command line reads this registry without pydantic);
- ``check``: whether a value may be stored in the ledger or sent to the API, and its JSON form (the ledger's
  ``params`` and the request body are the same JSON);
- ``from_cli``: the value of its command-line option (``--event A --event B`` arrives as ``("A", "B")``);
- ``from_schedule``: a schedule's option (the command line or the schedules file), normalised so that two ways
  of writing the same schedule store the same params;
- ``item_key`` (shapes with ``many``): the id a schedule records for one item it has imported.

Every failure is a :class:`BodyError` whose message is one line that names the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeAlias

__all__ = [
    "ID_LIST",
    "MAX_IDS",
    "MAX_SOURCE_ID_CHARS",
    "ONE_ID",
    "ONE_UUID",
    "UUID_LIST",
    "BodyError",
    "OptionValue",
    "Shape",
    "short",
]

MAX_IDS = 1000
"""Most source items in one message; a larger import is several messages."""
MAX_SOURCE_ID_CHARS = 256

OptionValue: TypeAlias = Literal["text", "uuid"]
"""What one command-line value of a field is: free text, or an id the API types as a uuid (checked on parsing)."""


class BodyError(ValueError):
    """Raised when a value does not fit its body field (one line naming the field)."""


def short(value: Any, width: int = 60) -> str:
    """A repr short enough for a one-line error, whatever the value (a list of 1,000 ids)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def as_list(field: str, value: Any) -> list[Any]:
    """The items of a list value: any iterable but a string or a mapping (whose iteration is a trap)."""
    # A lone string is iterable too: without this check "evt-1" would become ["e", "v", "t", ...].
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise BodyError(f"{field} must be a non-empty list, got {short(value)}")
    items = list(value)
    if not items:
        raise BodyError(f"{field} must be a non-empty list")
    return items


def _uuid(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise BodyError(f"{what} {value!r} is not a valid UUID") from None


class Shape:
    """One kind of body value; see the module docstring for what each method is for."""

    many: ClassVar[bool] = False
    """A list: a schedule may split its items into chunks, one import each."""
    repeatable: ClassVar[bool] = False
    """Its command-line option is given once per item or part (``--event A --event B``)."""
    option_value: ClassVar[OptionValue] = "text"
    description: ClassVar[str] = ""

    def message_type(self) -> Any:
        raise NotImplementedError

    def check(self, field: str, value: Any) -> Any:
        raise NotImplementedError

    def from_cli(self, value: Any) -> Any:
        """The command line's value: one string, or a tuple of them for a repeatable option. Checked later."""
        return list(value) if self.repeatable else value

    def from_schedule(self, value: Any, what: str) -> Any:
        raise NotImplementedError

    def item_key(self, item: Any) -> str:
        """The id a schedule records for ``item`` (at most 64 characters, the ledger's column)."""
        return str(item)


class _OneId(Shape):
    description = "one id"

    def message_type(self) -> Any:
        from .message_types import SourceId

        return SourceId

    def check(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise BodyError(f"{field} must be a non-empty string, got {short(value)}")
        return value

    def from_schedule(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise BodyError(f"{what} must be a non-empty string")
        return value.strip()


class _OneUuid(_OneId):
    option_value = "uuid"
    description = "one uuid"

    def message_type(self) -> Any:
        return uuid.UUID

    def from_schedule(self, value: Any, what: str) -> str:
        return _uuid(value, what)


class _IdList(Shape):
    many = True
    repeatable = True
    description = "a list of ids"

    def message_type(self) -> Any:
        from .message_types import SourceIds

        return SourceIds

    def check(self, field: str, value: Any) -> list[str]:
        ids = as_list(field, value)
        if not all(isinstance(item, str) and item for item in ids):
            raise BodyError(f"{field} must hold non-empty strings, got {short(ids)}")
        return ids

    def from_schedule(self, value: Any, what: str) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise BodyError(f"{what} must be a non-empty list of ids")
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise BodyError(f"{what} must hold non-empty strings")
        # The same id twice in a schedule is one item: importing it twice per fire is never what was meant.
        return list(dict.fromkeys(self._normal(item, what) for item in value))

    def _normal(self, item: str, what: str) -> str:
        return item.strip()


class _UuidList(_IdList):
    option_value = "uuid"
    description = "a list of uuids"

    def message_type(self) -> Any:
        from .message_types import UuidIds

        return UuidIds

    def _normal(self, item: str, what: str) -> str:
        return _uuid(item, what)


ONE_ID: Shape = _OneId()
ONE_UUID: Shape = _OneUuid()
ID_LIST: Shape = _IdList()
UUID_LIST: Shape = _UuidList()
