"""Bearer tokens of the HTTP API: created, listed, revoked, and recognised on each request.

A token is ``dsi_`` followed by 32 random bytes in URL-safe base64; the prefix lets a leaked token be recognised
(a secret scanner, a log reviewer). The ledger keeps only its SHA-256. A fast hash is right here, unlike for a
password: a password is guessable, so its hash must make each guess expensive, while a token carries 256 bits
of randomness that no amount of guessing covers, and the hash only has to stop a reader of the ledger from
turning a row back into a working token. Being fast also lets every request be checked without a cost.

Like the rest of the ledger, every function takes the caller's Session (and ``now`` when it writes) and leaves
committing to the caller. Errors (all :class:`store.errors.StoreError`)::

    TokenError
    ├── TokenExistsError      the name is taken
    └── TokenNotFoundError    no token has that name
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.models import ApiToken, TokenScope

__all__ = [
    "TOKEN_PREFIX",
    "NewToken",
    "TokenError",
    "TokenExistsError",
    "TokenNotFoundError",
    "authenticate",
    "check_token_name",
    "create_token",
    "hash_token",
    "list_tokens",
    "mark_used",
    "needs_use_mark",
    "revoke_token",
]

TOKEN_PREFIX = "dsi_"  # noqa: S105  (the public prefix of every token, not a secret)
_TOKEN_BYTES = 32
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# last_used_at is a hint for whoever reviews the tokens, not an audit log: writing it on every request would turn
# each read of the API into a write of the ledger.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(StoreError):
    """Raised for a token operation the ledger refuses."""


class TokenExistsError(TokenError):
    """Raised when a token is created under a name already taken (by a live or a revoked token)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a token named {name!r} exists already (revoked tokens keep their names)")


class TokenNotFoundError(TokenError):
    """Raised when no token has the given name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no token named {name!r}")


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``token`` is the secret, shown once and never stored."""

    name: str
    scope: TokenScope
    token: str = field(repr=False)


def check_token_name(name: str) -> str:
    """``name`` if it can name a token (1-100 letters, digits, '.', '_' or '-'), else :class:`ValueError`."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"token name {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return name


def hash_token(token: str) -> str:
    """The SHA-256 of ``token``, as the ledger stores it (hex)."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def create_token(session: Session, name: str, scope: TokenScope, *, now: datetime) -> NewToken:
    """Store a new token under ``name``; the returned token is its only copy.

    :raises TokenExistsError: the name is taken (checked again by the unique index).
    """
    check_token_name(name)
    if session.scalars(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
        raise TokenExistsError(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row = ApiToken(name=name, token_hash=hash_token(token), scope=scope, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise TokenExistsError(name) from None
    return NewToken(name=name, scope=scope, token=token)


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token (revoked ones too), by name."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke_token(session: Session, name: str, *, now: datetime) -> ApiToken:
    """Refuse the token named ``name`` from now on (revoking it twice keeps the first date).

    :raises TokenNotFoundError: no such token.
    """
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()
    if row is None:
        raise TokenNotFoundError(name)
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def authenticate(session: Session, token: str) -> ApiToken | None:
    """The live token row ``token`` is, or None (unknown, revoked, or not one of ours). Reads only.

    The row is found by the token's hash. The index lookup compares hashes, not tokens: its timing can at most
    tell an attacker about the hash of their own guess, which brings them no closer to a token. The final
    comparison is constant-time all the same.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    return row


def needs_use_mark(row: ApiToken, *, now: datetime) -> bool:
    """True when ``row.last_used_at`` is older than its resolution (a minute): worth a write."""
    return row.last_used_at is None or now - row.last_used_at >= _LAST_USED_RESOLUTION


def mark_used(session: Session, token_id: int, *, now: datetime) -> None:
    """Note that token ``token_id`` was used at ``now`` (a later mark already written wins)."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now))
        .values(last_used_at=now)
    )
