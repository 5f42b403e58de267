"""``dsimport tokens``: the bearer tokens of the HTTP API (served with the jobs page under ``/api/v1``).

A token is printed once, when it is created; the ledger keeps only its SHA-256, so a lost token cannot be shown
again: revoke it and create another.
"""

from __future__ import annotations

import json

import click

from cli.common import CommandFailed, open_ledger, settings_or_fail, utcnow

__all__ = ["tokens_group"]


@click.group()
def tokens_group() -> None:
    """Bearer tokens of the HTTP API (/api/v1 on the jobs page)."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    default="read",
    show_default=True,
    help="read: list and show jobs and schedules; write: also request imports, cancel jobs, change schedules.",
)
def create_command(name: str, scope: str) -> None:
    """Create token NAME and print it (once: only its hash is kept)."""
    from store.api_tokens import TokenError, check_token_name, create_token
    from store.models import TokenScope

    try:
        check_token_name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    with open_ledger(settings_or_fail()) as sessions, sessions() as session:
        try:
            created = create_token(session, name, TokenScope(scope), now=utcnow())
        except TokenError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    # The token alone on stdout, so that `TOKEN=$(dsimport tokens create ci)` works; the advice goes to stderr.
    click.echo(created.token)
    click.echo(f"token {name} ({scope}) created: it is shown only this once", err=True)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """List tokens: name, scope, when created, last used and revoked (never the tokens themselves)."""
    from store.api_tokens import list_tokens

    with open_ledger(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        rows = [
            {
                "name": row.name,
                "scope": str(row.scope),
                "created_at": row.created_at.isoformat(),
                "last_used_at": None if row.last_used_at is None else row.last_used_at.isoformat(),
                "revoked_at": None if row.revoked_at is None else row.revoked_at.isoformat(),
            }
            for row in list_tokens(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'NAME':24}  {'SCOPE':5}  {'CREATED':25}  {'LAST USED':25}  REVOKED")
    for row in rows:
        click.echo(
            f"{row['name']:24}  {row['scope']:5}  {row['created_at']:25}  {row['last_used_at'] or '-':25}  "
            f"{row['revoked_at'] or '-'}"
        )


@tokens_group.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke token NAME: the API refuses it from the next request on."""
    from store.api_tokens import TokenError, revoke_token

    with open_ledger(settings_or_fail()) as sessions, sessions() as session:
        try:
            revoke_token(session, name, now=utcnow())
        except TokenError as exc:
            raise CommandFailed(str(exc)) from None
        session.commit()
    click.echo(f"{name}: revoked")
