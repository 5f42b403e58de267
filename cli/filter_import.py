"""``dsimport import explorer|spans --filter …``: import what a search finds now, in chunks, or with ``--dry-run``
show what that would import (count, first ids, sampled out, requested before, duplicates) and import nothing.

The search, the sample, the chunks and the keys that keep a re-run from importing anything twice are
:mod:`triggers.filter_import`'s; this module parses, calls and prints. The ledger, the client and Celery are
imported by the function that uses them: the help loads none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from cli.common import MOMENT, CommandFailed, FiniteFloatRange, api_client, ledger_sessions, parse_json_option, utcnow
from cli.kind_options import fixed_params
from import_kinds import MAX_IDS, ImportKind, ImportKindSpec, Option, Resolver

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from triggers.filter_import import DuplicateCheck, FilterImportPlan, FilterImportPreview, FilterQuery
    from worker.settings import Settings

__all__ = ["DEFAULT_CHUNK_SIZE", "refuse_search_options", "run_search_import", "search_options"]

DEFAULT_CHUNK_SIZE = 100
"""Items per job, as a window schedule's default."""

# The options of a search, each with the flag a message names: (dest, flag).
_SEARCH_ONLY = (
    ("since", "--since"),
    ("until", "--until"),
    ("sample", "--sample"),
    ("chunk_size", "--chunk-size"),
    ("dry_run", "--dry-run"),
    ("first", "--first"),
    ("as_json", "--json"),
)


def search_options(spec: ImportKindSpec) -> list[click.Parameter]:
    """The options that go with a kind's search option (``--filter``); none for a kind without one."""
    search = spec.search_option
    if search is None:
        return []
    return [
        click.Option(["--since"], type=MOMENT, default=None, help=f"With {search.flag}: items from this time on."),
        click.Option(["--until"], type=MOMENT, default=None, help=f"With {search.flag}: items before this time."),
        click.Option(
            ["--sample"],
            type=FiniteFloatRange(0, 1, min_open=True),
            default=None,
            help=f"With {search.flag}: import only this share of the items found, 0 < R <= 1, chosen by a hash of "
            "each item's id (as a window schedule's --sample: a re-run picks the same ones).",
        ),
        click.Option(
            ["--chunk-size"],
            type=click.IntRange(1, MAX_IDS),
            default=None,
            help=f"With {search.flag}: items per import job (default {DEFAULT_CHUNK_SIZE}).",
        ),
        click.Option(
            ["--dry-run"],
            is_flag=True,
            help=f"With {search.flag}: show what would be imported now (count, first ids, sampled out, requested "
            "by an earlier run, duplicates) and import nothing.",
        ),
        click.Option(
            ["--first"], type=click.IntRange(0, 1000), default=None, help="With --dry-run: ids listed (default 10)."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="With --dry-run: one JSON object instead of lines."),
    ]


