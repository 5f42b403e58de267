"""``dsimport check``: health checks that prove a part works, for container health checks and scripts.

Each prints one line and exits 0 when the part did its job (a PING answered, a query ran, a worker replied, beat
ticked lately, a page answered with the login), 1 otherwise.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import click

from cli.common import CommandFailed, FiniteFloatRange, settings_or_fail

# What a check talks to (Redis, the ledger, HTTP) is imported by that check: the help loads none of it.

__all__ = ["check_group"]


@click.group()
def check_group() -> None:
    """Health checks: each exits 0 when the part works, 1 (with the reason) when not."""


@check_group.command("broker")
def check_broker_command() -> None:
    """The broker answers a PING."""
    from worker.preflight import check_broker
    from worker.settings import mask_url

    settings = settings_or_fail()
    problem = check_broker(settings.broker_url)
    if problem is not None:
        raise CommandFailed(problem)
    click.echo(f"ok: broker {mask_url(settings.broker_url)} answers")


@check_group.command("db")
def check_db_command() -> None:
    """The ledger answers a query and its schema is at the newest migration."""
    from store.db import check_migrated, make_engine
    from store.errors import StoreError
    from worker.settings import mask_url

    settings = settings_or_fail()
    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"ok: ledger {mask_url(settings.database_url)} is migrated and answers")


@check_group.command("worker")
@click.option(
    "--name",
    default=None,
    help="Worker node name to ping [default: dsimport@<this host>, the name `dsimport up` and compose give].",
)
@click.option("--any", "any_worker", is_flag=True, help="Succeed when any worker replies.")
@click.option("--timeout", "timeout_s", type=FiniteFloatRange(0.1, 60.0), default=5.0, show_default=True)
def check_worker_command(name: str | None, any_worker: bool, timeout_s: float) -> None:
    """A worker replies to a Celery ping through the broker (`celery inspect ping`)."""
    from worker.preflight import check_broker

    settings = settings_or_fail()
    problem = check_broker(settings.broker_url)
    if problem is not None:
        raise CommandFailed(problem)
    from worker.celery_app import create_app

    app = create_app(settings)
    target = None if any_worker else [name or f"dsimport@{socket.gethostname()}"]
    try:
        replies = app.control.ping(destination=target, timeout=timeout_s) or []
    finally:
        app.close()
    names = sorted(node for reply in replies for node in reply)
    if not names:
        who = "no worker" if target is None else f"worker {target[0]}"
        raise CommandFailed(f"{who} replied to a ping within {timeout_s:g} s")
    click.echo(f"ok: {', '.join(names)} replied")


@check_group.command("beat")
@click.option(
    "--max-age",
    "max_age_s",
    type=FiniteFloatRange(1.0),
    default=60.0,
    show_default=True,
    help="Seconds since beat's last tick that still count as alive.",
)
def check_beat_command(max_age_s: float) -> None:
    """Beat sent its periodic poll task lately (it records each send in the broker's Redis)."""
    import redis

    from jobs.metrics import read_metrics, redis_py_url
    from worker.settings import mask_url

    settings = settings_or_fail()

    client = redis.Redis.from_url(redis_py_url(settings.broker_url), socket_connect_timeout=3, socket_timeout=3)
    try:
        tick = read_metrics(client).beat_last_tick_at
    except redis.RedisError as exc:
        raise CommandFailed(f"cannot read beat's heartbeat from {mask_url(settings.broker_url)}: {exc}") from None
    finally:
        client.close()
    if tick is None:
        raise CommandFailed("beat has not ticked yet")
    age_s = time.time() - tick
    if age_s > max_age_s:
        raise CommandFailed(f"beat last ticked {age_s:.0f} s ago (more than {max_age_s:g} s)")
    click.echo(f"ok: beat ticked {max(age_s, 0.0):.1f} s ago")


def _http_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("not an http(s):// URL")
    return value


@check_group.command("url")
@click.argument("url", callback=_http_url)
@click.option("--timeout", "timeout_s", type=FiniteFloatRange(0.1, 60.0), default=5.0, show_default=True)
def check_url_command(url: str, timeout_s: float) -> None:
    """URL answers below 400 when sent the UI login (Flower's /api/workers, the jobs page's /healthz)."""
    import httpx

    settings = settings_or_fail()
    auth = None
    if settings.ui_password is not None:
        auth = httpx.BasicAuth(settings.ui_user, settings.ui_password.get_secret_value())
    try:
        response = httpx.get(url, auth=auth, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise CommandFailed(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise CommandFailed(f"{url} answered {response.status_code}")
    click.echo(f"ok: {url} answered {response.status_code}")
