"""Dead letters: import requests that were refused, with the raw body and the reason, until someone retries them.

Like the rest of the ledger, every function takes the caller's Session and, when it writes, an explicit ``now``;
none commits.
"""

from __future__ import annotations

import base64
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import DeadLetter

__all__ = [
    "MAX_REASON_CHARS",
    "DeadLetterNotFoundError",
    "count_dead_letters",
    "decode_body",
    "encode_body",
    "get_dead_letter",
    "list_dead_letters",
    "mark_retried",
    "record_dead_letter",
    "require_dead_letter",
]

# A reason is one line for a listing; a validation error with a hundred parts is cut here.
MAX_REASON_CHARS = 1000
_MAX_KEY_CHARS = 255


class DeadLetterNotFoundError(StoreError):
    """Raised when a dead-letter id names no row."""

    def __init__(self, dead_letter_id: int) -> None:
        self.dead_letter_id = dead_letter_id
        super().__init__(f"dead letter {dead_letter_id} not found")


def encode_body(raw: bytes) -> tuple[str, bool]:
    """The body as storable text and whether that text is base64 (for non-UTF-8 bodies and bodies with NUL)."""
    if b"\x00" not in raw:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode("ascii"), True


def decode_body(text: str, is_base64: bool) -> bytes:
    """The bytes :func:`encode_body` was given."""
    return base64.b64decode(text) if is_base64 else text.encode("utf-8")


def _storable(text: str) -> str:
    # Whatever a producer sent may end up in a reason or an id: lone surrogates cannot be encoded, and
    # PostgreSQL text cannot hold NUL; both are kept as visible escapes instead.
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _one_line(reason: str) -> str:
    line = " ".join(_storable(reason).split())
    if len(line) > MAX_REASON_CHARS:
        line = line[: MAX_REASON_CHARS - 3] + "..."
    return line or "no reason given"


def _key(value: str | None) -> str | None:
    return None if value is None else _storable(value)[:_MAX_KEY_CHARS]


def record_dead_letter(
    session: Session,
    *,
    stream: str,
    entry_id: str | None,
    body: bytes,
    body_size: int | None = None,
    reason: str,
    message_id: str | None,
    now: datetime,
) -> tuple[DeadLetter, bool]:
    """Keep a refused request; returns ``(dead_letter, created)``.

    ``body_size`` is the size as received when ``body`` is a truncated copy. An entry already recorded for
    ``(stream, entry_id)`` is returned unchanged with ``created=False``: a redelivered entry is kept once, even
    when two consumers record it at the same time (the insert runs in a SAVEPOINT).
    """
    stream = _storable(stream)[:_MAX_KEY_CHARS]
    entry_id = _key(entry_id)
    if entry_id is not None:
        existing = _by_entry(session, stream, entry_id)
        if existing is not None:
            return existing, False
    text, is_base64 = encode_body(body)
    letter = DeadLetter(
        stream=stream,
        entry_id=entry_id,
        message_id=_key(message_id),
        body=text,
        body_base64=is_base64,
        body_size=len(body) if body_size is None else body_size,
        reason=_one_line(reason),
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(letter)
    except IntegrityError:
        winner = None if entry_id is None else _by_entry(session, stream, entry_id)
        if winner is None:
            raise
        return winner, False
    return letter, True


def _by_entry(session: Session, stream: str, entry_id: str) -> DeadLetter | None:
    return session.scalars(
        select(DeadLetter).where(DeadLetter.stream == stream, DeadLetter.entry_id == entry_id)
    ).one_or_none()


def get_dead_letter(session: Session, dead_letter_id: int) -> DeadLetter | None:
    """The dead letter with ``dead_letter_id``, or None."""
    return session.get(DeadLetter, dead_letter_id)


def require_dead_letter(session: Session, dead_letter_id: int, *, for_update: bool = False) -> DeadLetter:
    """The dead letter with ``dead_letter_id``, freshly read (row-locked on PostgreSQL with ``for_update``).

    :raises DeadLetterNotFoundError: no such dead letter.
    """
    letter = session.get(DeadLetter, dead_letter_id, with_for_update=for_update, populate_existing=True)
    if letter is None:
        raise DeadLetterNotFoundError(dead_letter_id)
    return letter


def list_dead_letters(
    session: Session, *, limit: int = 100, include_retried: bool = True, message_id: str | None = None
) -> list[DeadLetter]:
    """Dead letters, newest first; ``include_retried=False`` leaves out the ones already re-submitted."""
    query = select(DeadLetter)
    if not include_retried:
        query = query.where(DeadLetter.retried_at.is_(None))
    if message_id is not None:
        query = query.where(DeadLetter.message_id == message_id)
    query = query.order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc()).limit(limit)
    return list(session.scalars(query))


def count_dead_letters(session: Session, *, include_retried: bool = True) -> int:
    """How many dead letters there are (not yet retried ones only with ``include_retried=False``)."""
    query = select(func.count()).select_from(DeadLetter)
    if not include_retried:
        query = query.where(DeadLetter.retried_at.is_(None))
    return int(session.scalar(query) or 0)


def mark_retried(session: Session, letter: DeadLetter, *, job_id: str, now: datetime) -> DeadLetter:
    """Record that ``letter`` was re-submitted successfully and became (or found) job ``job_id``."""
    letter.retried_at = now
    letter.retried_job_id = job_id
    session.flush()
    return letter
