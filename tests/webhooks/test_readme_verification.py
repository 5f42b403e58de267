"""The README's verification snippet, run as written, accepts what the deliverer sends and refuses replays and
tampering; the header names it documents are the ones sent."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from notifications.deliver import post_signed
from notifications.signing import ID_HEADER, REPLAY_WINDOW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from tests.webhooks.receiver import receiver

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec-readme-0123456789"


def _readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Webhooks") : text.index("## The emulator")]


def _readme_verify() -> Callable[..., bool]:
    [snippet] = re.findall(r"```python\n(.*?)```", _readme_section(), re.S)
    assert len(snippet.strip().splitlines()) <= 10
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    function = namespace["verify"]
    assert callable(function)
    return function  # type: ignore[return-value]


def test_the_documented_headers_are_the_ones_sent() -> None:
    section = _readme_section()
    for header in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        assert f"`{header}`" in section
    assert REPLAY_WINDOW_S == 300 and "five minutes" in section


def test_the_readme_snippet_accepts_a_delivery_and_refuses_replays_and_tampering() -> None:
    readme_verify = _readme_verify()
    with receiver() as hook, httpx.Client() as http:
        answer = post_signed(http, hook.url, secret=SECRET, event_id="evt-1", body=b'{"a":1}', timeout_s=2)
        assert answer.ok
        [request] = hook.received
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert readme_verify(SECRET, headers, request.body)
    assert verify(SECRET, headers, request.body, now=time.time())
    assert not readme_verify("another-secret", headers, request.body)
    assert not readme_verify(SECRET, headers, request.body + b" ")

    def signed_at(timestamp: int) -> dict[str, str]:
        return {
            **headers,
            "dsimport-webhook-timestamp": str(timestamp),
            "dsimport-webhook-signature": sign(SECRET, timestamp, request.body),
        }

    old = int(time.time()) - REPLAY_WINDOW_S - 5
    assert not readme_verify(SECRET, signed_at(old), request.body)
    assert not verify(SECRET, signed_at(old), request.body, now=time.time())
    assert readme_verify(SECRET, signed_at(old + 10), request.body)  # inside the window
