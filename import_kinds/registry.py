"""The parts of an import kind's entry (:class:`ImportKindSpec`), and the checks every layer shares.

An entry says, once: the kind's name and API route, the fields its request body sends (each with its shape, see
:mod:`import_kinds.fields`), and the command-line options that give those fields, with their help and how a value
is resolved first (a local file is uploaded, a dataset is listed). The command groups, the queue message and its
JSON Schema, the plain schedule kinds, the client's ``start_import`` and the ledger's check are built from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .fields import BodyError, Shape, short

__all__ = ["BodyField", "CommandGroup", "ImportKindSpec", "Option", "Resolver", "ScheduleRefusal"]


class CommandGroup(StrEnum):
    """The command groups that offer one subcommand per import kind."""

    IMPORT = "import"
    """``dsimport import KIND``: request the import now."""
    SEND = "send"
    """``dsimport messages send KIND``: publish the request on the stream."""
    SCHEDULE = "schedule"
    """``dsimport schedules add NAME … KIND``: request the same import on every fire."""


class Resolver(StrEnum):
    """How the command line turns an option's value into its field's value before anything is requested."""

    UPLOAD_FILE = "upload-file"
    """The value is a local file: it is uploaded, and the field gets the uploaded file's id."""
    RECORDS_OF_DATASET = "records-of-dataset"
    """The value is a dataset id: the field gets the ids of all the records of that dataset."""
    SEARCH_EVENTS = "search-events"
    """The value is an explorer filter (JSON): the field gets the ids of the events it matches, searched when the
    import is requested, in chunks when there are many (``dsimport import`` only: see :attr:`searches`)."""
    SEARCH_SPANS = "search-spans"
    """The value is a spans search expression: the field gets the spans it finds, as for :attr:`SEARCH_EVENTS`."""

    @property
    def option_value(self) -> str:
        """What the option's own value is: a path, a dataset (its UUID or its slug), or text (a search)."""
        return {Resolver.UPLOAD_FILE: "path", Resolver.RECORDS_OF_DATASET: "dataset"}.get(self, "text")

    @property
    def searches(self) -> bool:
        """Whether the value is a search whose items may fill several jobs: offered by ``dsimport import`` alone
        (a queue message carries one job's items, a plain schedule a body fixed when it is made)."""
        return self in (Resolver.SEARCH_EVENTS, Resolver.SEARCH_SPANS)


@dataclass(frozen=True)
class BodyField:
    """One field of the import's request body."""

    name: str
    shape: Shape
    schedule_key: str
    """Its name among a schedule's options (``schedules add`` and the schedules file), e.g. ``events``."""


@dataclass(frozen=True)
class ScheduleRefusal:
    """An option ``schedules add`` takes only to say what to do instead (the schedules file key too)."""

    schedule_key: str
    reason: str


@dataclass(frozen=True)
class Option:
    """A command-line option that gives one body field.

    Without a resolver, the option's values are the field's (repeatable when its shape is). A field given
    by several options takes exactly one of them. An option with a resolver is not offered by ``schedules add``,
    whose params are fixed when the schedule is made, unless it carries a :class:`ScheduleRefusal`.
    """

    flag: str
    field: str
    help: str
    resolver: Resolver | None = None
    help_in: Mapping[CommandGroup, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """The help in a command group where it reads differently."""
    schedule_refusal: ScheduleRefusal | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def help_for(self, group: CommandGroup) -> str:
        return self.help_in.get(group, self.help)


@dataclass(frozen=True)
class ImportKindSpec:
    """Everything about one import kind; :data:`import_kinds.kinds.IMPORT_KINDS` holds one per kind."""

    name: str
    route: str
    """The last part of its path: ``POST /v1/observability/datasets/{dataset_id}/imports/<route>``."""
    operation: str
    """The SDK's name of the call (and of this client's method)."""
    about: str
    """One sentence: what it imports (the message's description in the JSON Schema)."""
    help: Mapping[CommandGroup, str]
    """Each command group's help for the kind's subcommand."""
    fields: tuple[BodyField, ...]
    options: tuple[Option, ...]

    def __post_init__(self) -> None:
        names = [body_field.name for body_field in self.fields]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"import kind {self.name}: its fields must be one or more distinct names")
        for option in self.options:
            if option.field not in names:
                raise ValueError(f"import kind {self.name}: option {option.flag} gives no field of the kind")
        for name in names:
            if not self.options_of(name):
                raise ValueError(f"import kind {self.name}: no option gives {name}")
        if set(self.help) != set(CommandGroup):
            raise ValueError(f"import kind {self.name}: give the help of every command group")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(body_field.name for body_field in self.fields)

    @property
    def item_field(self) -> BodyField | None:
        """The list field a schedule splits into chunks (its items are recorded once imported), if there is one."""
        many = [body_field for body_field in self.fields if body_field.shape.many]
        return many[0] if len(many) == 1 else None

    def body_field(self, name: str) -> BodyField:
        for body_field in self.fields:
            if body_field.name == name:
                return body_field
        raise KeyError(f"a {self.name} import has no field {name!r}")

    @property
    def search_option(self) -> Option | None:
        """The option whose value is a search for the item field's items (``--filter``), if the kind has one."""
        return next((option for option in self.options if option.resolver is not None and option.resolver.searches),
                    None)  # fmt: skip

    def options_of(self, field_name: str) -> tuple[Option, ...]:
        return tuple(option for option in self.options if option.field == field_name)

    def describe_fields(self) -> str:
        return " and ".join(repr(name) for name in self.field_names)

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` if it holds exactly this kind's body fields, each fitting its shape, as JSON values.

        :raises BodyError: a field is missing, unknown or does not fit.
        """
        if not isinstance(params, Mapping):
            raise BodyError(f"a {self.name} import takes exactly {self.describe_fields()}, got {short(params)}")
        if set(params) != set(self.field_names):
            raise BodyError(f"a {self.name} import takes exactly {self.describe_fields()}, got {sorted(params)}")
        return {body_field.name: body_field.shape.check(body_field.name, params[body_field.name])
                for body_field in self.fields}  # fmt: skip

    def with_items(self, params: Mapping[str, Any], items: list[Any]) -> dict[str, Any]:
        """``params`` with its item field holding ``items`` only (one chunk of a schedule's import)."""
        item_field = self.item_field
        if item_field is None:
            raise ValueError(f"a {self.name} import has no list of items to split")
        return {**params, item_field.name: items}

    def items_of(self, params: Mapping[str, Any]) -> list[Any]:
        """The items of ``params``' item field."""
        item_field = self.item_field
        if item_field is None:
            raise ValueError(f"a {self.name} import has no list of items")
        return list(params.get(item_field.name) or [])
