"""Loading a world from a JSON fixture (``POST /_emulator/seed``, ``--seed demo|PATH``).

Fixture shape (every list optional; ids and times optional unless noted)::

    {
      "datasets": [{"id", "name" (req), "description", "slug", "created_at"}],
      "records": [{"id", "dataset_id" (req), "payload" (req, any object; 2.5.0 clients read {"messages": [...]}),
                   "properties", "source" (default DIRECT_INPUT), "created_at"}],
      "events": [{"event_id" (req), "correlation_id", "created_at" | "created_at_offset_s",
                  "extra_fields", "nb_input_tokens", "nb_output_tokens", "enabled_tools",
                  "request_messages", "response_messages", "nb_messages",
                  "chat_transcription_events"}],
      "campaigns": [{"id", "name" (req), "description", "max_nb_events", "search_params",
                     "judge" (full Judge object), "judge_id", "selected_event_ids" (req),
                     "status" (default RUNNING), "completes_after_s" (null: status never changes),
                     "created_at"}],
      "conversations": [{"id", "model" | "agent_id", "name", "description", "instructions",
                         "metadata", "created_at", "messages" (req, [{"role", "content"}])}],
      "files": [{"id", "filename" (req), "content" (text) | "content_b64" | "lines" (list of
                 objects, written as JSONL), "purpose", "mimetype", "created_at"}],
      "traces": [{"trace_id" (req), "created_at" | "created_at_offset_s" (the trace's start),
                  any of service_name, user_id, conversation_id, agent_id, agent_name, resource_attributes ...
                  (passed down to its spans), "spans" (req): [{"span_id" (req), "offset_ms" (after the trace's
                  start), "duration_ms", "parent_span_id", "span_name", "span_attributes", any GetSpan key}]}]
    }

Times are ISO-8601 strings; ``created_at_offset_s`` is seconds relative to the seeding time
(negative: in the past). A timed campaign starts its clock when seeded. Objects whose id already
exists are replaced.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .clock import parse_iso
from .models import Campaign, Conversation, StoredFile
from .sources import default_judge, normalise_event
from .telemetry import normalise_trace
from .world import OWNER_ID, WORKSPACE_ID, World, new_id

__all__ = ["DEMO_FIXTURE", "SeedError", "apply_seed", "load_fixture"]

DEMO_FIXTURE = Path(__file__).parent / "fixtures" / "demo.json"


class SeedError(ValueError):
    """Raised when a fixture is malformed; nothing is applied then."""


def load_fixture(seed: str) -> dict[str, Any]:
    """``"demo"`` or a path to a fixture JSON file."""
    path = DEMO_FIXTURE if seed == "demo" else Path(seed)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SeedError(f"cannot read fixture {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SeedError(f"fixture {path} must hold a JSON object")
    return data


# In the order they are staged: records need their datasets.
_KINDS = ("datasets", "events", "records", "campaigns", "conversations", "files", "traces")


def apply_seed(world: World, fixture: Mapping[str, Any]) -> dict[str, list[str]]:
    """Add the fixture's objects to the world; returns the ids added per kind."""
    unknown = set(fixture) - set(_KINDS)
    if unknown:
        raise SeedError(f"unknown fixture keys: {sorted(unknown)}")
    with world.lock:
        now = world.now()
        try:
            staged = _Staged(world, now)
            for kind in _KINDS:
                items = fixture.get(kind)
                if items is None:
                    continue
                if not isinstance(items, list):
                    raise SeedError(f"{kind} must be a list")
                for index, item in enumerate(items):
                    if not isinstance(item, Mapping):
                        raise SeedError(f"{kind}[{index}] must be an object")
                    getattr(staged, kind)(item)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SeedError):
                raise
            raise SeedError(f"invalid fixture: {exc!r}") from exc
        staged.commit()
        return staged.ids


