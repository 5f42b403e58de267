"""``dsimport webhooks``: register receivers of job endings, see what was delivered to them, send a test event.

How deliveries are signed and retried is :mod:`notifications`' (and the README's "Webhooks" section).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from cli.common import CommandFailed, LazyChoice, ledger_sessions, settings_or_fail, utcnow
from import_kinds import ImportKind

# The ledger, httpx and the deliverer are imported by the commands that use them: the group's help loads none.
if TYPE_CHECKING:
    from store.webhook_models import Webhook
    from store.webhooks import DeliveryView

_FORMATS = ("json", "slack")
_MIN_SECRET_CHARS = 16


def _ending_statuses() -> list[str]:
    from store.models import TERMINAL_JOB_STATUSES

    return sorted(status.value for status in TERMINAL_JOB_STATUSES)


@click.group()
def webhooks_group() -> None:
    """Tell other systems when imports end: signed webhook POSTs, delivered at least once."""


@webhooks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """List the webhooks with their filters (the secrets are not shown)."""
    from store.webhooks import list_webhooks

    with ledger_sessions(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        rows = [webhook_to_dict(webhook) for webhook in list_webhooks(session)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no webhooks (add one with: dsimport webhooks add NAME URL)")
        return
    click.echo(f"{'NAME':20}  {'FORMAT':6}  {'STATUSES':24}  {'KINDS':16}  {'SCHEDULES':16}  URL")
    for row in rows:
        click.echo(
            f"{row['name']:20}  {row['format']:6}  {_filter(row['statuses']):24}  {_filter(row['kinds']):16}  "
            f"{_filter(row['schedules']):16}  {row['url']}"
        )


def _filter(values: list[str] | None) -> str:
    return "all" if values is None else ",".join(values)


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    return url


def _read_secret(path: Path | None) -> tuple[str, bool]:
    """The secret from ``path``, or a new one; and whether it was generated (and so must be shown)."""
    import secrets

    if path is None:
        return "whsec_" + secrets.token_urlsafe(32), True
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--secret-file") from None
    if len(secret) < _MIN_SECRET_CHARS:
        raise click.BadParameter(
            f"the secret in {path} is shorter than {_MIN_SECRET_CHARS} characters", param_hint="--secret-file"
        )
    return secret, False


@webhooks_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=LazyChoice(_ending_statuses, case_sensitive=False),
    help="Only endings in this status (repeatable; default: every ending).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([kind.value for kind in ImportKind]),
    help="Only imports of this kind (repeatable; default: every kind).",
)
@click.option(
    "--schedule", "schedules", multiple=True, help="Only imports this schedule requested (repeatable; default: any)."
)
@click.option("--format", "body_format", type=click.Choice(_FORMATS), default="json", show_default=True)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Sign with the secret in this file instead of a generated one.",
)
def add_command(
    name: str,
    url: str,
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    schedules: tuple[str, ...],
    body_format: str,
    secret_file: Path | None,
) -> None:
    """Deliver the endings of imports to URL, signed (see the README's "Webhooks")."""
    from store.webhook_models import WebhookFormat
    from store.webhooks import WebhookExistsError, add_webhook

    if not name.strip() or len(name) > 100:
        raise click.BadParameter("a name of 1 to 100 characters", param_hint="NAME")
    _check_url(url)
    secret, generated = _read_secret(secret_file)
    with ledger_sessions(settings_or_fail()) as sessions, sessions() as session:
        try:
            add_webhook(
                session,
                name=name,
                url=url,
                secret=secret,
                format=WebhookFormat(body_format),
                statuses=[status.upper() for status in statuses],
                kinds=kinds,
                schedules=schedules,
                now=utcnow(),
            )
        except WebhookExistsError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    click.echo(f"added webhook {name}")
    if generated:
        # Shown once: the ledger keeps it to sign with, and no command prints it again.
        click.echo(f"signing secret (shown once, keep it with the receiver): {secret}")


@webhooks_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Remove a webhook and its delivery log (deliveries still pending are dropped)."""
    from store.webhooks import WebhookNotFoundError, remove_webhook

    with ledger_sessions(settings_or_fail()) as sessions, sessions() as session:
        try:
            dropped = remove_webhook(session, name)
        except WebhookNotFoundError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    click.echo(f"removed webhook {name} ({dropped} deliveries)")


@webhooks_group.command("test")
@click.argument("name")
def test_command(name: str) -> None:
    """Send a signed test event to a webhook now and show its answer (exit 1 unless it answers 2xx)."""
    import httpx

    from notifications.deliver import DeliveryPolicy, send_test
    from store.webhooks import WebhookNotFoundError, require_webhook

    settings = settings_or_fail()
    with ledger_sessions(settings, read_only=True) as sessions, sessions() as session:
        try:
            webhook = require_webhook(session, name)
        except WebhookNotFoundError as exc:
            raise CommandFailed(str(exc)) from None
        session.expunge(webhook)
    policy = DeliveryPolicy(timeout_s=settings.webhook_timeout_s, jobs_page_url=settings.jobs_page_url or None)
    with httpx.Client() as http:
        answer = send_test(http, webhook, policy=policy)
    if not answer.ok:
        raise CommandFailed(f"webhook {name}: {answer.error} ({answer.duration_s:.2f} s)")
    click.echo(f"webhook {name}: HTTP {answer.status_code} in {answer.duration_s:.2f} s {answer.excerpt}".rstrip())


@webhooks_group.command("deliveries")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def deliveries_command(name: str | None, limit: int, as_json: bool) -> None:
    """The newest deliveries (of one webhook), with their status, attempts and last error."""
    from store.webhooks import WebhookNotFoundError, recent_deliveries

    with ledger_sessions(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        try:
            rows = [delivery_to_dict(view) for view in recent_deliveries(session, webhook=name, limit=limit)]
        except WebhookNotFoundError as exc:
            raise CommandFailed(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'DELIVERY':36}  {'WEBHOOK':16}  {'JOB':36}  {'JOB STATUS':17}  {'STATUS':9}  {'TRIES':>5}  LAST")
    for row in rows:
        last = row["last_error"] or ("" if row["last_status_code"] is None else f"HTTP {row['last_status_code']}")
        click.echo(
            f"{row['id']:36}  {row['webhook']:16}  {row['job_id']:36}  {row['job_status'] or '':17}  "
            f"{row['status']:9}  {row['attempts']:>5}  {last}"
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def webhook_to_dict(webhook: Webhook) -> dict[str, Any]:
    return {
        "name": webhook.name,
        "url": webhook.url,
        "format": str(webhook.format),
        "statuses": webhook.statuses,
        "kinds": webhook.kinds,
        "schedules": webhook.schedules,
        "enabled": webhook.enabled,
        "created_at": _iso(webhook.created_at),
    }


def delivery_to_dict(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "webhook": view.webhook,
        "job_id": view.job_id,
        "job_status": view.job_status,
        "status": str(view.status),
        "attempts": view.attempts,
        "last_status_code": view.last_status_code,
        "last_error": view.last_error,
        "created_at": _iso(view.created_at),
        "next_attempt_at": _iso(view.next_attempt_at),
        "delivered_at": _iso(view.delivered_at),
    }
