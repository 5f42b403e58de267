"""Error answers and missing answers map onto the error tree, with the API's message and error code."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from api_client import (
    ApiError,
    AuthenticationError,
    ClientError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    RouteNotFoundError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from api_client.responses import BODY_EXCERPT_CHARS

from . import samples as s
from .harness import answer, raw

D = s.DATASET_ID
NO_RETRY = RetryPolicy.none()
TASK_URL = f"https://api.mistral.ai/v1/observability/datasets/{D}/tasks/{s.TASK_ID}"


def observability_error(message: str, code: str | None) -> dict[str, Any]:
    return {"detail": {"message": message, "error_code": code}}


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (405, ClientError),
        (408, ClientError),
        (409, ConflictError),
        (413, ClientError),
        (422, ValidationError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
    ],
)
def test_each_status_raises_its_class(api: Any, status: int, error_class: type[ApiError]) -> None:
    harness = api(answer(status, observability_error("nope", "SOME_CODE")), retry=NO_RETRY)
    with pytest.raises(error_class) as caught:
        harness.call("fetch_task", D, s.TASK_ID)
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.method == "GET"
    assert error.url == TASK_URL
    assert error.message == "fetch_task: nope"
    assert error.error_code == "SOME_CODE"


def test_observability_error_body_is_parsed(api: Any) -> None:
    body = observability_error("Dataset not found", "DATASET_NOT_FOUND")
    with pytest.raises(NotFoundError) as caught:
        api(answer(404, body)).call("fetch_dataset", D)
    error = caught.value
    assert error.error_code == "DATASET_NOT_FOUND"
    assert "Dataset not found" in error.message
    assert error.body == '{"detail":{"message":"Dataset not found","error_code":"DATASET_NOT_FOUND"}}'
    text = str(error)
    assert "Dataset not found" in text
    assert f"GET https://api.mistral.ai/v1/observability/datasets/{D} -> 404" in text
    assert "[DATASET_NOT_FOUND]" in text


@pytest.mark.parametrize(
    "reply",
    [
        # The web framework's own answer to a path it does not route (FastAPI, Starlette).
        answer(404, {"detail": "Not Found"}),
        # The Observability shape without a code (what the emulator answers for a route it lacks).
        answer(404, observability_error("Not Found: no route POST /x", None)),
        # Not JSON at all: a proxy's page.
        raw(404, b"<html>404</html>", "text/html"),
    ],
)
def test_a_404_without_an_error_code_is_a_missing_route(api: Any, reply: httpx.Response) -> None:
    with pytest.raises(RouteNotFoundError) as caught:
        api(reply).call("import_from_campaign", D, s.CAMPAIGN_ID)
    error = caught.value
    # Still a NotFoundError (and a ClientError): callers that do not care see no difference.
    assert isinstance(error, NotFoundError) and isinstance(error, ClientError)
    assert error.status_code == 404 and error.error_code is None
    assert error.url == f"https://api.mistral.ai/v1/observability/datasets/{D}/imports/from-campaign"


@pytest.mark.parametrize("code", ["DATASET_NOT_FOUND", "CAMPAIGN_NOT_FOUND", "A_CODE_FROM_THE_FUTURE"])
def test_a_404_with_an_error_code_is_a_missing_object(api: Any, code: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        api(answer(404, observability_error("gone", code))).call("import_from_campaign", D, s.CAMPAIGN_ID)
    assert type(caught.value) is NotFoundError and caught.value.error_code == code


def test_a_404_of_an_api_without_error_codes_is_a_plain_not_found(api: Any) -> None:
    # The Conversations API answers a missing conversation without an ObservabilityError code.
    with pytest.raises(NotFoundError) as caught:
        api(answer(404, {"detail": "Conversation not found"})).call("fetch_conversation", "conv_1")
    assert type(caught.value) is NotFoundError


def test_validation_error_carries_its_code(api: Any) -> None:
    body = observability_error("campaign_id is not a uuid", "VALIDATION_ERROR")
    with pytest.raises(ValidationError) as caught:
        api(answer(422, body)).call("import_from_campaign", D, "not-a-uuid")
    assert caught.value.error_code == "VALIDATION_ERROR"


def test_fastapi_validation_body_gives_a_readable_message(api: Any) -> None:
    body = {"detail": [{"loc": ["body", "campaign_id"], "msg": "Field required", "type": "missing"}]}
    with pytest.raises(ValidationError) as caught:
        api(answer(422, body)).call("import_from_campaign", D, "c")
    assert caught.value.message == "import_from_campaign: body.campaign_id: Field required"
    assert caught.value.error_code is None


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"<html>Bad Gateway</html>", "text/html", "HTTP 502 Bad Gateway"),
        (b"", None, "HTTP 502 Bad Gateway"),
        (b'{"detail": "upstream down"}', "application/json", "upstream down"),
        (b'{"message": "upstream down"}', "application/json", "upstream down"),
        (b'{"detail": {"message": 5}}', "application/json", "HTTP 502 Bad Gateway"),
    ],
)
def test_other_error_bodies_fall_back_to_a_plain_message(
    api: Any, content: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(ServerError) as caught:
        api(raw(502, content, content_type), retry=NO_RETRY).call("fetch_dataset", D)
    assert caught.value.message == f"fetch_dataset: {message}"
    assert caught.value.error_code is None


def test_error_body_excerpt_is_truncated(api: Any) -> None:
    with pytest.raises(ServerError) as caught:
        api(raw(500, b"x" * 10_000, "text/plain"), retry=NO_RETRY).call("fetch_dataset", D)
    body = caught.value.body
    assert body is not None
    assert body == "x" * BODY_EXCERPT_CHARS + "…"


def test_rate_limited_error_carries_retry_after(api: Any) -> None:
    harness = api(answer(429, observability_error("slow down", None), headers={"Retry-After": "12"}), retry=NO_RETRY)
    with pytest.raises(RateLimitedError) as caught:
        harness.call("fetch_dataset", D)
    assert caught.value.retry_after_s == 12.0


def test_rate_limited_is_not_a_client_refusal() -> None:
    # Callers treat ClientError as "refused, do not send again"; a 429 is "send again later".
    assert not issubclass(RateLimitedError, ClientError)
    assert issubclass(ValidationError, ClientError)
    assert issubclass(AuthenticationError, ClientError)
    assert issubclass(NotFoundError, ClientError)
    assert issubclass(ConflictError, ClientError)
    for error_class in (ClientError, RateLimitedError, ServerError, TransportError, UnexpectedResponseError):
        assert issubclass(error_class, ApiError)


@pytest.mark.parametrize(
    ("failure", "reached"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), False),
        (httpx.ConnectTimeout("timed out"), False),
        (httpx.PoolTimeout("no connection available"), False),
        (httpx.ReadTimeout("timed out"), True),
        (httpx.WriteError("broken pipe"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx.ReadError("connection reset"), True),
    ],
)
def test_transport_failures_raise_transport_error(api: Any, failure: Exception, reached: bool) -> None:
    harness = api(failure, retry=NO_RETRY)
    with pytest.raises(TransportError) as caught:
        harness.call("fetch_task", D, s.TASK_ID)
    error = caught.value
    assert error.__cause__ is failure
    assert error.may_have_reached_server is reached
    assert error.status_code is None
    assert (error.method, error.url) == ("GET", TASK_URL)
    assert type(failure).__name__ in str(error)


def test_too_many_redirects_is_an_unexpected_response(api: Any) -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url)})

    with pytest.raises(UnexpectedResponseError) as caught:
        api(redirect).call("fetch_dataset", D)
    assert caught.value.reason == "redirects"
    assert isinstance(caught.value.__cause__, httpx.TooManyRedirects)


def test_download_errors_do_not_show_the_presigned_signature(api: Any) -> None:
    harness = api(
        answer(200, {"file_url": "https://files.example/export.jsonl?X-Signature=SECRET-SIG"}),
        raw(403, b"<Error>expired</Error>", "application/xml"),
    )
    with pytest.raises(AuthenticationError) as caught:
        harness.call("download_export", D)
    assert caught.value.url == "https://files.example/export.jsonl"
    assert "SECRET-SIG" not in str(caught.value)


def _every_error() -> list[ApiError]:
    common: dict[str, Any] = {"method": "GET", "url": TASK_URL}
    return [
        ApiError("m", status_code=500, body="b", error_code="E", retry_after_s=1.0, **common),
        ValidationError("m", status_code=422, error_code="VALIDATION_ERROR", **common),
        NotFoundError("m", status_code=404, **common),
        RateLimitedError("m", status_code=429, retry_after_s=3.0, **common),
        TransportError("m", may_have_reached_server=False, **common),
        UnexpectedResponseError("m", reason="json", status_code=200, body="{", **common),
    ]


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error: ApiError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
