"""Success answers: exact status, JSON content type, bodies that fit the models, open enums kept."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
import pytest

from api_client import DatasetImportTask, RetryPolicy, UnexpectedResponseError, is_terminal

from . import samples as s
from .harness import answer, cut_off, raw

D = s.DATASET_ID
NO_RETRY = RetryPolicy.none()


@pytest.mark.parametrize(
    ("call", "args", "wrong_status", "reply"),
    [
        ("import_from_file", (D, "file-abc"), 200, s.task()),
        ("import_from_campaign", (D, s.CAMPAIGN_ID), 201, s.task()),
        ("create_dataset", ("n", "d"), 200, s.dataset()),
        ("create_record", (D, {"messages": []}, {}), 200, s.record()),
        ("delete_dataset", (D,), 200, {}),
        ("fetch_dataset", (D,), 201, s.dataset()),
        ("fetch_task", (D, s.TASK_ID), 202, s.task()),
        ("fetch_task", (D, s.TASK_ID), 304, None),
        ("upload_file", ("f.jsonl", b"x"), 201, s.file_object()),
    ],
)
def test_success_status_must_match_exactly(
    api: Any, call: str, args: tuple[Any, ...], wrong_status: int, reply: Any
) -> None:
    harness = api(answer(wrong_status, reply))
    with pytest.raises(UnexpectedResponseError) as caught:
        harness.call(call, *args)
    error = caught.value
    assert error.reason == "status"
    assert error.status_code == wrong_status
    assert len(harness.wire.requests) == 1


def test_delete_accepts_204_with_any_content_type(api: Any) -> None:
    harness = api(raw(204, b"", "text/plain"))
    assert harness.call("delete_dataset", D) is None


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_is_accepted(api: Any, content_type: str) -> None:
    harness = api(raw(200, b'{"file_url": "http://f/x"}', content_type))
    assert harness.call("export_to_jsonl", D).file_url == "http://f/x"


@pytest.mark.parametrize(
    ("content", "content_type", "reason"),
    [
        (b'{"file_url": "http://f/x"}', "text/html", "content_type"),
        (b'{"file_url": "http://f/x"}', None, "content_type"),
        (b"<html>gateway</html>", "text/html; charset=utf-8", "content_type"),
        (b'{"file_url": "http://f', "application/json", "json"),
        (b"not json at all", "application/json", "json"),
        (b"", "application/json", "json"),
        (b"\xff\xfe\xfa", "application/json", "json"),
        (b'{"other": 1}', "application/json", "model"),
        (b'{"file_url": null}', "application/json", "model"),
        (b"[]", "application/json", "model"),
    ],
)
def test_bodies_that_break_the_contract_raise_unexpected_response(
    api: Any, content: bytes, content_type: str | None, reason: str
) -> None:
    harness = api(raw(200, content, content_type))
    with pytest.raises(UnexpectedResponseError) as caught:
        harness.call("export_to_jsonl", D)
    error = caught.value
    assert error.reason == reason
    assert error.status_code == 200
    assert error.method == "GET"
    assert error.url == f"https://api.mistral.ai/v1/observability/datasets/{D}/exports/to-jsonl"
    assert not isinstance(error, pydantic.ValidationError | httpx.HTTPError)


@pytest.mark.parametrize(
    ("call", "args", "reply"),
    [
        # A task without the deleted_at key (required even though nullable).
        ("fetch_task", (D, s.TASK_ID), {k: v for k, v in s.task().items() if k != "deleted_at"}),
        # A dataset whose description is null.
        ("fetch_dataset", (D,), s.dataset(description=None)),
        # A record payload that is no JSON object (both SDKs want one), properties a list (the seed's sample).
        ("list_records", (D,), {"records": s.page([s.record(payload=[{"role": "user"}])])}),
        ("list_records", (D,), {"records": s.page([s.record(payload=None)])}),
        ("list_records", (D,), {"records": s.page([s.record(properties=[None])])}),
        # A page without its required count, and a list without its wrapper key.
        ("list_tasks", (D,), {"tasks": {"results": []}}),
        ("list_tasks", (D,), s.page([s.task()])),
        ("fetch_conversation", ("conv_1",), {k: v for k, v in s.conversation().items() if k != "model"}),
        ("fetch_event", ("evt-1",), {k: v for k, v in s.event().items() if k != "nb_messages"}),
        ("upload_file", ("f", b"x"), {k: v for k, v in s.file_object().items() if k != "bytes"}),
    ],
)
def test_bodies_not_fitting_the_model_are_rejected_like_the_sdk(
    api: Any, call: str, args: tuple[Any, ...], reply: Any
) -> None:
    status = 200
    harness = api(answer(status, reply))
    with pytest.raises(UnexpectedResponseError) as caught:
        harness.call(call, *args)
    assert caught.value.reason == "model"
    # The pydantic error is kept as the cause (none when the wrapper key itself is missing).
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, pydantic.ValidationError)
    assert caught.value.body is not None


def test_unknown_fields_are_ignored_and_newer_fields_read(api: Any) -> None:
    harness = api(answer(200, s.dataset(slug="my-dataset", brand_new_field={"x": 1})))
    dataset = harness.call("fetch_dataset", D)
    assert dataset.slug == "my-dataset"
    assert not hasattr(dataset, "brand_new_field")


def test_task_result_counts_are_read(api: Any) -> None:
    result = {"requested_record_count": 3, "imported_record_count": 2, "skipped_record_count": 1}
    harness = api(answer(200, s.task(status="COMPLETED", progress=100, result=result)))
    task = harness.call("fetch_task", D, s.TASK_ID)
    assert task.result is not None
    assert (task.result.requested_record_count, task.result.imported_record_count) == (3, 2)
    assert task.is_terminal


@pytest.mark.parametrize("status", ["PENDING", "QUEUED", "CONTINUED_AS_NEW", "UNKNOWN", "running"])
def test_unknown_and_non_terminal_task_statuses_are_kept(api: Any, status: str) -> None:
    harness = api(answer(200, s.task(status=status)))
    task = harness.call("fetch_task", D, s.TASK_ID)
    assert task.status == status
    assert not task.is_terminal
    assert not is_terminal(task.status)


def test_task_without_progress_or_message_means_unknown(api: Any) -> None:
    body = {k: v for k, v in s.task().items() if k not in ("progress", "message")}
    task: DatasetImportTask = api(answer(200, body)).call("fetch_task", D, s.TASK_ID)
    assert task.progress is None
    assert task.message is None


def test_unknown_record_source_and_campaign_status_are_kept(api: Any) -> None:
    harness = api(answer(200, {"records": s.page([s.record(source="SOMETHING_NEW")])}))
    assert harness.call("list_records", D).results[0].source == "SOMETHING_NEW"
    harness = api(answer(200, {"status": "PAUSED_FOR_REVIEW"}))
    assert harness.call("fetch_campaign_status", s.CAMPAIGN_ID) == "PAUSED_FOR_REVIEW"


@pytest.mark.parametrize("page", [{"count": 87}, {"count": 87, "results": None}, {"count": 0, "results": []}])
def test_page_without_results_has_an_empty_list(api: Any, page: dict[str, Any]) -> None:
    result = api(answer(200, {"datasets": page})).call("list_datasets")
    assert result.results == []
    assert result.count == page["count"]


def test_a_body_cut_off_mid_way_raises_unexpected_response(api: Any) -> None:
    harness = api(cut_off(), retry=NO_RETRY)
    with pytest.raises(UnexpectedResponseError) as caught:
        harness.call("fetch_task", D, s.TASK_ID)
    assert caught.value.reason == "incomplete_body"
    assert caught.value.status_code == 200
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


def test_download_returns_raw_bytes_of_any_content_type(api: Any) -> None:
    harness = api(
        answer(200, {"file_url": "https://files.example/export.jsonl?X-Signature=abc"}),
        raw(200, b'{"messages":[]}\n{"messages":[]}\n', "application/octet-stream"),
    )
    assert harness.call("download_export", D) == b'{"messages":[]}\n{"messages":[]}\n'
    download = harness.wire.requests[1]
    assert str(download.url) == "https://files.example/export.jsonl?X-Signature=abc"


def test_download_resolves_a_relative_file_url_against_the_base_url(api: Any) -> None:
    harness = api(
        answer(200, {"file_url": "/exports/x.jsonl?sig=1"}),
        raw(200, b"line\n", "application/x-ndjson"),
        base_url="http://127.0.0.1:8123/prefix",
    )
    assert harness.call("download_export", D) == b"line\n"
    assert str(harness.wire.requests[1].url) == "http://127.0.0.1:8123/exports/x.jsonl?sig=1"
