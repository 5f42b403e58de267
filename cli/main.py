"""``dsimport``: the one command-line entry point. Thin: parse, call, print, return an exit code.

Bad input exits 2 with one line that says what is wrong; an operational failure (unreachable broker, unmigrated
database, missing key) exits 1 with one line that says what to fix. Never a traceback for either.
"""

from __future__ import annotations

import gc
import sys

import click

from cli.check_commands import check_group
from cli.datasets_commands import datasets_group
from cli.import_commands import import_group
from cli.jobs_commands import jobs_group
from cli.messages_commands import messages_group
from cli.monitor_commands import dashboard_command, flower_command
from cli.schedules_commands import schedules_group
from cli.service_commands import beat_command, db_group, up_command, worker_command
from cli.tokens_commands import tokens_group
from cli.webhooks_commands import webhooks_group
from emulator.cli import emulator_command
from worker.settings_error import SettingsError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="dsimport")
def cli() -> None:
    """Asynchronous import orchestrator for Mistral's Observability Datasets API."""


cli.add_command(emulator_command, name="emulator")
cli.add_command(import_group, name="import")
cli.add_command(jobs_group, name="jobs")
cli.add_command(messages_group, name="messages")
cli.add_command(schedules_group, name="schedules")
cli.add_command(worker_command, name="worker")
cli.add_command(beat_command, name="beat")
cli.add_command(db_group, name="db")
cli.add_command(up_command, name="up")
cli.add_command(flower_command, name="flower")
cli.add_command(dashboard_command, name="dashboard")
cli.add_command(check_group, name="check")
cli.add_command(datasets_group, name="datasets")
cli.add_command(tokens_group, name="tokens")
cli.add_command(webhooks_group, name="webhooks")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns (and exits with) its exit code."""
    try:
        result = cli.main(args=argv, prog_name="dsimport", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("dsimport: aborted", err=True)
        code = 130
    except click.exceptions.NoArgsIsHelpError as exc:
        # Click's message is the whole help page; the error stays one line, the help one option away.
        click.echo(f"dsimport: error: {_missing_arguments(exc.ctx)} (see '{exc.ctx.command_path} --help')", err=True)
        code = 2
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        # One line, even for a message Celery spreads over two (its worker's "extra configuration" error).
        message = " ".join(exc.format_message().split())
        click.echo(f"dsimport: error: {message}{hint}", err=True)
        code = 2
    except click.ClickException as exc:
        click.echo(f"dsimport: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except SettingsError as exc:
        click.echo(f"dsimport: error: {exc}", err=True)
        code = 1
    else:
        code = result if isinstance(result, int) else 0
    if argv is None:
        # The process ends here. Its last full collection would walk every object the imports made (SQLAlchemy,
        # pydantic, Celery: 0.15 s of the 0.9 s of `dsimport import`, measured) to free memory the exit frees
        # anyway, so they are left to the exit. No finalizer is owed: files and connections are closed by their
        # `with`, and Python does not promise to run one at exit.
        gc.freeze()
        sys.exit(code)
    return code


def _missing_arguments(ctx: click.Context) -> str:
    """One line for a command given nothing: its usage, and the subcommands of a group."""
    usage = " ".join([ctx.command_path, *ctx.command.collect_usage_pieces(ctx)])
    if isinstance(ctx.command, click.Group):
        return f"missing command: {usage}; commands: {', '.join(ctx.command.list_commands(ctx))}"
    return f"missing arguments: {usage}"
