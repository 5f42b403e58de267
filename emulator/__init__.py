"""A local emulator of Mistral's Observability Datasets API (and the sources it imports from).

Start it with ``python -m emulator --port 8765 --seed demo`` (or ``dsimport emulator``), or in
tests with `emulator.testing.EmulatorServer`. See `emulator.seed` for the fixture format,
`emulator.routes_admin` for the ``/_emulator`` admin API and `emulator.config.Knobs` for the
timing and fault knobs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import build_app
    from .clock import EmulatorClock
    from .config import EmulatorSettings, FaultRule, Knobs
    from .runtime import Emulator

__all__ = ["Emulator", "EmulatorClock", "EmulatorSettings", "FaultRule", "Knobs", "build_app"]

# Each name is loaded on first use (PEP 562): `dsimport --help` lists the emulator's command (emulator.cli), which
# must not load the server with the package.
_MODULE_OF = {
    "Emulator": ".runtime",
    "EmulatorClock": ".clock",
    "EmulatorSettings": ".config",
    "FaultRule": ".config",
    "Knobs": ".config",
    "build_app": ".app",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
