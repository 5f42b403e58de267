"""Dataset references: from 3.x on, a dataset's UUID or its workspace-scoped slug, wherever a dataset id goes.

The 3.7.0 SDK documents every ``dataset_id`` path parameter as "Dataset UUID or workspace-scoped slug. UUID-shaped
values are always interpreted as dataset IDs." The clients send whatever non-empty string they are given
(percent-encoded, as the SDK does) and let the API decide: they refuse nothing that could be a slug.

What a slug may hold is documented nowhere (SDK docstrings, reference page, contract). :func:`parse_dataset_ref`
checks an assumed shape, [INFERENCE] that of a slug made from a dataset name (as the emulator makes them): lowercase
ASCII letters and digits, words joined by one ``-`` or ``_``. The command line and queue messages use it to refuse
a value that is neither a UUID nor a slug before anything is recorded.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

__all__ = ["MAX_SLUG_CHARS", "SLUG_PATTERN", "describe_dataset_ref", "is_dataset_uuid", "parse_dataset_ref"]

SLUG_PATTERN: Final = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
# [INFERENCE] The API states no limit; 64 is also what the ledger keeps of a job's dataset reference.
MAX_SLUG_CHARS: Final = 64

_SLUG = re.compile(SLUG_PATTERN)


def describe_dataset_ref() -> str:
    """What :func:`parse_dataset_ref` accepts, for help texts and error messages."""
    return (
        "a dataset UUID or slug (lowercase letters and digits, words joined by '-' or '_', "
        f"at most {MAX_SLUG_CHARS} characters)"
    )


def is_dataset_uuid(value: str) -> bool:
    """True when the API reads ``value`` as a dataset id rather than a slug (it is UUID-shaped)."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def parse_dataset_ref(value: str) -> str:
    """``value`` as a dataset reference: a UUID in its canonical form (lowercase, hyphenated) or a slug as given.

    :raises ValueError: ``value`` is neither (the message says what a reference looks like).
    """
    if isinstance(value, str):
        if is_dataset_uuid(value):
            return str(uuid.UUID(value))
        if len(value) <= MAX_SLUG_CHARS and _SLUG.fullmatch(value):
            return value
    raise ValueError(f"{_shown(value)} is not {describe_dataset_ref()}")


def _shown(value: object) -> str:
    # The value may come from anyone (a queue message): quoted, escaped, and short enough for one log line.
    text = repr(value)
    return text if len(text) <= 50 else text[:46] + "...'"
