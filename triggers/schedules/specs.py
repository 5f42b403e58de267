"""Turning what a user wrote (command-line options or a table of the schedules file) into a schedule definition.

One function, :func:`build_definition`, serves both, so the command line and the file accept the same kinds with
the same option names and refuse the same mistakes with the same words. Kinds:

=====================  ====================================================================================
an import kind         plain: the same import on every fire; its body fields are options named as in the
                       kind's entry (:mod:`import_kinds`): ``campaign``, ``events``, ``file_id``,
                       ``conversations``, ``records``, ...
``explorer-window``    events created since the watermark matching ``filter``, in chunks of ``chunk_size``;
                       the first window starts at ``since`` (default: when the schedule is created); with
                       ``sample`` (a rate in (0, 1]) only that share of the events, chosen by a hash of each
                       event id (:mod:`triggers.schedules.sampling`)
``spans-window``       telemetry spans found since the watermark (matching the search expression ``search``),
                       imported with the mapping contract ``mapping`` in chunks of ``chunk_size``; the first
                       window starts at ``since`` (default: when the schedule is created); ``sample`` as
                       explorer-window's, by a hash of each span's ``trace_id:span_id``
``campaign-when-done`` wait for campaign ``campaign`` to be COMPLETED, import it once, then stop
``dataset-copy``       copy the records of ``from_dataset`` not copied yet, in chunks of ``chunk_size``
=====================  ====================================================================================

Every kind takes ``dataset``, the target; it and ``from_dataset`` are a dataset's UUID or its slug; and ``snapshot``,
a folder the target is exported to after each completed import (:mod:`snapshots`): made absolute and proven
writable when the schedule is defined.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api_client.dataset_refs import parse_dataset_ref
from import_kinds import IMPORT_KINDS, BodyError, ImportKindSpec, spec_of
from jobs.request_import import InvalidImportRequest, validate_params
from snapshots.files import SnapshotDirError, check_snapshot_dir
from store.models import ImportKind, ScheduleKind
from store.schedules import ScheduleDefinition
from triggers.schedules.chunk_sizes import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE
from triggers.schedules.fire_times import InvalidTiming, Timing
from triggers.schedules.sampling import InvalidSampleRate, check_sample_rate

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "KIND_NAMES",
    "MAX_CHUNK_SIZE",
    "InvalidSchedule",
    "build_definition",
    "check_filter",
    "check_name",
    "definition_timing",
]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_FILTER_OPS = frozenset(
    "lt lte gt gte startswith istartswith endswith iendswith contains icontains matches notcontains "
    "inotcontains eq neq isnull includes excludes len_eq".split()
)

# Kind name -> (schedule kind, import kind, accepted options beyond the common ones). The plain kinds are the import
# kinds, taking their body fields under the names of their entries (import_kinds).
_KINDS: dict[str, tuple[ScheduleKind, ImportKind, frozenset[str]]] = {
    **{
        str(kind): (ScheduleKind.PLAIN, kind, frozenset(body_field.schedule_key for body_field in spec.fields))
        for kind, spec in IMPORT_KINDS.items()
    },
    "explorer-window": (
        ScheduleKind.EXPLORER_WINDOW,
        ImportKind.EXPLORER,
        frozenset({"filter", "chunk_size", "since", "sample"}),
    ),
    "spans-window": (
        ScheduleKind.SPANS_WINDOW,
        ImportKind.SPANS,
        frozenset({"search", "mapping", "chunk_size", "since", "sample"}),
    ),
    "campaign-when-done": (ScheduleKind.CAMPAIGN_WHEN_DONE, ImportKind.CAMPAIGN, frozenset({"campaign"})),
    "dataset-copy": (ScheduleKind.DATASET_COPY, ImportKind.DATASET, frozenset({"from_dataset", "chunk_size"})),
}
KIND_NAMES: tuple[str, ...] = tuple(_KINDS)
# Options every kind takes: ``skip_existing`` (default true) leaves out what the target dataset holds already.
_COMMON_OPTIONS = frozenset({"skip_existing"})


class InvalidSchedule(ValueError):
    """Raised when a schedule definition is incomplete or wrong (one line that says what to fix)."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidSchedule(
            f"schedule name {name!r} must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _uuid(value: Any, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidSchedule(f"{what} {value!r} is not a valid UUID") from None


