"""``dsimport schedules``: add, list, show, preview, pause, resume, remove, run beat schedules now, backfill; list
their snapshots.

Changes go to the schedules table; a running beat picks them up within ``DSIMPORT_SCHEDULES_REFRESH_S``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cli.common import (
    DATASET,
    UUID,
    CommandFailed,
    api_client,
    open_ledger,
    parse_json_option,
    settings_or_fail,
    utcnow,
)
from cli.kind_options import kind_commands, schedule_options
from import_kinds import CommandGroup, ImportKind, ImportKindSpec, spec_of
from tasks.names import FIRE_SCHEDULE, RUN_BACKFILL
from triggers.schedules.chunk_sizes import MAX_CHUNK_SIZE

# The ledger, the schedule specs and Celery are imported by the commands that use them: the help loads none.
if TYPE_CHECKING:
    from store.models import Schedule
    from worker.settings import Settings

__all__ = ["check_schedules_file", "schedules_group"]


def check_schedules_file(settings: Settings) -> None:
    """Refuse to start beat on a schedules file that does not validate: one line naming the file and the table."""
    from triggers.schedules.schedule_file import ScheduleFileError, load_schedule_file

    if settings.schedules_file is None:
        return
    try:
        load_schedule_file(settings.schedules_file)
    except ScheduleFileError as exc:
        raise CommandFailed(str(exc)) from None


@click.group()
def schedules_group() -> None:
    """Beat schedules: imports started on a cron or a period by `dsimport beat`."""


# --- add ------------------------------------------------------------------------------------------------------


class _AddGroup(click.Group):
    """The `add` group: its timing options may follow NAME (`add NAME --every 1h KIND …`), so it parses options
    interspersed and passes the ones it does not know on to the kind's command. `--help` after the kind is the
    kind's, not this group's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        kind_at = next((i for i, arg in enumerate(args) if arg in self.commands), None)
        if kind_at is None or not any(arg in ("--help", "-h") for arg in args[kind_at + 1 :]):
            return super().parse_args(ctx, args)
        super().parse_args(ctx, args[: kind_at + 1])
        ctx.args = [*ctx.args, *args[kind_at + 1 :]]
        return ctx.args


@schedules_group.group(
    "add", cls=_AddGroup, context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True}
)
@click.argument("name")
@click.option("--cron", default=None, help='Cron expression, in UTC (e.g. "0 * * * *").')
@click.option("--every", default=None, help="Period aligned to the epoch: 30s, 10m, 1h30m, 1d.")
@click.option("--paused", is_flag=True, help="Create the schedule paused.")
@click.option(
    "--skip-existing/--no-skip-existing",
    default=True,
    show_default=True,
    help="Leave out the items the target dataset already holds (by payload, or by the event, conversation or span "
    "a record came from).",
)
@click.option(
    "--snapshot",
    "snapshot",
    metavar="DIR",
    default=None,
    help="After each completed import, export the target dataset to DIR/<dataset>/<time>-<job>.jsonl and record "
    "its record count and SHA-256 (`schedules snapshots NAME`). Created if missing; must be writable.",
)
def add_group(
    name: str, cron: str | None, every: str | None, paused: bool, skip_existing: bool, snapshot: str | None
) -> None:
    """Add schedule NAME, firing on --cron or --every, of KIND (the kinds take the options of `dsimport import`)."""


# spans-window's --map is the spans import's: the same text, the same reading.
_SPANS_MAP = next(option for option in spec_of(ImportKind.SPANS).options if option.flag == "--map")