class _Staged:
    """Builds everything first so that a bad fixture leaves the world untouched."""

    def __init__(self, world: World, now: float) -> None:
        self.world, self.now = world, now
        self.ids: dict[str, list[str]] = {k: [] for k in _KINDS}
        self._actions: list[Any] = []

    def _time(self, item: Mapping[str, Any]) -> float:
        if "created_at_offset_s" in item:
            return self.now + float(item["created_at_offset_s"])
        created = item.get("created_at")
        return parse_iso(created) if isinstance(created, str) else self.now

    def datasets(self, item: Mapping[str, Any]) -> None:
        dataset_id, created = str(item.get("id") or new_id()), self._time(item)
        name, description = str(item["name"]), str(item.get("description", ""))
        slug = item.get("slug")
        self.ids["datasets"].append(dataset_id)
        self._actions.append(
            lambda: self.world.add_dataset(name, description, dataset_id=dataset_id, created_at=created, slug=slug)
        )

    def records(self, item: Mapping[str, Any]) -> None:
        dataset_id = str(item["dataset_id"])
        if dataset_id not in self.ids["datasets"] and dataset_id not in self.world.datasets:
            raise SeedError(f"record refers to unknown dataset {dataset_id}")
        payload, properties = item["payload"], item.get("properties") or {}
        if not isinstance(payload, dict):
            raise SeedError("record payload must be an object")
        if not isinstance(properties, dict):
            raise SeedError("record properties must be an object")
        record_id, created = str(item.get("id") or new_id()), self._time(item)
        source = str(item.get("source", "DIRECT_INPUT"))
        self.ids["records"].append(record_id)
        self._actions.append(
            lambda: self.world.add_record(
                dataset_id, payload, properties, source, None, record_id=record_id, created_at=created
            )
        )

    def events(self, item: Mapping[str, Any]) -> None:
        event = normalise_event(item, self._time(item))
        self.ids["events"].append(event.event_id)
        self._actions.append(lambda: self.world.events.__setitem__(event.event_id, event))

    def campaigns(self, item: Mapping[str, Any]) -> None:
        created = self._time(item)
        selected = item["selected_event_ids"]
        if not isinstance(selected, list) or not all(isinstance(i, str) for i in selected):
            raise SeedError("campaign selected_event_ids must be a list of strings")
        completes = item.get("completes_after_s")
        campaign = Campaign(
            id=str(item.get("id") or new_id()),
            name=str(item["name"]),
            description=str(item.get("description", "")),
            max_nb_events=int(item.get("max_nb_events", max(len(selected), 1))),
            search_params=dict(item.get("search_params") or {"filters": None}),
            judge=dict(item.get("judge") or default_judge(item.get("judge_id"), created)),
            selected_event_ids=list(selected),
            owner_id=OWNER_ID,
            workspace_id=WORKSPACE_ID,
            created_at=created,
            updated_at=created,
            status=str(item.get("status", "RUNNING")),
            started_at=self.now,
            completes_after_s=None if completes is None else float(completes),
        )
        self.ids["campaigns"].append(campaign.id)
        self._actions.append(lambda: self.world.campaigns.__setitem__(campaign.id, campaign))

    def conversations(self, item: Mapping[str, Any]) -> None:
        messages = item["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise SeedError("conversation messages must be a list of objects")
        created = self._time(item)
        conversation = Conversation(
            id=str(item.get("id") or "conv_" + new_id().replace("-", "")),
            created_at=created,
            updated_at=created,
            messages=[dict(m) for m in messages],
            model=item.get("model"),
            agent_id=item.get("agent_id"),
            name=item.get("name"),
            description=item.get("description"),
            instructions=item.get("instructions"),
            metadata=item.get("metadata"),
        )
        self.ids["conversations"].append(conversation.id)
        self._actions.append(lambda: self.world.conversations.__setitem__(conversation.id, conversation))

    def files(self, item: Mapping[str, Any]) -> None:
        if "lines" in item:
            content = b"".join(json.dumps(line).encode() + b"\n" for line in item["lines"])
        elif "content_b64" in item:
            try:
                content = base64.b64decode(str(item["content_b64"]), validate=True)
            except binascii.Error as exc:
                raise SeedError(f"file content_b64 is not base64: {exc}") from exc
        else:
            content = str(item.get("content", "")).encode()
        stored = StoredFile(
            id=str(item.get("id") or new_id()),
            filename=str(item["filename"]),
            content=content,
            created_at=int(self._time(item)),
            purpose=str(item.get("purpose", "fine-tune")),
            mimetype=item.get("mimetype"),
        )
        self.ids["files"].append(stored.id)
        self._actions.append(lambda: self.world.files.__setitem__(stored.id, stored))

    def traces(self, item: Mapping[str, Any]) -> None:
        try:
            spans = normalise_trace(item, self._time(item))
        except ValueError as exc:
            raise SeedError(str(exc)) from exc
        self.ids["traces"].append(spans[0].trace_id)
        for span in spans:
            self._actions.append(lambda span=span: self.world.spans.__setitem__(span.key, span))

    def commit(self) -> None:
        for action in self._actions:
            action()
