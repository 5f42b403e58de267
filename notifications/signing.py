"""How a webhook POST is signed, and how a receiver checks it (the README shows the same check in ten lines).

``Dsimport-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` where ``<timestamp>`` is
``Dsimport-Webhook-Timestamp`` (unix seconds) and ``<body>`` the raw request body. Signing the timestamp with the
body lets a receiver refuse a captured request replayed later: it rejects timestamps older than
:data:`REPLAY_WINDOW_S`. ``Dsimport-Webhook-Id`` is the event id, the same on every retry, to dedupe by.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["ID_HEADER", "REPLAY_WINDOW_S", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "signed_headers", "verify"]

ID_HEADER = "Dsimport-Webhook-Id"
TIMESTAMP_HEADER = "Dsimport-Webhook-Timestamp"
SIGNATURE_HEADER = "Dsimport-Webhook-Signature"
REPLAY_WINDOW_S = 300
_VERSION = "v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return f"{_VERSION}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, *, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one POST: content type, event id, timestamp and signature."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, window_s: int = REPLAY_WINDOW_S
) -> bool:
    """True when ``headers`` sign ``body`` with ``secret`` and the timestamp is within ``window_s`` of ``now``.

    ``headers`` is looked up case-insensitively by lower-cased name, as HTTP servers hand them over.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    if not stamp.isdigit() or abs(now - int(stamp)) > window_s:
        return False
    offered = lowered.get(SIGNATURE_HEADER.lower(), "")
    return hmac.compare_digest(sign(secret, int(stamp), body), offered)
