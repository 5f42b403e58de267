"""``dsimport messages``: the queue-message intake from the operator's side.

``schema`` prints the message's JSON Schema, ``send`` publishes a request on the stream, ``dead-letters`` lists
the refused ones, ``show`` prints one with its raw body, ``retry`` re-submits one, ``stats`` shows the counters.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import click

from cli.common import DATASET, CommandFailed, lazy_settings, open_ledger, settings_or_fail
from cli.import_commands import follow
from cli.kind_options import kind_commands, source_params
from import_kinds import CommandGroup, ImportKindSpec

# The ledger, the message model, Redis and Celery are imported by the commands that use them: the help loads none.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from store.models import DeadLetter
    from worker.settings import Settings

__all__ = ["messages_group"]

# The ledger's ids are 64-bit: a larger number would reach the database and fail there, not here.
DEAD_LETTER_ID = click.IntRange(1, 2**63 - 1)


@click.group()
def messages_group() -> None:
    """Import requests as messages on a Redis Stream, and the dead letters of refused ones."""


@messages_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of an import request message."""
    from triggers.messages.message_model import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


def _send_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--wait"], is_flag=True, help="Follow the job a worker creates until it ends; exit 1 unless COMPLETED."
        ),
        click.Option(
            ["--id", "--key", "message_id"],
            default=None,
            help="Message id (the idempotency key): a second message with the same id is one import. Default: new.",
        ),
        click.Option(["--dataset", "dataset_id"], type=DATASET, required=True, help="Target dataset id."),
        click.Option(
            ["--skip-existing"],
            is_flag=True,
            help="Ask the worker to leave out the items the dataset already holds (the message's skip_existing).",
        ),
    ]


@messages_group.group("send")
def send_group() -> None:
    """Publish an import request on the stream; prints the message id."""


def _send_kind(spec: ImportKindSpec, values: dict[str, Any]) -> None:
    settings = lazy_settings()
    source = source_params(spec, values, settings)
    if values["skip_existing"]:
        source = {**source, "skip_existing": True}
    _send(spec.name, values["dataset_id"], source, values["message_id"], values["wait"], settings())


for _command in kind_commands(CommandGroup.SEND, _send_options, _send_kind):
    send_group.add_command(_command)


def _send(
    kind: str,
    dataset_id: str,
    source: dict[str, Any],
    message_id: str | None,
    wait: bool,
    settings: Settings,
) -> None:
    import redis

    from triggers.messages.message_model import InvalidMessage, parse_payload
    from worker.settings import mask_url
    from worker.stream_connection import stream_redis

    message = {"id": message_id or str(uuid.uuid4()), "kind": kind, "dataset_id": dataset_id, **source}
    # Refuse here what the consumer would dead-letter: an operator gets the reason now, not in a listing later.
    try:
        parse_payload(message)
    except InvalidMessage as exc:
        raise click.UsageError(exc.reason) from None
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    if len(body) > settings.message_max_bytes:
        raise click.UsageError(
            f"the message is {len(body)} bytes, over the {settings.message_max_bytes} limit: split the ids"
        )
    client = stream_redis(settings)
    try:
        entry_id: Any = client.xadd(settings.stream_name, {"body": body})
    except redis.RedisError as exc:
        url = mask_url(settings.resolved_stream_redis_url())
        raise CommandFailed(f"cannot publish on {settings.stream_name} at {url}: {exc}") from None
    finally:
        client.close()
    click.echo(message["id"])
    click.echo(f"published as entry {entry_id.decode()} on {settings.stream_name}", err=True)
    if wait:
        status = _follow_message(settings, message["id"])
        if status != "COMPLETED":
            raise CommandFailed(f"message {message['id']} ended {status}")


def _follow_message(settings: Settings, message_id: str, *, interval_s: float = 0.5) -> str:
    """Wait for a worker to turn the message into a job (or a dead letter), then follow the job."""
    with open_ledger(settings, read_only=True) as sessions:
        return _follow_in(sessions, message_id, interval_s=interval_s)


def _follow_in(sessions: sessionmaker[Session], message_id: str, *, interval_s: float) -> str:
    from store.dead_letters import list_dead_letters
    from store.jobs import get_job_by_key
    from triggers.messages.message_model import idempotency_key

    key = idempotency_key(message_id)
    while True:
        with sessions() as session:
            job = get_job_by_key(session, key)
            job_id = job.id if job is not None else None
            letters = list_dead_letters(session, message_id=message_id, limit=1, include_retried=False)
            refused = letters[0].reason if letters else None
        if job_id is not None:
            click.echo(f"job {job_id}", err=True)
            return follow(sessions, job_id)
        if refused is not None:
            click.echo(f"dead-lettered: {refused}", err=True)
            return "DEAD_LETTERED"
        time.sleep(interval_s)