def refuse_search_options(spec: ImportKindSpec, values: dict[str, Any]) -> None:
    """A search's own options given without the search: one line saying so."""
    search = spec.search_option
    if search is None:
        return
    given = [flag for dest, flag in _SEARCH_ONLY if values.get(dest) not in (None, False)]
    if given:
        raise click.UsageError(f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with {search.flag}")


def _search_value(option: Option, text: str) -> Any:
    """The search as the query holds it: an explorer filter, checked as a schedule's; a spans search expression."""
    if option.resolver is Resolver.SEARCH_EVENTS:
        from triggers.schedules.specs import InvalidSchedule, check_filter

        try:
            return check_filter(parse_json_option(text, option.flag))
        except InvalidSchedule as exc:
            raise click.BadParameter(str(exc), param_hint=option.flag) from None
    if not text.strip():
        raise click.BadParameter("the search expression is empty", param_hint=option.flag)
    return text.strip()


def run_search_import(
    spec: ImportKindSpec, option: Option, values: dict[str, Any], lazy: Callable[[], Settings]
) -> None:
    """Plan the search's import and print it (``--dry-run``), or request it and print the jobs."""
    from triggers.filter_import import FilterQuery

    dry_run = bool(values["dry_run"])
    if dry_run and values["wait"]:
        raise click.UsageError("--wait follows the jobs of an import: --dry-run makes none")
    for dest, flag in (("first", "--first"), ("as_json", "--json")):
        if values[dest] not in (None, False) and not dry_run:
            raise click.UsageError(f"{flag} goes with --dry-run")
    search = _search_value(option, values[option.dest])
    fixed = fixed_params(spec, values, lazy)
    try:
        query = FilterQuery(
            kind=ImportKind(spec.name),
            dataset_id=values["dataset_id"],
            search=search,
            since=values["since"],
            until=values["until"],
            sample_rate=None if values["sample"] in (None, 1) else values["sample"],
            fixed_params=fixed,
        )
    except ValueError as exc:
        raise click.UsageError(f"--since and --until: {exc}") from None
    settings = lazy()
    chunk_size = values["chunk_size"] or DEFAULT_CHUNK_SIZE
    with ledger_sessions(settings, read_only=dry_run) as sessions:
        plan = _plan(sessions, settings, query, chunk_size, values)
        if dry_run:
            _print_preview(plan.preview, as_json=bool(values["as_json"]))
            return
        job_ids = _request(sessions, settings, plan, skip_existing=bool(values["skip_existing"]))
    if values["wait"]:
        _follow_all(settings, job_ids)


def _plan(
    sessions: sessionmaker[Session], settings: Settings, query: FilterQuery, chunk_size: int, values: dict[str, Any]
) -> FilterImportPlan:
    from api_client import ApiError
    from triggers.filter_import import FIRST_IDS, FilterImportError, plan_filter_import
    from triggers.filter_import.query import SearchError

    first = FIRST_IDS if values["first"] is None else values["first"]
    try:
        return plan_filter_import(
            sessions,
            lambda: api_client(settings),
            query,
            chunk_size=chunk_size,
            key=values["idempotency_key"],
            first=first,
            duplicates=_duplicates(sessions, settings, query) if values["skip_existing"] else None,
        )
    except FilterImportError as exc:
        raise click.UsageError(str(exc)) from None
    except (SearchError, ApiError) as exc:
        raise CommandFailed(f"the search failed: {exc}") from None


def _duplicates(sessions: sessionmaker[Session], settings: Settings, query: FilterQuery) -> DuplicateCheck:
    """--skip-existing: the items the target holds already, by the origin each names (read without writing)."""
    from import_kinds.item_keys import origin_key
    from jobs.skip_existing import held_now

    def held(dataset_id: str, items: Mapping[str, Any]) -> set[str]:
        origins = {key: origin_key(str(query.kind), item) for key, item in items.items()}
        wanted = [origin for origin in origins.values() if origin is not None]
        with api_client(settings) as client:
            found = held_now(
                sessions, client, dataset_id, wanted, now=utcnow(), max_age_s=settings.skip_existing_refresh_s
            )
        return {key for key, origin in origins.items() if origin in found}

    return held


def _request(
    sessions: sessionmaker[Session], settings: Settings, plan: FilterImportPlan, *, skip_existing: bool
) -> list[str]:
    from jobs.request_import import InvalidImportRequest
    from store.errors import StoreError
    from tasks.names import SUBMIT
    from triggers.filter_import import request_filter_import
    from worker.celery_app import sender_app

    preview = plan.preview
    left_out = (
        f"{preview.offered} found, {preview.sampled_out} sampled out, "
        f"{preview.already_requested} requested by an earlier run (key {preview.key})"
    )
    if not plan.items:
        click.echo(f"nothing to import: {left_out}", err=True)
        return []
    app = sender_app(settings)

    def send(job_ids: list[str]) -> None:
        for job_id in job_ids:
            app.send_task(SUBMIT, args=[job_id])

    try:
        requested = request_filter_import(
            sessions,
            plan,
            origin="cli",
            now=utcnow(),
            deadline_s=settings.job_deadline_s,
            send=send,
            skip_existing=skip_existing,
        )
    except InvalidImportRequest as exc:
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:  # the ledger stayed locked past DSIMPORT_DB_LOCKED_RETRY_S: nothing was recorded
        raise CommandFailed(str(exc)) from None
    finally:
        app.close()
    for job_id in requested.job_ids:
        click.echo(job_id)
    click.echo(f"requested {preview.to_import} in {len(requested.job_ids)} job(s): {left_out}", err=True)
    if requested.taken:
        raise CommandFailed(
            f"another run of this command wrote {', '.join(requested.taken)} first: their items were not requested "
            "by this run; run it again to request them"
        )
    return requested.job_ids


def _follow_all(settings: Settings, job_ids: list[str]) -> None:
    from cli.import_commands import follow
    from store.models import JobStatus

    ended: dict[str, str] = {}
    with ledger_sessions(settings, read_only=True) as sessions:
        for job_id in job_ids:
            ended[job_id] = follow(sessions, job_id)
    failed = [f"{job_id} ended {status}" for job_id, status in ended.items() if status != JobStatus.COMPLETED]
    if failed:
        raise CommandFailed(f"{len(failed)} of {len(job_ids)} jobs did not complete: {'; '.join(failed)}")


def _window_text(preview: FilterImportPreview) -> str:
    if preview.since is None and preview.until is None:
        return "any time"
    return f"{preview.since or '…'} .. {preview.until or '…'}"


def _print_preview(preview: FilterImportPreview, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(preview.as_dict(), indent=2))
        return
    rate = "none (every item)" if preview.sample_rate is None else f"{preview.sample_rate:g}"
    duplicates = "not checked (--skip-existing off)" if preview.duplicates is None else preview.duplicates
    search = preview.search if isinstance(preview.search, str) else json.dumps(preview.search)
    for label, value in (
        ("import", f"{preview.kind} into {preview.dataset_id}"),
        ("search", search),
        ("window", _window_text(preview)),
        ("sample rate", rate),
        ("offered", preview.offered),
        ("sampled out", preview.sampled_out),
        ("already requested", f"{preview.already_requested} (by {preview.earlier_jobs} earlier job(s) of key "
                              f"{preview.key})"),
        ("duplicates", duplicates),
        ("would import", f"{preview.to_import} in {preview.chunks} job(s) of up to {preview.chunk_size}"),
    ):  # fmt: skip
        click.echo(f"{label:17} {value}")
    shown = len(preview.first_ids)
    if shown:
        more = f" (first {shown} of {preview.to_import})" if shown < preview.to_import else ""
        click.echo(f"ids{more}:")
        for item_id in preview.first_ids:
            click.echo(f"  {item_id}")
