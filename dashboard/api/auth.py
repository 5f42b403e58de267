"""Bearer tokens in front of the API: who is calling (401 otherwise) and whether their scope allows it (403).

A token comes in ``Authorization: Bearer dsi_…`` only, never in a query string (which servers and proxies log).
The token is never logged: a refusal says what was wrong with the header, not what it held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from store.api_tokens import authenticate, mark_used, needs_use_mark
from store.models import TokenScope

from .errors import ApiProblem

__all__ = ["Caller", "TokenCheck"]

_REALM = "dsimport"


@dataclass(frozen=True)
class Caller:
    """The token a request came with: its name (recorded as the origin of the jobs it requests) and scope."""

    name: str
    scope: TokenScope

    def allows(self, needed: TokenScope) -> bool:
        # write includes read.
        return needed == TokenScope.READ or self.scope == TokenScope.WRITE


def _challenge(error: str | None = None, scope: TokenScope | None = None) -> dict[str, str]:
    parts = [f'Bearer realm="{_REALM}"']
    if error is not None:
        parts.append(f'error="{error}"')
    if scope is not None:
        parts.append(f'scope="{scope}"')
    return {"WWW-Authenticate": ", ".join(parts)}


@dataclass(frozen=True)
class TokenCheck:
    """Checks a request's ``Authorization`` header against the ledger's tokens."""

    read_sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    now: Callable[[], datetime]

    def caller(self, header: str | None, needed: TokenScope) -> Caller:
        """The caller, if the header holds a live token whose scope covers ``needed``.

        :raises ApiProblem: 401 (no token, not a bearer token, unknown or revoked) or 403 (read-only token).
        """
        if not header:
            raise ApiProblem(401, "authentication required: send Authorization: Bearer <token>", headers=_challenge())
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiProblem(
                401, "the Authorization header must be 'Bearer <token>'", headers=_challenge("invalid_request")
            )
        with self.read_sessions() as session:
            row = authenticate(session, token)
            if row is None:
                raise ApiProblem(401, "the token is unknown or revoked", headers=_challenge("invalid_token"))
            caller = Caller(row.name, row.scope)
            token_id, stale = row.id, needs_use_mark(row, now=self.now())
        if stale:
            with self.write_sessions() as session:
                mark_used(session, token_id, now=self.now())
                session.commit()
        if not caller.allows(needed):
            raise ApiProblem(
                403,
                f"token {caller.name!r} has the {caller.scope} scope; this needs {needed}",
                headers=_challenge("insufficient_scope", needed),
            )
        return caller
