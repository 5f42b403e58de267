"""Records the requests the official SDK puts on the wire, for whatever ``mistralai`` version runs this script.

Run as a script by tests/api_client/test_wire_matches_sdk3.py with the cached 3.7.0 environment's interpreter
(tests/contract/sdk_venv.py): that SDK cannot share the project's environment. It imports nothing of this project.
Reads a JSON list of calls on stdin::

    [{"id": "fetch-record", "call": "datasets.records.fetch", "kwargs": {...}, "status": 200, "reply": {...}}]

where ``call`` is a path under ``Mistral(...).beta.observability``. Each call runs against a mock transport that
answers ``status`` with ``reply`` as JSON (no body when null). Prints ``{id: request}`` with the request's method,
raw target, content type, body (base64), authorization and accept headers, or ``{"error": ...}`` when the SDK raised.
"""

from __future__ import annotations

import base64
import json
import sys
import traceback
from typing import Any

KEY = "sk-test"
SERVER = "http://127.0.0.1:9/prefix"


def _http_module() -> Any:
    # SDK 3.x ships its own httpx fork (httpx2); 2.x uses httpx.
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


def record(case: dict[str, Any]) -> dict[str, Any]:
    from mistralai.client import Mistral

    http = _http_module()
    seen: list[Any] = []

    def handle(request: Any) -> Any:
        request.read()
        seen.append(request)
        if case["reply"] is None:
            return http.Response(case["status"])
        return http.Response(case["status"], json=case["reply"])

    with http.Client(transport=http.MockTransport(handle)) as client:
        sdk = Mistral(api_key=KEY, server_url=SERVER, client=client)
        target: Any = sdk.beta.observability
        for part in case["call"].split("."):
            target = getattr(target, part)
        try:
            target(**case["kwargs"])
        except Exception:
            return {"error": traceback.format_exc(limit=3)}
    if not seen:
        return {"error": "the SDK sent nothing"}
    request = seen[-1]
    return {
        "method": request.method,
        "target": request.url.raw_path.decode(),
        "content_type": request.headers.get("content-type"),
        "body": base64.b64encode(request.content).decode(),
        "authorization": request.headers.get("authorization", ""),
        "accept": request.headers.get("accept", ""),
    }


def main() -> int:
    cases = json.load(sys.stdin)
    json.dump({case["id"]: record(case) for case in cases}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
