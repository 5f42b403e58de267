"""Saving the whole world to a JSON state file and loading it back (``--state FILE``).

Times are stored as absolute Unix seconds, so a task that was running at shutdown has moved on
by the time the emulator is back, exactly as a remote task would have.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import Knobs
from .models import Campaign, Conversation, Dataset, Event, PlannedRecord, Record, Span, StoredFile, Task
from .world import World

__all__ = ["STATE_VERSION", "load_state", "save_state"]

STATE_VERSION = 1


def save_state(world: World, path: Path) -> None:
    """Write atomically (temporary file, then rename) so a crash never leaves half a file."""
    with world.lock:
        state = {
            "version": STATE_VERSION,
            "saved_at": world.now(),
            "knobs": world.knobs.to_json(),
            "datasets": [asdict(d) for d in world.datasets.values()],
            "records": [asdict(r) for r in world.records.values()],
            "tasks": [_task_state(t) for t in world.tasks.values()],
            "campaigns": [asdict(c) for c in world.campaigns.values()],
            "events": [{"data": e.data, "created_ts": e.created_ts} for e in world.events.values()],
            "conversations": [asdict(c) for c in world.conversations.values()],
            "files": [_file_state(f) for f in world.files.values()],
            "spans": [{"data": s.data, "start_ts": s.start_ts} for s in world.spans.values()],
        }
        text = json.dumps(state, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_state(world: World, path: Path) -> None:
    """Replace the world's content (and knobs) with the state file's."""
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: unsupported state version {state.get('version')!r}")
    with world.lock:
        world.clear()
        world.set_knobs(Knobs().updated(state["knobs"]))
        for raw in state["datasets"]:
            dataset = Dataset(**raw)
            world.datasets[dataset.id] = dataset
            world.records_by_dataset.setdefault(dataset.id, [])
            world.tasks_by_dataset.setdefault(dataset.id, [])
        for raw in sorted(state["records"], key=lambda r: r["created_at"]):
            record = Record(**raw)
            world.add_record(
                record.dataset_id,
                record.payload,
                record.properties,
                record.source,
                record.origin,
                record_id=record.id,
                created_at=record.created_at,
            )
        for raw in sorted(state["tasks"], key=lambda t: t["created_at"]):
            world.add_task(_task_from_state(raw))
        for raw in state["campaigns"]:
            campaign = Campaign(**raw)
            world.campaigns[campaign.id] = campaign
        for raw in state["events"]:
            event = Event(data=raw["data"], created_ts=raw["created_ts"])
            world.events[event.event_id] = event
        for raw in state["conversations"]:
            conversation = Conversation(**raw)
            world.conversations[conversation.id] = conversation
        for raw in state["files"]:
            content = base64.b64decode(raw.pop("content_b64"))
            stored = StoredFile(content=content, **raw)
            world.files[stored.id] = stored
        for raw in state.get("spans", []):  # absent from state files written before spans existed
            span = Span(data=raw["data"], start_ts=raw["start_ts"])
            world.spans[span.key] = span


def _task_state(task: Task) -> dict[str, Any]:
    state = asdict(task)
    state.pop("body_cache")
    state.pop("head_cache")
    state["sequence"] = list(task.sequence)
    state["origins"] = list(task.origins)
    return state


def _task_from_state(raw: dict[str, Any]) -> Task:
    plan = [PlannedRecord(**p) for p in raw.pop("plan")]
    origins = tuple(raw.pop("origins", ()))  # absent from state files written before origins were kept
    return Task(plan=plan, sequence=tuple(raw.pop("sequence")), origins=origins, **raw)


def _file_state(stored: StoredFile) -> dict[str, Any]:
    state = asdict(stored)
    state["content_b64"] = base64.b64encode(state.pop("content")).decode()
    return state