@messages_group.command("dead-letters")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--pending", "pending_only", is_flag=True, help="Only the ones not retried yet.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array (with the raw bodies) instead of a table.")
def dead_letters_command(limit: int, pending_only: bool, as_json: bool) -> None:
    """List refused messages, newest first."""
    from store.dead_letters import list_dead_letters

    with open_ledger(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        rows = [
            dead_letter_to_dict(letter)
            for letter in list_dead_letters(session, limit=limit, include_retried=not pending_only)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'ID':>6}  {'RECEIVED':25}  {'MESSAGE ID':24}  {'RETRIED AS':36}  REASON")
    for row in rows:
        message = _cut(row["message_id"] or "-", 24)
        click.echo(
            f"{row['id']:>6}  {row['received_at']:25}  {message:24}  {row['retried_job_id'] or '-':36}  {row['reason']}"
        )


@messages_group.command("show")
@click.argument("dead_letter_id", type=DEAD_LETTER_ID)
@click.option("--json", "as_json", is_flag=True)
def show_command(dead_letter_id: int, as_json: bool) -> None:
    """Show one dead letter; its raw body goes to stdout as it was received."""
    from store.dead_letters import decode_body, get_dead_letter

    with open_ledger(settings_or_fail(), read_only=True) as sessions, sessions() as session:
        letter = get_dead_letter(session, dead_letter_id)
        if letter is None:
            raise CommandFailed(f"dead letter {dead_letter_id} not found")
        row = dead_letter_to_dict(letter)
        raw = decode_body(letter.body, letter.body_base64)
    if as_json:
        click.echo(json.dumps(row, indent=2, ensure_ascii=False))
        return
    for key, value in row.items():
        if key not in ("body", "body_base64"):
            click.echo(f"{key:15} {'' if value is None else value}", err=True)
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()


@messages_group.command("retry")
@click.argument("dead_letter_id", type=DEAD_LETTER_ID)
@click.option("--body", default=None, help="The corrected message (JSON) to submit instead of the original.")
def retry_command(dead_letter_id: int, body: str | None) -> None:
    """Re-submit a dead letter after a fix; prints the job id."""
    from store.dead_letters import DeadLetterNotFoundError
    from store.errors import StoreError
    from triggers.messages.intake import AlreadyRetried, Intake
    from triggers.messages.message_model import InvalidMessage, parse_message

    settings = settings_or_fail()
    # Text that is not UTF-8 (argv bytes Python kept as surrogates) becomes bytes the check below refuses as such.
    corrected = None if body is None else body.encode("utf-8", "surrogatepass")
    if corrected is not None:
        # A corrected body that is itself refused is a bad argument: say so before touching the ledger.
        try:
            parse_message(corrected, max_bytes=settings.message_max_bytes)
        except InvalidMessage as exc:
            raise click.BadParameter(exc.reason, param_hint="--body") from None
    from worker.celery_app import sender_app

    app = sender_app(settings)
    try:
        with open_ledger(settings) as sessions:
            intake = Intake(
                session_factory=sessions,
                send=lambda job_id: app.send_task("dsimport.submit", args=[job_id]),
                deadline_s=settings.job_deadline_s,
                max_bytes=settings.message_max_bytes,
            )
            result = intake.retry(dead_letter_id, body=corrected)
    except DeadLetterNotFoundError as exc:
        raise CommandFailed(str(exc)) from None
    except AlreadyRetried as exc:
        raise CommandFailed(str(exc)) from None
    except InvalidMessage as exc:
        raise CommandFailed(f"dead letter {dead_letter_id} is still refused: {exc.reason}") from None
    except StoreError as exc:  # the ledger stayed locked past DSIMPORT_DB_LOCKED_RETRY_S: nothing was recorded
        raise CommandFailed(str(exc)) from None
    finally:
        app.close()
    click.echo(result.job_id)
    if result.outcome != "created":
        click.echo(f"message {result.message_id} was imported already ({result.job_status})", err=True)


@messages_group.command("stats")
@click.option("--json", "as_json", is_flag=True)
def stats_command(as_json: bool) -> None:
    """Counters of every consumer, and the stream's length and pending entries."""
    import redis

    from triggers.messages.stream_consumer import read_stats
    from worker.settings import mask_url
    from worker.stream_connection import stream_redis

    settings = settings_or_fail()
    client = stream_redis(settings)
    try:
        counts: dict[str, Any] = read_stats(client, settings.stream_name)
        counts["stream_length"] = client.xlen(settings.stream_name)
        try:
            counts["pending"] = client.xpending(settings.stream_name, settings.stream_group)["pending"]
        except redis.ResponseError:  # no group yet: no worker ever ran
            counts["pending"] = 0
        counts["dead_letter_stream_length"] = client.xlen(settings.dead_letter_stream)
    except redis.RedisError as exc:
        url = mask_url(settings.resolved_stream_redis_url())
        raise CommandFailed(f"cannot read {settings.stream_name} at {url}: {exc}") from None
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    for key, value in counts.items():
        click.echo(f"{key:26} {value}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def dead_letter_to_dict(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "stream": letter.stream,
        "entry_id": letter.entry_id,
        "message_id": letter.message_id,
        "reason": letter.reason,
        "received_at": letter.received_at.isoformat(),
        "retried_at": letter.retried_at.isoformat() if letter.retried_at is not None else None,
        "retried_job_id": letter.retried_job_id,
        "body_size": letter.body_size,
        "body_base64": letter.body_base64,
        "body": letter.body,
    }
