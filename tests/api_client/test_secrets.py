"""The API key reaches the Authorization header of API requests and nothing else: no repr, error or log line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api_client import ApiError, AsyncDatasetsClient, DatasetsClient, RetryPolicy

from . import samples as s
from .harness import API_KEY, answer, cut_off, raw

D = s.DATASET_ID


def test_repr_and_str_do_not_show_the_key() -> None:
    with DatasetsClient(API_KEY, base_url="http://127.0.0.1:1") as client:
        assert API_KEY not in repr(client)
        assert API_KEY not in str(client)
        assert repr(client) == "DatasetsClient(base_url='http://127.0.0.1:1')"
        assert API_KEY not in repr(vars(client))

    async def check_async() -> None:
        async with AsyncDatasetsClient(SecretStr(API_KEY)) as client:
            assert API_KEY not in repr(client)
            assert API_KEY not in repr(vars(client))

    asyncio.run(check_async())


def test_a_secret_str_key_is_sent(api: Any) -> None:
    harness = api(answer(200, s.dataset()), api_key=SecretStr(API_KEY))
    harness.call("fetch_dataset", D)
    assert harness.wire.last.headers["authorization"] == f"Bearer {API_KEY}"


def test_an_empty_key_sends_no_authorization_header(api: Any) -> None:
    harness = api(answer(200, s.dataset()), api_key="")
    harness.call("fetch_dataset", D)
    assert "authorization" not in harness.wire.last.headers


def test_the_presigned_download_gets_no_authorization_header(api: Any) -> None:
    harness = api(
        answer(200, {"file_url": "https://files.example/e.jsonl?sig=1"}),
        raw(200, b"{}\n", "application/octet-stream"),
    )
    harness.call("download_export", D)
    export, download = harness.wire.requests
    assert export.headers["authorization"] == f"Bearer {API_KEY}"
    assert "authorization" not in download.headers
    assert download.method == "GET"
    assert download.content == b""


FAILURES = [
    answer(404, {"detail": {"message": "not found", "error_code": "DATASET_NOT_FOUND"}}),
    answer(401, {"detail": "bad key"}),
    answer(503, None),
    raw(200, b"<html>", "text/html"),
    raw(200, b"{", "application/json"),
    cut_off(),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("timed out"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: type(f).__name__ + str(getattr(f, "status_code", "")))
def test_errors_and_logs_never_show_the_key(
    api: Any, failure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = api(failure, retry=RetryPolicy(max_attempts=2, random=lambda: 0.0))
    with pytest.raises(ApiError) as caught:
        harness.call("fetch_dataset", D)
    error = caught.value
    for text in (str(error), repr(error), repr(vars(error)), caplog.text):
        assert API_KEY not in text
    assert "authorization" not in str(error).lower()


def test_debug_logs_name_method_path_status_and_time(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="api_client")
    harness = api(answer(503, None), answer(200, s.dataset()), retry=RetryPolicy(random=lambda: 0.0))
    harness.call("fetch_dataset", D)
    lines = [r.getMessage() for r in caplog.records if r.name == "api_client"]
    assert f"GET /v1/observability/datasets/{D} -> 503 in 0.000s" in lines
    assert f"GET /v1/observability/datasets/{D} -> 200 in 0.000s" in lines
    assert any(line.startswith("fetch_dataset failed (503); retrying in 0.00s (attempt 2 of 4)") for line in lines)
    assert API_KEY not in caplog.text
