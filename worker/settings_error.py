"""The error a setting that cannot describe a runnable service raises.

Apart from :mod:`worker.settings` so that the command line can catch it without loading pydantic and the ledger
before it knows which command runs.
"""

from __future__ import annotations

__all__ = ["SettingsError"]


class SettingsError(ValueError):
    """Raised when the settings cannot describe a runnable service (one line that says what to fix)."""
