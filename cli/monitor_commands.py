"""``dsimport flower`` and ``dsimport dashboard``: the two ways to watch the service, behind one login.

Both require ``DSIMPORT_UI_PASSWORD`` (``dsimport up`` generates one): neither is ever served without
authentication. The password reaches Flower through its ``FLOWER_BASIC_AUTH`` environment variable, never through
the command line, where ``ps`` would show it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from cli.common import CommandFailed, check_ledger, settings_or_fail

# Flower, the jobs page and what they need are imported by the command that serves them: the help loads none.
if TYPE_CHECKING:
    from worker.settings import Settings

__all__ = ["check_flower_options", "dashboard_command", "flower_argv", "flower_command", "ui_credentials"]

_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def ui_credentials(settings: Settings) -> tuple[str, str]:
    """The login of Flower and the jobs page, or one line saying how to set it."""
    if settings.ui_password is None or not settings.ui_password.get_secret_value():
        raise CommandFailed(
            "no password for Flower and the jobs page: set DSIMPORT_UI_PASSWORD (`dsimport up` generates one)"
        )
    password = settings.ui_password.get_secret_value()
    if "," in password:
        # Flower reads a list of logins from FLOWER_BASIC_AUTH, separated by commas.
        raise CommandFailed("DSIMPORT_UI_PASSWORD cannot contain ',' (Flower would split the login there)")
    return settings.ui_user, password


def check_flower_options(extra: list[str]) -> None:
    """Refuse what Flower would silently drop (an unknown option) or die on with a traceback (a malformed value)."""
    from flower.options import options  # importing the module defines Flower's options
    from tornado.options import Error as OptionError

    for arg in extra:
        name = arg[2:].partition("=")[0] if arg.startswith("--") else ""
        if not name or name not in options:
            raise click.UsageError(f"{arg!r} is not a Flower option (they are spelled --name=value)")
    try:
        options.parse_command_line(["flower", *extra], final=False)
    except (OptionError, ValueError) as exc:
        raise click.UsageError(f"bad Flower option: {exc}") from None


def flower_argv(settings: Settings, *, address: str | None, port: int | None, extra: list[str]) -> list[str]:
    """Flower's command line: where it listens and how many tasks it keeps. Never a credential."""
    return [
        "flower",
        f"--address={address or settings.flower_address}",
        f"--port={settings.flower_port if port is None else port}",
        f"--max_tasks={settings.flower_max_tasks}",
        # Forget workers gone for ten minutes, so a scaled-down deployment does not list them forever.
        "--purge_offline_workers=600",
        # Our handler (structured, redacted) is already on the root logger; Tornado must not add its own.
        "--logging=none",
        *extra,
    ]


@click.command(context_settings=_PASSTHROUGH)
@click.option("--address", default=None, help="Interface to listen on [default: DSIMPORT_FLOWER_ADDRESS].")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port [default: DSIMPORT_FLOWER_PORT].")
@click.pass_context
def flower_command(ctx: click.Context, address: str | None, port: int | None) -> None:
    """Run Flower on the service's broker, with basic auth; other Flower options pass through."""
    from worker.preflight import check_broker

    check_flower_options(list(ctx.args))
    settings = settings_or_fail()
    user, password = ui_credentials(settings)
    problem = check_broker(settings.broker_url)
    if problem is not None:
        raise CommandFailed(problem)
    from worker import logging_setup
    from worker.celery_app import create_app

    # Flower takes its login from the environment (FLOWER_BASIC_AUTH): set for this process only, never on argv.
    os.environ["FLOWER_BASIC_AUTH"] = f"{user}:{password}"
    logging_setup.setup_process_logging(settings)
    app = create_app(settings)
    app.start(flower_argv(settings, address=address, port=port, extra=list(ctx.args)))


@click.command()
@click.option("--host", default=None, help="Interface to listen on [default: DSIMPORT_DASHBOARD_HOST].")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port [default: DSIMPORT_DASHBOARD_PORT]."
)
def dashboard_command(host: str | None, port: int | None) -> None:
    """Serve the read-only jobs page (jobs, history, schedules, dead letters, /metrics) with basic auth, and the
    HTTP API under /api/v1 with bearer tokens (`dsimport tokens create`)."""
    settings = settings_or_fail()
    user, password = ui_credentials(settings)
    check_ledger(settings)  # refuses an unmigrated ledger with the command that fixes it
    import uvicorn

    from cli.broker_sender import BrokerSender
    from dashboard import DashboardConfig, build_app
    from dashboard.api import ApiOptions
    from jobs.metrics import redis_py_url
    from worker import logging_setup

    logging_setup.setup_process_logging(settings)
    # The page reads dataset names from the API when it has a key (read-only calls); without one it shows ids.
    api_key = settings.resolved_api_key()
    # The API hands new jobs and manual fires to the workers through it at once.
    sender = BrokerSender(settings)
    app = build_app(
        DashboardConfig(
            database_url=settings.database_url,
            username=user,
            password=password,
            refresh_s=settings.dashboard_refresh_s,
            watermark_lag_alert_s=settings.watermark_lag_alert_s,
            metrics_redis_url=redis_py_url(settings.broker_url),
            api_base_url=settings.api_base_url,
            api_key=None if api_key is None else api_key.get_secret_value(),
        ),
        api=ApiOptions(
            sender=sender, job_deadline_s=settings.job_deadline_s, max_message_bytes=settings.message_max_bytes
        ),
    )
    try:
        uvicorn.run(
            app,
            host=host or settings.dashboard_host,
            port=settings.dashboard_port if port is None else port,
            # None: keep the root handler set up above, so uvicorn's lines are structured and redacted too.
            log_config=None,
            log_level=settings.log_level.lower(),
            lifespan="on",
            server_header=False,
        )
    finally:
        sender.close()
