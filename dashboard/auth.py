"""HTTP basic authentication in front of every page except the few that reveal no job data, and the API (whose
bearer tokens are checked by the API itself)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BasicAuthMiddleware", "check_basic_auth"]


def check_basic_auth(header: str | None, username: str, password: str) -> bool:
    """True when ``header`` (an Authorization value) carries exactly this login; compared in constant time."""
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, given = decoded.partition(":")
    # Both comparisons always run, so the time taken does not tell which part was wrong.
    user_ok = hmac.compare_digest(user.encode(), username.encode())
    password_ok = hmac.compare_digest(given.encode(), password.encode())
    return bool(sep) and user_ok and password_ok


class BasicAuthMiddleware:
    """Answers 401 (with a ``WWW-Authenticate`` challenge) unless the request carries the login, or its path is one
    of ``public_paths`` or starts with one of ``public_prefixes``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        username: str,
        password: str,
        realm: str,
        public_paths: Collection[str] = (),
        public_prefixes: Collection[str] = (),
    ) -> None:
        self.app = app
        self.username = username
        self.password = password
        self.realm = realm
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.public_paths or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        if check_basic_auth(header, self.username, self.password):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "authentication required\n",
            status_code=401,
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'},
        )
        await response(scope, receive, send)
