"""How many items one import job of a chunked schedule takes: the default and the most.

Apart from :mod:`triggers.schedules.specs` so that the command line's ``--chunk-size`` option reads the bound
without loading the specs (and with them the ledger and the API client).
"""

from __future__ import annotations

__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 100
MAX_CHUNK_SIZE = 10_000