def _dataset(value: Any, what: str) -> str:
    # A dataset's UUID or its slug (see api_client.dataset_refs); the message says what a reference looks like.
    try:
        return parse_dataset_ref(value)
    except ValueError as exc:
        raise InvalidSchedule(f"{what}: {exc}") from None


def check_filter(value: Any, *, where: str = "filter") -> dict[str, Any]:
    """Check an explorer filter (a ``FilterPayload``'s ``filters``: a condition or an AND/OR group).

    A whole ``{"filters": …}`` payload is accepted too and unwrapped.
    """
    if isinstance(value, Mapping) and set(value) == {"filters"}:
        value = value["filters"]
    if not isinstance(value, Mapping):
        raise InvalidSchedule(f"{where} must be an object (a condition or an AND/OR group)")
    if where == "filter":
        # Once, for the whole filter: it is stored as JSON and sent as JSON on every fire. NaN, Infinity (1e999)
        # or a TOML date would be stored, then refused by the API (or by PostgreSQL) at each fire.
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise InvalidSchedule(
                "filter values must be JSON: strings, finite numbers, booleans, null, lists and objects"
            ) from None
    keys = set(value)
    if keys and keys <= {"AND", "OR"}:
        for key in sorted(keys):
            members = value[key]
            if members is None:
                continue
            if not isinstance(members, list):
                raise InvalidSchedule(f"{where}.{key} must be a list")
            for index, member in enumerate(members):
                check_filter(member, where=f"{where}.{key}[{index}]")
        return dict(value)
    if keys != {"field", "op", "value"}:
        raise InvalidSchedule(
            f"{where} must be a condition {{field, op, value}} or a group {{AND: [...]}} / {{OR: [...]}}, "
            f"got keys {sorted(keys)}"
        )
    if not isinstance(value["field"], str) or not value["field"]:
        raise InvalidSchedule(f"{where}.field must be a non-empty string")
    if value["op"] not in _FILTER_OPS:
        raise InvalidSchedule(f"{where}.op {value['op']!r} is not one of {', '.join(sorted(_FILTER_OPS))}")
    return dict(value)


def _chunk_size(value: Any) -> int:
    if value is None:
        return DEFAULT_CHUNK_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHUNK_SIZE:
        raise InvalidSchedule(f"chunk_size must be an integer from 1 to {MAX_CHUNK_SIZE}, got {value!r}")
    return value


