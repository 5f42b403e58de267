"""Telling other systems that jobs ended: signed webhook POSTs from the ledger's outbox, delivered at least once.

No Celery: the task layer's ``dsimport.deliver_webhooks`` calls :func:`deliver_due`; the command line's
``webhooks test`` calls :func:`send_test`.
"""

from notifications.bodies import render_body
from notifications.deliver import DeliveryPolicy, DeliveryReport, deliver_due, send_test
from notifications.signing import (
    ID_HEADER,
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signed_headers,
    verify,
)

__all__ = [
    "ID_HEADER",
    "REPLAY_WINDOW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryPolicy",
    "DeliveryReport",
    "deliver_due",
    "render_body",
    "send_test",
    "sign",
    "signed_headers",
    "verify",
]
