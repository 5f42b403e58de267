"""The two commands ``dsimport up`` prints for a second terminal: list the datasets, run one import to its end.

They are whole shell lines, ready to paste from any folder: the home is named (the stack is found through its
``stack.json``), and the program is the one running now (``dsimport`` when that name on PATH is this one, else its
full path). The import uses real ids of the demo world: its "Scratch" dataset and a campaign with events.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["demo_commands", "demo_import_ids", "this_program"]

_DEMO_DATASET = "Scratch"
_DEMO_CAMPAIGN = "Large model answers"


def this_program() -> str:
    """How a shell runs the command line that is running now."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name == "dsimport":
        on_path = shutil.which("dsimport")
        if on_path is not None and os.path.samefile(on_path, script):
            return "dsimport"
        return shlex.quote(os.path.abspath(script))
    return f"{shlex.quote(sys.executable)} -m cli"  # `python -m cli`


def _named(items: object, name: str) -> Mapping[str, object] | None:
    """The item called ``name`` in a list of the demo world, else its first item."""
    if not isinstance(items, list):
        return None
    candidates = [item for item in items if isinstance(item, Mapping)]
    return next((item for item in candidates if item.get("name") == name), candidates[0] if candidates else None)


def demo_import_ids(world: Mapping[str, object]) -> tuple[str, str] | None:
    """(dataset id, campaign id) of the demo import, or None when the world lacks either."""
    dataset = _named(world.get("datasets"), _DEMO_DATASET)
    campaigns = world.get("campaigns")
    listed = campaigns if isinstance(campaigns, list) else []
    with_events = [c for c in listed if isinstance(c, Mapping) and c.get("selected_event_ids")]
    campaign = _named(with_events, _DEMO_CAMPAIGN)
    if dataset is None or campaign is None:
        return None
    return str(dataset.get("id")), str(campaign.get("id"))


def demo_commands(home: Path, *, demo_world: Mapping[str, object] | None) -> list[str]:
    """``datasets list``, and with the demo world an import of one of its campaigns that waits for the end."""
    prefix = f"DSIMPORT_HOME={shlex.quote(str(home))} {this_program()}"
    commands = [f"{prefix} datasets list"]
    ids = demo_import_ids(demo_world) if demo_world is not None else None
    if ids is not None:
        dataset, campaign = ids
        commands.append(f"{prefix} import campaign --dataset {dataset} --campaign {campaign} --wait")
    return commands
