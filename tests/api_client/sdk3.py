"""The requests the official SDK 3.x puts on the wire, recorded in a subprocess.

mistralai 3.x depends on ``httpx2``, not ``httpx``, and cannot share this virtualenv with the 2.5.0 SDK the other
wire tests use; it lives in its own interpreter (``DSIMPORT_TEST_SDK3_PYTHON``). Each call is made there against an
``httpx2.MockTransport`` that answers with the given status and body, and the request is sent back as JSON.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

SDK3_PYTHON = Path(os.environ.get("DSIMPORT_TEST_SDK3_PYTHON", "/work/sdk37/bin/python"))

# Runs in the SDK 3.x interpreter: reads the calls on stdin, writes one request view per call on stdout.
_RECORDER = r"""
import base64, datetime, json, sys
import httpx2
from mistralai.client import Mistral

calls = json.load(sys.stdin)
views = []
for call in calls:
    seen = []
    def handle(request, call=call):
        seen.append(request)
        return httpx2.Response(call["status"], json=call["reply"])
    kwargs = dict(call["kwargs"])
    for name in call.get("datetimes", []):
        kwargs[name] = datetime.datetime.fromisoformat(kwargs[name].replace("Z", "+00:00"))
    with httpx2.Client(transport=httpx2.MockTransport(handle)) as http:
        sdk = Mistral(api_key=call["api_key"], server_url=call["server_url"], client=http)
        target = sdk
        for part in call["method"].split("."):
            target = getattr(target, part)
        target(**kwargs)
    request = seen[-1]
    views.append([request.method, request.url.raw_path.decode(), request.headers.get("content-type"),
                  base64.b64encode(request.content).decode(), request.headers.get("authorization", ""),
                  request.headers.get("accept", "")])
json.dump(views, sys.stdout)
"""


def available() -> bool:
    return SDK3_PYTHON.is_file()


def record(calls: list[dict[str, Any]]) -> list[tuple[str, str, str | None, bytes, str, str]]:
    """One request view per call: ``{"method": "beta.observability.spans.search_spans", "kwargs": {...},
    "status": 200, "reply": {...}, "api_key": ..., "server_url": ..., "datetimes": [kwarg names]}``."""
    result = subprocess.run(
        [str(SDK3_PYTHON), "-c", _RECORDER],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # The SDK's telemetry export is opt-in; keep it off whatever the caller's environment says.
        env={"PATH": os.environ.get("PATH", ""), "MISTRAL_SDK_TELEMETRY": "false"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"the SDK 3.x recorder failed:\n{result.stderr}")
    return [
        (method, path, content_type, base64.b64decode(body), auth, accept)
        for method, path, content_type, body, auth, accept in json.loads(result.stdout)
    ]
