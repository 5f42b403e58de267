"""``dsimport datasets``: the datasets of the API (or of the emulator ``dsimport up`` runs), read and created.

Every list follows all its pages. Each command prints a table, or JSON with ``--json``. A dataset is named by its
UUID or its workspace-scoped slug. A dataset the API does not know exits 1 with one line; so does an API that does not
answer. The API client is imported by the commands that call it: `dsimport datasets --help` loads none of it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import DATASET, CommandFailed, api_client, settings_or_fail

if TYPE_CHECKING:
    from api_client import DatasetsClient
    from api_client.models import Dataset, DatasetImportTask, DatasetRecord

_JSON = click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")


@click.group()
def datasets_group() -> None:
    """List, show, export and create the API's datasets."""


@contextmanager
def _client(dataset: str | None = None) -> Iterator[DatasetsClient]:
    """A client on the settings' API; its errors become one line (``dataset``: the one the command is about)."""
    from api_client import ApiError, NotFoundError, RouteNotFoundError, TransportError

    settings = settings_or_fail()
    with api_client(settings) as client:
        try:
            yield client
        except RouteNotFoundError as exc:
            raise CommandFailed(f"the API at {settings.api_base_url} has no such route: {exc}") from None
        except NotFoundError as exc:
            if dataset is None:
                raise CommandFailed(f"the API refused: {exc}") from None
            raise CommandFailed(f"no dataset {dataset} at {settings.api_base_url}") from None
        except TransportError as exc:
            raise CommandFailed(f"cannot reach the API at {settings.api_base_url}: {exc.message}") from None
        except ApiError as exc:
            raise CommandFailed(f"the API refused: {exc}") from None


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _dataset_dict(dataset: Dataset) -> dict[str, Any]:
    return dataset.model_dump(mode="json")


def _record_dict(record: DatasetRecord) -> dict[str, Any]:
    return {**record.model_dump(mode="json"), "payload": record.payload_dict()}


def _task_dict(task: DatasetImportTask) -> dict[str, Any]:
    return task.model_dump(mode="json")


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# A table column: its header, its width (0: the last, unpadded) and how a row's cell is written.
Column = tuple[str, int, Callable[[dict[str, Any]], str]]


def _print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[Column]) -> None:
    if as_json:
        _echo_json(rows)
        return
    widths = [width for _, width, _ in columns]
    for cells in ([header for header, _, _ in columns], *([cell(row) for _, _, cell in columns] for row in rows)):
        click.echo("  ".join(f"{text:{width}}" if width else text for text, width in zip(cells, widths, strict=True)))


def _progress(row: dict[str, Any]) -> str:
    return "?" if row["progress"] is None else f"{row['progress']}%"


@datasets_group.command("list")
@click.option("--q", "query", default=None, metavar="TEXT", help="Only datasets that match TEXT (the API's match).")
@_JSON
def list_command(query: str | None, as_json: bool) -> None:
    """List every dataset (all pages)."""
    with _client() as client:
        rows = [_dataset_dict(dataset) for dataset in client.iter_datasets(q=query)]
    _print_rows(
        rows,
        as_json,
        [
            ("ID", 36, lambda row: row["id"]),
            ("SLUG", 24, lambda row: row.get("slug") or "-"),
            ("NAME", 30, lambda row: _cut(row["name"], 30)),
            ("CREATED", 0, lambda row: row["created_at"]),
        ],
    )


@datasets_group.command("show")
@click.argument("dataset", type=DATASET, metavar="DATASET")
@_JSON
def show_command(dataset: str, as_json: bool) -> None:
    """Show one dataset, by UUID or slug."""
    with _client(dataset) as client:
        row = _dataset_dict(client.fetch_dataset(dataset))
    if as_json:
        _echo_json(row)
        return
    for key, value in row.items():
        click.echo(f"{key:12} {'' if value is None else value}")


@datasets_group.command("records")
@click.argument("dataset", type=DATASET, metavar="DATASET")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many records (default: all).")
@_JSON
def records_command(dataset: str, limit: int | None, as_json: bool) -> None:
    """List a dataset's records (all pages, or the first --limit)."""
    with _client(dataset) as client:
        rows: list[dict[str, Any]] = []
        for record in client.iter_records(dataset):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(_record_dict(record))
    _print_rows(
        rows,
        as_json,
        [
            ("RECORD", 36, lambda row: row["id"]),
            ("SOURCE", 12, lambda row: row["source"]),
            ("CREATED", 27, lambda row: row["created_at"]),
            ("PAYLOAD", 0, lambda row: _cut(json.dumps(row["payload"], ensure_ascii=False), 60)),
        ],
    )


@datasets_group.command("tasks")
@click.argument("dataset", type=DATASET, metavar="DATASET")
@_JSON
def tasks_command(dataset: str, as_json: bool) -> None:
    """List a dataset's import tasks (all pages)."""
    with _client(dataset) as client:
        rows = [_task_dict(task) for task in client.iter_tasks(dataset)]
    _print_rows(
        rows,
        as_json,
        [
            ("TASK", 36, lambda row: row["id"]),
            ("STATUS", 10, lambda row: row["status"]),
            ("PROG", 4, _progress),
            ("CREATED", 27, lambda row: row["created_at"]),
            ("MESSAGE", 0, lambda row: _cut(row.get("message") or "", 40)),
        ],
    )


@datasets_group.command("export")
@click.argument("dataset", type=DATASET, metavar="DATASET")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout).",
)
def export_command(dataset: str, output: Path | None) -> None:
    """Write every record of a dataset as JSON Lines, one record per line (all pages)."""
    with _client(dataset) as client:
        client.fetch_dataset(dataset)  # an unknown dataset is a clear error, not an empty file
        lines = [json.dumps(_record_dict(record), ensure_ascii=False) for record in client.iter_records(dataset)]
    text = "".join(line + "\n" for line in lines)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"exported {len(lines)} records of {dataset} to {output}", err=True)


@datasets_group.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the dataset holds.")
@_JSON
def create_command(name: str, description: str, as_json: bool) -> None:
    """Create a dataset; prints its id."""
    if not name.strip():
        raise click.BadParameter("the name cannot be empty", param_hint="NAME")
    with _client() as client:
        row = _dataset_dict(client.create_dataset(name, description))
    if as_json:
        _echo_json(row)
        return
    click.echo(f"created dataset {row['id']}" + (f" (slug {row['slug']})" if row.get("slug") else ""))
