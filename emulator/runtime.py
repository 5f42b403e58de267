"""One running emulator: its settings, world, counters, and the start-up world it resets to."""

from __future__ import annotations

from pathlib import Path

from .clock import Clock, EmulatorClock
from .config import EmulatorSettings
from .faults import FaultInjector
from .persistence import load_state, save_state
from .seed import apply_seed, load_fixture
from .stats import Stats
from .web import Operations
from .world import World

__all__ = ["Emulator"]


class Emulator:
    """Ties the parts together; `app.build_app` serves it over HTTP."""

    def __init__(self, settings: EmulatorSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else EmulatorClock()
        self.world = World(clock=self.clock, knobs=settings.knobs)
        self.stats = Stats()
        self.faults = FaultInjector(self.world)
        self.ops = Operations(stats=self.stats, faults=self.faults, api_key=settings.api_key)
        # Read once so that reset() re-applies the same fixture even if the file changes.
        self._fixture = load_fixture(settings.seed) if settings.seed else None

    def boot(self) -> None:
        """Load the state file if it exists, else apply the start-up fixture."""
        state_path = self.settings.state_path
        if state_path is not None and state_path.exists():
            load_state(self.world, state_path)
        elif self._fixture is not None:
            apply_seed(self.world, self._fixture)

    def reset(self, *, reseed: bool = True) -> None:
        """Back to the start: empty world (plus the start-up fixture), start-up knobs, zero counters."""
        with self.world.lock:
            self.world.clear()
            self.world.set_knobs(self.settings.knobs.copy())
            self.world.rng.seed(self.settings.knobs.random_seed)
            self.stats.reset(self.world)
            if reseed and self._fixture is not None:
                apply_seed(self.world, self._fixture)

    def save(self, path: Path | None = None) -> Path | None:
        target = path or self.settings.state_path
        if target is not None:
            save_state(self.world, target)
        return target
