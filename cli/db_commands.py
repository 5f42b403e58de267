"""``dsimport db prune``: delete finished jobs, resolved dead letters and forgettable schedule items by age."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from cli.common import CommandFailed, ledger_sessions, settings_or_fail, utcnow

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_PART = re.compile(r"(\d+)([smhdw])")
# Past this a datetime subtraction overflows; nobody means to keep rows longer than a few millennia.
_LONGEST_S = 1000 * 365 * 86_400


class Age(click.ParamType[int, Any]):
    """A duration such as ``30d``, ``12h``, ``1w2d`` or a number of seconds, at least one day."""

    name = "AGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        # Imported here, not with the module: `dsimport db --help` loads none of the ledger.
        from store.retention import MIN_RETENTION_S

        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text.isdigit():
            seconds = int(text)
        else:
            parts = _PART.findall(text)
            if not parts or _PART.sub("", text):
                self.fail(f"cannot read {value!r}: use e.g. 30d, 12h, 1w2d", param, ctx)
            seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
        if seconds < MIN_RETENTION_S:
            self.fail(
                f"{value!r} is shorter than one day: idempotency keys a producer may still retry with would be "
                "forgotten",
                param,
                ctx,
            )
        if seconds > _LONGEST_S:
            self.fail(f"{value!r} is longer than 1000 years", param, ctx)
        return seconds


@click.command("prune")
@click.option(
    "--older-than",
    "older_than_s",
    type=Age(),
    required=True,
    help="Age past which rows go, e.g. 30d (at least 1d).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def prune_command(older_than_s: int, dry_run: bool, as_json: bool) -> None:
    """Delete finished jobs (with their events), resolved dead letters and schedule items no schedule needs.

    Only jobs in a final status that also started and finished before the cutoff go; a job's idempotency key goes
    with it, so a request repeating that key afterwards creates a new job. Unresolved dead letters and the items
    of dataset-copy schedules are kept. Prints the rows per table.
    """
    from store.errors import StoreError
    from store.retention import prune

    settings = settings_or_fail()
    # A dry run only reads: it does not take SQLite's write lock.
    with ledger_sessions(settings, read_only=dry_run) as sessions:
        try:
            result = prune(sessions, older_than_s=older_than_s, now=utcnow(), dry_run=dry_run, pause_s=0.01)
        except StoreError as exc:
            raise CommandFailed(str(exc)) from None
    counts = result.counts.as_dict()
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "older_than_s": older_than_s, **counts}))
        return
    verb = "would delete" if dry_run else "deleted"
    for table, rows in counts.items():
        click.echo(f"{table:<18} {rows:>8}  {verb}")