def _target(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dataset", "dataset_id", type=DATASET, required=True, help="Target dataset id.")(func)


def _sample(func: Callable[..., Any]) -> Callable[..., Any]:
    # A float here, checked in (0, 1] by the schedule spec, so the command line and the file say the same words.
    return click.option(
        "--sample",
        "sample",
        type=float,
        default=None,
        help="Import only this share of the items found, 0 < R <= 1, chosen by a hash of each item's id "
        "(re-runs and later fires pick the same ones).",
    )(func)


def _chunk_size(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--chunk-size",
        type=click.IntRange(1, MAX_CHUNK_SIZE),
        default=100,
        show_default=True,
        help="Ids per import job.",
    )(func)


def _add(kind: str, dataset_id: str, options: dict[str, Any]) -> None:
    from store.models import ScheduleSource
    from store.schedules import ScheduleError, create_schedule
    from triggers.schedules.specs import InvalidSchedule, build_definition
    from triggers.schedules.views import schedule_to_dict

    # The name and timing are the `add` group's own parameters, parsed before the kind's.
    group = click.get_current_context().parent
    assert group is not None
    params = group.params
    if (params["cron"] is None) == (params["every"] is None):
        raise click.UsageError("give exactly one of --cron and --every")
    try:
        definition = build_definition(
            params["name"],
            kind=kind,
            dataset=dataset_id,
            cron=params["cron"],
            every=params["every"],
            options={**options, "skip_existing": params["skip_existing"]},
            paused=params["paused"],
            snapshot=params["snapshot"],
        )
    except InvalidSchedule as exc:
        raise click.UsageError(str(exc)) from None
    now = utcnow()
    with open_ledger(settings_or_fail()) as sessions, sessions() as session:
        try:
            schedule = create_schedule(session, definition, source=ScheduleSource.CLI, now=now)
        except ScheduleError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
        row = schedule_to_dict(schedule, None, {}, now=now)
    next_fire = row["next_fire_at"] or "-"
    snapshots = f", snapshots to {definition.snapshot_dir}" if definition.snapshot_dir else ""
    click.echo(f"{row['name']}: {row['kind']}, {row['timing']}, {row['state']}, next fire {next_fire}{snapshots}")


def _add_plain(spec: ImportKindSpec, values: dict[str, Any]) -> None:
    _add(spec.name, values["dataset_id"], schedule_options(spec, values))


def _target_option() -> list[click.Parameter]:
    return [click.Option(["--dataset", "dataset_id"], type=DATASET, required=True, help="Target dataset id.")]


# The plain kinds: one import of each import kind, with the same body on every fire.
for _command in kind_commands(CommandGroup.SCHEDULE, _target_option, _add_plain):
    add_group.add_command(_command)


@add_group.command("explorer-window")
@_target
@click.option("--filter", "filter_json", default=None, help="Explorer filter as JSON (a condition or an AND/OR group).")
@_chunk_size
@click.option("--since", default=None, help="Start of the first window, ISO-8601 (default: now).")
@_sample
def add_explorer_window(
    dataset_id: str, filter_json: str | None, chunk_size: int, since: str | None, sample: float | None
) -> None:
    """Import the explorer events created since the last fire (matching --filter), in chunks; each event once."""
    filters = None if filter_json is None else parse_json_option(filter_json, "--filter")
    _add(
        "explorer-window",
        dataset_id,
        {"filter": filters, "chunk_size": chunk_size, "since": since, "sample": sample},
    )


@add_group.command("spans-window")
@_target
@click.option("--search", default=None, help="Spans search expression (default: every span).")
@click.option("--map", "mappings", multiple=True, required=True, help=_SPANS_MAP.help)
@_chunk_size
@click.option("--since", default=None, help="Start of the first window, ISO-8601 (default: now).")
@_sample
def add_spans_window(
    dataset_id: str,
    search: str | None,
    mappings: tuple[str, ...],
    chunk_size: int,
    since: str | None,
    sample: float | None,
) -> None:
    """Import the telemetry spans found since the last fire (matching --search), in chunks; each span once."""
    _add(
        "spans-window",
        dataset_id,
        {"search": search, "mapping": list(mappings), "chunk_size": chunk_size, "since": since, "sample": sample},
    )


@add_group.command("campaign-when-done")
@_target
@click.option("--campaign", "campaign_id", type=UUID, required=True, help="Campaign to import once it completes.")
def add_campaign_when_done(dataset_id: str, campaign_id: str) -> None:
    """Check the campaign on every fire; import it once when COMPLETED, then stop."""
    _add("campaign-when-done", dataset_id, {"campaign": campaign_id})


@add_group.command("dataset-copy")
@_target
@click.option("--from-dataset", "from_dataset", type=DATASET, required=True, help="Dataset whose records to copy.")
@_chunk_size
def add_dataset_copy(dataset_id: str, from_dataset: str, chunk_size: int) -> None:
    """Copy the records of --from-dataset this schedule has not copied yet, in chunks."""
    _add("dataset-copy", dataset_id, {"from_dataset": from_dataset, "chunk_size": chunk_size})


# --- read -----------------------------------------------------------------------------------------------------


@schedules_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """List schedules with their last and next fire."""
    from store.schedule_runs import jobs_of_runs, last_run
    from store.schedules import list_schedules
    from triggers.schedules.lag import is_lagging
    from triggers.schedules.views import schedule_to_dict

    now = utcnow()
    settings = settings_or_fail()
    with open_ledger(settings, read_only=True) as sessions, sessions() as session:
        rows = []
        for schedule in list_schedules(session):
            latest = last_run(session, schedule.id)
            jobs = jobs_of_runs(session, [latest] if latest else [])
            row = schedule_to_dict(schedule, latest, jobs, now=now)
            row["lagging"] = is_lagging(row["watermark_lag_s"], settings.watermark_lag_alert_s)
            rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        f"{'NAME':24}  {'KIND':18}  {'TIMING':20}  {'STATE':8}  {'SAMPLE':6}  {'LAST FIRE':20}  {'LAST RUN':9}  "
        f"{'NEXT FIRE':20}  WATERMARK LAG"
    )
    for row in rows:
        last = row["last_run"] or {}
        click.echo(
            f"{row['name']:24}  {row['kind']:18}  {row['timing']:20}  {row['state']:8}  "
            f"{_rate_text(row['sample_rate']):6}  {row['last_fire_at'] or '-':20}  {last.get('status', '-'):9}  "
            f"{row['next_fire_at'] or '-':20}  {_lag_text(row)}"
        )


