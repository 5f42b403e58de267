"""The import kinds, one entry each: name, API route, body fields (shape and cardinality), command-line options
and help, and how an option's value is resolved first. Every layer that handles a kind derives what it needs from
here: the command groups, the queue message and its JSON Schema, the plain schedules, the client and the ledger.

It imports nothing of the service, so any layer may import it (``pyproject.toml``, ``[tool.importlinter]``).
"""

from __future__ import annotations

from .fields import MAX_IDS, MAX_SOURCE_ID_CHARS, BodyError, Shape
from .kinds import IMPORT_KINDS, ImportKind, ImportKindName, spec_of
from .registry import BodyField, CommandGroup, ImportKindSpec, Option, Resolver, ScheduleRefusal

__all__ = [
    "IMPORT_KINDS",
    "MAX_IDS",
    "MAX_SOURCE_ID_CHARS",
    "BodyError",
    "BodyField",
    "CommandGroup",
    "ImportKind",
    "ImportKindName",
    "ImportKindSpec",
    "Option",
    "Resolver",
    "ScheduleRefusal",
    "Shape",
    "spec_of",
]