def _since(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidSchedule(f"since {value!r} is not an ISO-8601 date and time") from None
    if not isinstance(value, datetime):
        raise InvalidSchedule(f"since must be a date and time, got {value!r}")
    # A time without an offset is read as UTC, like every time this service handles.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain_params(spec: ImportKindSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a plain schedule's import, from its options (named as in the kind's entry)."""
    params = {}
    for body_field in spec.fields:
        value = options.get(body_field.schedule_key)
        if value is None:
            raise InvalidSchedule(f"a {spec.name} schedule needs {body_field.schedule_key}")
        try:
            params[body_field.name] = body_field.shape.from_schedule(value, body_field.schedule_key)
        except BodyError as exc:
            raise InvalidSchedule(str(exc)) from None
    return params


def _spans_window_params(options: Mapping[str, Any]) -> dict[str, Any]:
    search = options.get("search")
    if search is not None and (not isinstance(search, str) or not search.strip()):
        raise InvalidSchedule("search must be a non-empty search expression (leave it out to take every span)")
    if options.get("mapping") is None:
        raise InvalidSchedule("a spans-window schedule needs mapping (TARGET=NAMESPACE:KEY, one or more)")
    try:
        contract = spec_of(ImportKind.SPANS).body_field("mapping_contract").shape.from_schedule(
            options["mapping"], "mapping"
        )
    except BodyError as exc:
        raise InvalidSchedule(str(exc)) from None
    return {
        "search": None if search is None else search.strip(),
        "mapping_contract": contract,
        "chunk_size": _chunk_size(options.get("chunk_size")),
    }


def _params(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    if kind in IMPORT_KINDS:
        return _plain_params(spec_of(kind), options)
    if kind == "campaign-when-done":
        if options.get("campaign") is None:
            raise InvalidSchedule(f"a {kind} schedule needs campaign")
        return {"campaign_id": _uuid(options["campaign"], "campaign")}
    if kind == "spans-window":
        return _spans_window_params(options)
    if kind == "explorer-window":
        raw_filter = options.get("filter")
        return {
            "filter": None if raw_filter is None else check_filter(raw_filter),
            "chunk_size": _chunk_size(options.get("chunk_size")),
        }
    # dataset-copy
    if options.get("from_dataset") is None:
        raise InvalidSchedule("a dataset-copy schedule needs from_dataset")
    return {
        "from_dataset_id": _dataset(options["from_dataset"], "from_dataset"),
        "chunk_size": _chunk_size(options.get("chunk_size")),
    }


def _refusals(kind: str, unknown: list[str]) -> str:
    """What to do instead, for the options a plain kind refuses with a reason (``from_dataset`` of dataset)."""
    if kind not in IMPORT_KINDS:
        return ""
    reasons = [
        option.schedule_refusal.reason
        for option in spec_of(kind).options
        if option.schedule_refusal is not None and option.schedule_refusal.schedule_key in unknown
    ]
    return "".join(f" ({reason})" for reason in reasons)


def build_definition(
    name: str,
    *,
    kind: str,
    dataset: Any,
    cron: str | None = None,
    every: str | int | None = None,
    options: Mapping[str, Any] | None = None,
    paused: bool = False,
    snapshot: Any = None,
    snapshot_base: Path | None = None,
) -> ScheduleDefinition:
    """Validate a schedule and return its definition.

    ``options`` holds the kind's own settings under the names in the module docstring; a name the kind does not
    take is refused (it is most likely a typo that would otherwise be silently ignored). ``snapshot`` is the
    snapshot folder, resolved against ``snapshot_base`` (default: the working directory) when relative, created if
    missing and checked writable.

    :raises InvalidSchedule: anything is missing or wrong.
    """
    check_name(name)
    if kind not in _KINDS:
        raise InvalidSchedule(f"unknown schedule kind {kind!r}: use one of {', '.join(KIND_NAMES)}")
    schedule_kind, import_kind, accepted = _KINDS[kind]
    accepted = accepted | _COMMON_OPTIONS
    given = {key: value for key, value in (options or {}).items() if value is not None}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise InvalidSchedule(f"a {kind} schedule does not take {', '.join(unknown)}{_refusals(kind, unknown)}")
    try:
        timing = Timing.parse(cron=cron, every=every)
    except InvalidTiming as exc:
        raise InvalidSchedule(str(exc)) from None
    if dataset is None:
        raise InvalidSchedule(f"a {kind} schedule needs dataset (the target dataset id)")
    params = _params(kind, given)
    dataset_id = _dataset(dataset, "dataset")
    # The same dataset named once by its UUID and once by its slug is not caught here: only the API knows both.
    if params.get("from_dataset_id") == dataset_id:
        raise InvalidSchedule("a dataset-copy schedule cannot copy a dataset into itself (it would copy its copies)")
    if schedule_kind == ScheduleKind.PLAIN:
        try:
            params = validate_params(import_kind, params)
        except InvalidImportRequest as exc:
            raise InvalidSchedule(str(exc)) from None
    try:
        sample_rate = check_sample_rate(given.get("sample"))
    except InvalidSampleRate as exc:
        raise InvalidSchedule(str(exc)) from None
    skip_existing = given.get("skip_existing", True)
    if not isinstance(skip_existing, bool):
        raise InvalidSchedule(f"skip_existing must be true or false, not {skip_existing!r}")
    return ScheduleDefinition(
        name=name,
        kind=schedule_kind,
        import_kind=import_kind,
        dataset_id=dataset_id,
        params=params,
        cron=timing.cron_text,
        every_s=timing.every_s,
        start=_since(given.get("since")),
        paused=bool(paused),
        sample_rate=sample_rate,
        skip_existing=skip_existing,
        snapshot_dir=_snapshot_dir(snapshot, snapshot_base),
    )


def _snapshot_dir(value: Any, base: Path | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSchedule(f"snapshot must be a folder path, got {value!r}")
    try:
        return str(check_snapshot_dir(value, base=base))
    except SnapshotDirError as exc:
        raise InvalidSchedule(f"snapshot: {exc}") from None


def definition_timing(cron: str | None, every_s: int | None) -> Timing:
    """The timing of a stored schedule (its columns were validated when it was stored)."""
    return Timing.parse(cron=cron) if cron is not None else Timing.parse(every=every_s)
