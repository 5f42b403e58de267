"""The newest migration revision, read from the migration files' ``revision`` and ``down_revision`` lines.

Every command that opens the ledger first checks it is migrated; loading Alembic for that costs the command line
more than the rest of its start-up. This reads the two assignments each migration file makes, as Alembic would,
and answers None when a file does not make them plainly (or the revisions do not end in one head): the check then
asks Alembic (:func:`store.db.check_migrated`). A test keeps the answer equal to Alembic's.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

__all__ = ["VERSIONS_DIR", "shipped_head"]

VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"

# `revision: str = "0007"`, `down_revision: str | None = "0006"`: the name, an optional annotation, the value.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def shipped_head() -> str | None:
    """The one revision no migration file revises, or None when the files do not say it plainly."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        revised.update([down] if isinstance(down, str) else down or ())
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
