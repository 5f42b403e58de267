"""A local emulator of Mistral's Observability Datasets API (and the sources it imports from).

Start it with ``python -m emulator --port 8765 --seed demo`` (or ``dsimport emulator``), or in
tests with `emulator.testing.EmulatorServer`. See `emulator.seed` for the fixture format,
`emulator.routes_admin` for the ``/_emulator`` admin API and `emulator.config.Knobs` for the
timing and fault knobs.
"""

from __future__ import annotations

from .app import build_app
from .clock import EmulatorClock
from .config import EmulatorSettings, FaultRule, Knobs
from .runtime import Emulator

__all__ = ["Emulator", "EmulatorClock", "EmulatorSettings", "FaultRule", "Knobs", "build_app"]
