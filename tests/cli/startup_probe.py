"""Which modules a ``dsimport`` command loads before it answers.

A fresh interpreter (so that nothing another test imported hides an import) runs the command line's entry point,
``cli.main.main``, on each command in turn, and reports the modules each one added to ``sys.modules``. Used by
tests/cli/test_startup_imports.py and by ``python -m bench.cli_startup``, which both fail loudly when a heavy module
creeps back into a start-up path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

__all__ = [
    "HEAVY_FOR_AN_IMPORT",
    "HEAVY_FOR_HELP",
    "HEAVY_FOR_LISTING",
    "REPO",
    "Loaded",
    "heavy_among",
    "help_commands",
    "modules_loaded",
]

REPO = Path(__file__).resolve().parents[2]

HEAVY_FOR_HELP = ("sqlalchemy", "alembic", "celery", "kombu", "httpx", "pydantic", "uvicorn", "starlette", "redis")
"""What the help of the command line and of each of its groups never needs (click is all it takes)."""
HEAVY_FOR_LISTING = ("celery", "kombu", "alembic")
"""What `dsimport jobs list` never needs: it reads a migrated ledger (Alembic is for one that is not)."""
HEAVY_FOR_AN_IMPORT = (
    "alembic", "httpx", "uvicorn", "starlette", "api_client.client", "tasks.job_tasks", "tasks.message_tasks",
    "tasks.schedule_tasks", "tasks.retention_tasks", "jobs.runtime",
)  # fmt: skip
"""What `dsimport import` (record the job, send its message) never needs: migrations, HTTP, the servers, the
Celery task layer and the worker's runtime."""

_PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)
from cli.main import main
report = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    after = set(sys.modules)
    report.append({"argv": argv, "code": code, "stderr": err.getvalue(), "loaded": sorted(after - before)})
    before = after
print(json.dumps(report))
"""


@dataclass(frozen=True)
class Loaded:
    """One command of a probe: its exit code, what it wrote on stderr, the modules it added."""

    argv: list[str]
    code: int | None
    stderr: str
    modules: list[str]


def modules_loaded(
    commands: Sequence[Sequence[str]], *, env: Mapping[str, str], root: Path = REPO, timeout_s: float = 120
) -> list[Loaded]:
    """Run ``commands`` one after the other in one fresh interpreter on the code at ``root``; what each loaded.

    The modules of a command are those it added: a module an earlier command loaded is not counted again, so run
    a command alone (a probe of its own) to see all it loads. The first command's include ``cli.main``'s own.
    """
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([list(argv) for argv in commands])],
        env={**env, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the start-up probe failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return [Loaded(entry["argv"], entry["code"], entry["stderr"], entry["loaded"]) for entry in report]


def heavy_among(modules: Iterable[str], heavy: Iterable[str] = HEAVY_FOR_HELP) -> list[str]:
    """The packages of ``heavy`` that ``modules`` include (a package counts when any module of it is loaded)."""
    names = set(modules)
    return sorted(
        package for package in heavy if package in names or any(name.startswith(package + ".") for name in names)
    )


def help_commands(group: click.Group | None = None) -> list[list[str]]:
    """`--help` of the command line, of each of its commands and of every group below them."""
    if group is None:
        from cli.main import cli

        group = cli
    commands = [["--help"]]

    def walk(parent: click.Group, path: list[str]) -> None:
        for name in parent.list_commands(click.Context(parent)):
            command = parent.get_command(click.Context(parent), name)
            if isinstance(command, click.Group):
                walk(command, [*path, name])
            if isinstance(command, click.Group) or not path:
                commands.append([*path, name, "--help"])

    walk(group, [])
    return commands
