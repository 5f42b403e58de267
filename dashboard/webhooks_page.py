"""The jobs page's ``/webhooks``: the webhooks, their filters, and the delivery log (newest first).

Webhook URLs are shown by scheme and host only: a Slack incoming-webhook URL's path is itself a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from store.webhooks import delivery_counts, list_webhooks, recent_deliveries

__all__ = ["DELIVERIES_SHOWN", "webhooks_handler"]

DELIVERIES_SHOWN = 100

Render = Callable[[Request, str, dict[str, Any]], Response]


def url_shown(url: str) -> str:
    """Scheme, host and port: no path, query or user info, any of which may hold a credential."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def webhooks_handler(sessions: sessionmaker[Session], render: Render) -> Callable[[Request], Response]:
    """The route handler, rendering ``webhooks.html`` with ``render`` (the page's template response)."""

    def webhooks(request: Request) -> Response:
        with sessions() as session:
            hooks = [
                {
                    "name": hook.name,
                    "format": str(hook.format),
                    "url": url_shown(hook.url),
                    "statuses": hook.statuses,
                    "kinds": hook.kinds,
                    "schedules": hook.schedules,
                    "enabled": hook.enabled,
                }
                for hook in list_webhooks(session)
            ]
            deliveries = recent_deliveries(session, limit=DELIVERIES_SHOWN)
            counts = delivery_counts(session)
        return render(
            request,
            "webhooks.html",
            {"webhooks": hooks, "deliveries": deliveries, "counts": counts, "shown": DELIVERIES_SHOWN},
        )

    return webhooks
