"""The pydantic types of the body fields in a queue message (and so in its published JSON Schema).

Apart from :mod:`import_kinds.fields` so that reading the registry (the command line's options and help) does not
load pydantic: a shape's ``message_type`` imports them when the message model is built.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from .fields import MAX_IDS, MAX_SOURCE_ID_CHARS

__all__ = ["SourceId", "SourceIds", "UuidIds"]

# Source ids are the API's business; only refuse what no id can hold (control characters, blank ends).
_SOURCE_ID_PATTERN = r"^[^\x00-\x20\x7f]([^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
SourceId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SOURCE_ID_CHARS, pattern=_SOURCE_ID_PATTERN)
]
SourceIds = Annotated[list[SourceId], Field(min_length=1, max_length=MAX_IDS)]
UuidIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_IDS)]