def _rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:g}"


def _lag_text(row: dict[str, Any]) -> str:
    lag_s = row["watermark_lag_s"]
    if lag_s is None:
        return "-"
    return f"{lag_s:.0f}s LAGGING" if row["lagging"] else f"{lag_s:.0f}s"


@schedules_group.command("show")
@click.argument("name")
@click.option("--runs", "run_count", type=click.IntRange(1, 1000), default=10, show_default=True, help="Runs shown.")
@click.option("--json", "as_json", is_flag=True)
def show_command(name: str, run_count: int, as_json: bool) -> None:
    """Show one schedule: definition, state, next fire, and its latest runs with their jobs' outcomes."""
    from store.schedule_backfills import backfill_totals, list_backfills
    from store.schedule_items import item_counts
    from store.schedule_runs import jobs_of_runs, list_runs
    from store.snapshots import list_snapshots, snapshot_backlog
    from triggers.schedules.views import backfill_to_dict, run_to_dict, schedule_to_dict, snapshot_to_dict

    now = utcnow()
    with open_ledger(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        schedule = _require(session, name)
        runs = list_runs(session, schedule.id, limit=run_count)
        jobs = jobs_of_runs(session, runs)
        row = schedule_to_dict(schedule, runs[0] if runs else None, jobs, now=now)
        row["runs"] = [run_to_dict(run, jobs) for run in runs]
        counts = item_counts(session, schedule.id)
        row["items"] = {"imported": counts.total, "retried": counts.retried, "given_up": counts.given_up}
        row["copy_page"] = schedule.copy_page
        row["source_file"] = schedule.source_file
        row["backfills"] = [
            backfill_to_dict(backfill, backfill_totals(session, backfill.id))
            for backfill in list_backfills(session, schedule.id)
        ]
        row["snapshot_dir"] = schedule.snapshot_dir
        latest_snapshots = list_snapshots(session, schedule.id, limit=_LATEST_SNAPSHOTS)
        row["snapshots"] = [snapshot_to_dict(snapshot) for snapshot in latest_snapshots]
        backlog = snapshot_backlog(session, schedule.id)
        row["snapshots_pending"] = backlog.pending
        row["snapshots_failed"] = backlog.failed
        row["snapshot_error"] = backlog.last_error
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    for key in ("name", "kind", "timing", "state", "source", "source_file", "dataset_id", "params", "sample_rate",
                "skip_existing", "snapshot_dir", "watermark", "copy_page", "last_fire_at", "next_fire_at",
                "finished_reason", "created_at"):  # fmt: skip
        value = row[key]
        if value is not None:
            click.echo(f"{key:16} {json.dumps(value) if isinstance(value, dict) else value}")
    items = row["items"]
    if items["imported"]:
        # Given-up items failed their chunk's last retry: the schedule will not request them again.
        click.echo(f"{'items':16} {items['imported']} requested, {items['retried']} retried, "
                   f"{items['given_up']} given up")  # fmt: skip
    if row["backfills"]:
        click.echo("backfills (latest first):")
        for backfill in row["backfills"]:
            click.echo(f"  {backfill['id']}  {_backfill_text(backfill)}")
    _echo_snapshots(row)
    click.echo("runs (latest first):" if row["runs"] else "runs: none yet")
    for run in row["runs"]:
        jobs_text = ", ".join(f"{job['id']} {job['status']}" for job in run["jobs"]) or "no job"
        message = f"  ({run['message']})" if run["message"] else ""
        click.echo(f"  {run['fire_time']}  {run['status']:9}  {run['trigger']:8}  {jobs_text}{message}")


_LATEST_SNAPSHOTS = 3


def _echo_snapshots(row: dict[str, Any]) -> None:
    """The latest snapshots of `schedules show`, and those still owed (pending, given up) with the last error."""
    if row["snapshot_dir"] is None and not row["snapshots"]:
        return
    owed = []
    if row["snapshots_pending"]:
        owed.append(f"{row['snapshots_pending']} job(s) waiting")
    if row["snapshots_failed"]:
        owed.append(f"{row['snapshots_failed']} job(s) given up")
    if row["snapshot_error"] and owed:
        owed.append(f"last error: {row['snapshot_error']}")
    if owed:
        click.echo(f"{'snapshots owed':16} {'; '.join(owed)}")
    if not row["snapshots"]:
        click.echo("snapshots: none yet")
        return
    click.echo("snapshots (latest first; all: `dsimport schedules snapshots NAME`):")
    for snapshot in row["snapshots"]:
        click.echo(_snapshot_line(snapshot))


def _snapshot_line(snapshot: dict[str, Any]) -> str:
    return (
        f"  {snapshot['created_at']}  {snapshot['record_count']:>8} records  sha256 {snapshot['sha256']}  "
        f"{snapshot['path']}"
    )


@schedules_group.command("snapshots")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
def snapshots_command(name: str, as_json: bool) -> None:
    """List every snapshot of schedule NAME, newest first: file, record count, SHA-256, the jobs it follows."""
    from store.snapshots import list_snapshots
    from triggers.schedules.views import snapshot_to_dict

    with open_ledger(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        schedule = _require(session, name)
        rows = [snapshot_to_dict(snapshot) for snapshot in list_snapshots(session, schedule.id)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        hint = "" if schedule.snapshot_dir else " (it takes none: add it with --snapshot)"
        click.echo(f"{name}: no snapshots{hint}")
        return
    click.echo(f"{'CREATED':32}  {'RECORDS':>8}  {'BYTES':>10}  {'SHA256':64}  {'JOBS':4}  PATH")
    for row in rows:
        click.echo(
            f"{row['created_at']:32}  {row['record_count']:>8}  {row['bytes']:>10}  {row['sha256']:64}  "
            f"{len(row['job_ids']):>4}  {row['path']}"
        )


@schedules_group.command("preview")
@click.argument("name")
@click.option("--first", type=click.IntRange(0, 1000), default=10, show_default=True, help="Ids listed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def preview_command(name: str, first: int, as_json: bool) -> None:
    """Show what a fire of window schedule NAME would import now (count, first ids, sampled out, duplicates the
    target holds already), importing nothing."""
    from triggers.schedules.preview import PreviewError, preview_schedule

    settings = settings_or_fail()
    with open_ledger(settings, read_only=True) as sessions:
        try:
            preview = preview_schedule(
                sessions,
                lambda: api_client(settings),
                name,
                now=utcnow(),
                settle_lag_s=settings.schedule_settle_lag_s,
                first=first,
                index_max_age_s=settings.skip_existing_refresh_s,
            )
        except PreviewError as exc:
            raise CommandFailed(str(exc)) from None
    if as_json:
        click.echo(json.dumps(preview.as_dict(), indent=2))
        return
    rate = "none (every item)" if preview.sample_rate is None else f"{preview.sample_rate:g}"
    for label, value in (
        ("schedule", f"{preview.schedule} ({preview.kind})"),
        ("window", f"{preview.window_start} .. {preview.window_end}"),
        ("sample rate", rate),
        ("offered", preview.offered),
        ("sampled out", preview.sampled_out),
        ("already imported", preview.already_imported),
        ("duplicates", "not checked (skip_existing off)" if preview.duplicates is None else preview.duplicates),
        ("would import", preview.to_import),
    ):
        click.echo(f"{label:17} {value}")
    shown = len(preview.first_ids)
    if shown:
        more = f" (first {shown} of {preview.to_import})" if shown < preview.to_import else ""
        click.echo(f"ids{more}:")
        for item_id in preview.first_ids:
            click.echo(f"  {item_id}")


def _require(session: Any, name: str) -> Schedule:
    from store.schedules import ScheduleError, require_schedule

    try:
        return require_schedule(session, name, include_removed=True)
    except ScheduleError as exc:
        raise CommandFailed(str(exc)) from None


# --- change ---------------------------------------------------------------------------------------------------


def _set_paused(name: str, paused: bool) -> None:
    from store.schedules import ScheduleError, set_paused

    with open_ledger(settings_or_fail()) as sessions, sessions() as session:
        try:
            set_paused(session, name, paused, now=utcnow())
        except ScheduleError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    click.echo(f"{name}: {'paused' if paused else 'resumed'}")


@schedules_group.command("pause")
@click.argument("name")
def pause_command(name: str) -> None:
    """Stop firing a schedule (file schedules too) until it is resumed."""
    _set_paused(name, True)


@schedules_group.command("resume")
@click.argument("name")
def resume_command(name: str) -> None:
    """Fire a paused schedule again, from its next fire time (missed fires are not caught up)."""
    _set_paused(name, False)


@schedules_group.command("remove")
@click.argument("name")
@click.option(
    "--forget",
    is_flag=True,
    help="Also delete its run history, imported-id list and snapshot records (not the snapshot files): re-added, it "
    "would import everything again.",
)
def remove_command(name: str, forget: bool) -> None:
    """Stop a schedule for good, keeping its history and imported-id list (re-adding NAME brings them back).
    File schedules: edit the file (--forget works on them once the file no longer has them)."""
    from store.schedules import ScheduleError, remove_schedule

    with open_ledger(settings_or_fail()) as sessions, sessions() as session:
        try:
            remove_schedule(session, name, now=utcnow(), forget=forget)
        except ScheduleError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    click.echo(f"{name}: {'removed and forgotten' if forget else 'removed (history kept; --forget deletes it)'}")


@schedules_group.command("run-now")
@click.argument("name")
def run_now_command(name: str) -> None:
    """Fire a schedule now (even a paused one), through a worker like any fire; prints the fire time."""
    from triggers.schedules.fire_times import fire_time_iso

    settings = settings_or_fail()
    with open_ledger(settings, read_only=True) as sessions, sessions() as session:
        schedule = _require(session, name)
        if schedule.removed_at is not None:
            raise CommandFailed(f"schedule {name} was removed")
        if schedule.finished_at is not None:
            raise CommandFailed(f"schedule {name} is finished: {schedule.finished_reason}")
    fire_time = fire_time_iso(utcnow())
    from worker.celery_app import sender_app

    app = sender_app(settings)
    try:
        app.send_task(FIRE_SCHEDULE, args=[name, fire_time, "manual"])
    except Exception as exc:  # kombu raises its own errors when the broker cannot be reached
        raise CommandFailed(f"could not send the fire of {name}: {exc}") from None
    finally:
        app.close()
    click.echo(f"{name}: fire {fire_time} sent")


@schedules_group.command("backfill")
@click.argument("name")
@click.option("--since", required=True, help="Start of the range: ISO-8601 (UTC when no offset) or e.g. '2d ago'.")
@click.option(
    "--until", required=True, help="End of the range (excluded), as --since; not after now less the settle lag."
)
@click.option("--step", default="1h", show_default=True, help="Length of one chunk: 30m, 1h, 1d.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wait up to this many seconds for the backfill to finish, then print a summary.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def backfill_command(name: str, since: str, until: str, step: str, wait_s: float | None, as_json: bool) -> None:
    """Import what window schedule NAME would have imported from --since to --until, chunk by chunk, through the
    workers; each item once, the live watermark untouched. The same command again resumes it."""
    from store.schedule_backfills import backfill_totals
    from triggers.schedules.backfill import BackfillError, parse_moment, request_backfill
    from triggers.schedules.fire_times import InvalidTiming, parse_every
    from triggers.schedules.views import backfill_to_dict

    now = utcnow()
    try:
        step_s = parse_every(step)
    except InvalidTiming as exc:
        raise click.BadParameter(str(exc), param_hint="--step") from None
    try:
        start = parse_moment(since, now=now)
    except BackfillError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        end = parse_moment(until, now=now)
    except BackfillError as exc:
        raise click.BadParameter(str(exc), param_hint="--until") from None
    if start >= end:
        raise click.UsageError(f"--since {since!r} must be before --until {until!r}")
    settings = settings_or_fail()
    with open_ledger(settings) as sessions, sessions() as session:
        try:
            started = request_backfill(
                session, name, since=start, until=end, step_s=step_s, now=now,
                settle_lag_s=settings.schedule_settle_lag_s, prune_older_than_s=settings.prune_older_than_s,
            )  # fmt: skip
        except BackfillError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
        row = backfill_to_dict(started.backfill, backfill_totals(session, started.backfill.id))
    verb = "started" if started.created else "resumed" if row["status"] == "RUNNING" else "found"
    if row["status"] == "RUNNING":
        _send_backfill(settings, row["id"])
    if wait_s is not None:
        row = _wait_for_backfill(settings, row["id"], wait_s)
    if as_json:
        click.echo(json.dumps({**row, "created": started.created}, indent=2))
    else:
        click.echo(f"{name}: backfill {row['id']} {verb}: {_backfill_text(row)}")
        if row["status"] == "RUNNING":
            click.echo(f"follow it with: dsimport schedules show {name}")
    if wait_s is not None and row["status"] != "DONE":
        raise CommandFailed(f"backfill {row['id']} is not done after {wait_s:g}s ({row['status']})")


def _send_backfill(settings: Settings, backfill_id: int) -> None:
    from worker.celery_app import sender_app

    app = sender_app(settings)
    try:
        app.send_task(RUN_BACKFILL, args=[backfill_id])
    except Exception as exc:  # kombu raises its own errors when the broker cannot be reached
        # Recorded already: the workers' resume sweep sends it once the broker is back.
        click.echo(f"backfill {backfill_id} recorded but not sent ({exc}); the workers will start it", err=True)
    finally:
        app.close()


def _wait_for_backfill(settings: Settings, backfill_id: int, wait_s: float) -> dict[str, Any]:
    import time

    from store.models import BackfillStatus, ScheduleBackfill
    from store.schedule_backfills import backfill_totals
    from triggers.schedules.views import backfill_to_dict

    deadline = time.monotonic() + wait_s
    with open_ledger(settings, read_only=True) as sessions:
        while True:
            with sessions() as session:
                backfill = session.get(ScheduleBackfill, backfill_id)
                if backfill is None:
                    raise CommandFailed(f"backfill {backfill_id} is gone (its schedule was forgotten?)")
                row = backfill_to_dict(backfill, backfill_totals(session, backfill_id))
            if backfill.status != BackfillStatus.RUNNING or time.monotonic() >= deadline:
                return row
            time.sleep(0.5)


def _backfill_text(row: dict[str, Any]) -> str:
    message = f"  ({row['message']})" if row["message"] else ""
    return (
        f"{row['since']} .. {row['until']} by {row['step_s']}s, {row['chunks_done']}/{row['chunks']} chunks, "
        f"{row['status']}: {row['offered']} offered, {row['sampled_out']} sampled out, {row['requested']} requested "
        f"in {row['jobs']} job(s){message}"
    )


@schedules_group.command("sync")
def sync_command() -> None:
    """Sync DSIMPORT_SCHEDULES_FILE into the schedules table now (beat does it at start and on change)."""
    from triggers.schedules.schedule_file import ScheduleFileError, load_schedule_file, sync_schedule_file

    settings = settings_or_fail()
    if settings.schedules_file is None:
        raise CommandFailed("DSIMPORT_SCHEDULES_FILE is not set")
    try:
        definitions = load_schedule_file(settings.schedules_file)
    except ScheduleFileError as exc:
        raise CommandFailed(str(exc)) from None
    with open_ledger(settings) as sessions:
        report = sync_schedule_file(sessions, definitions, now=utcnow(), path=settings.schedules_file)
    for label, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        if names:
            click.echo(f"{label}: {', '.join(names)}")
    for name in report.conflicts:
        click.echo(f"not synced: {name} exists as a command-line schedule", err=True)
    for name in report.foreign:
        click.echo(f"not synced: {name} is defined by another schedules file", err=True)
    if not report.changed and not report.conflicts and not report.foreign:
        click.echo("schedules table already matches the file")
