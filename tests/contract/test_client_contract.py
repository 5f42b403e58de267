"""The SDK contract scenarios through our own client, sync and async, against the emulator on a socket."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api_client import (
    AsyncDatasetsClient,
    AuthenticationError,
    ConversationPayload,
    Dataset,
    DatasetImportTask,
    DatasetsClient,
    JudgeOutput,
    NotFoundError,
    Page,
    RetryPolicy,
    RouteNotFoundError,
    ServerError,
    ValidationError,
)
from emulator.fixtures import (
    DEMO_BAD_FILE_ID,
    DEMO_CAMPAIGN_COMPLETED_ID,
    DEMO_CONVERSATION_IDS,
    DEMO_DATASET_ID,
    DEMO_FILE_ID,
    DEMO_RECORD_IDS,
)
from emulator.testing import EmulatorServer

pytestmark = pytest.mark.contract

MISSING = "6d7c6a2e-0000-4000-8000-000000000000"


class Both:
    """Calls a client method the same way whether the client is sync or async.

    An async client belongs to one event loop, so async calls all run on one loop in a background thread.
    """

    def __init__(self, client: DatasetsClient | AsyncDatasetsClient, loop: asyncio.AbstractEventLoop | None) -> None:
        self.client = client
        self.loop = loop

    def _run(self, coroutine: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if isinstance(self.client, DatasetsClient):
            return method  # type: ignore[no-any-return]
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def collect(self, name: str, *args: Any) -> list[Any]:
        iterator = getattr(self.client, name)(*args)
        if isinstance(self.client, DatasetsClient):
            return list(iterator)

        async def gather() -> list[Any]:
            return [item async for item in iterator]

        return self._run(gather())  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, emu: EmulatorServer) -> Iterator[Both]:
    retry = RetryPolicy(max_attempts=1)
    if request.param == "sync":
        with DatasetsClient(emu.api_key, base_url=emu.url, retry=retry) as client:
            yield Both(client, None)
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make() -> AsyncDatasetsClient:
        return AsyncDatasetsClient(emu.api_key, base_url=emu.url, retry=retry)

    client = asyncio.run_coroutine_threadsafe(make(), loop).result()
    try:
        yield Both(client, loop)
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_every_dataset_endpoint_returns_its_model(emu: EmulatorServer, api: Both) -> None:
    listed = api.list_datasets()
    assert isinstance(listed, Page) and listed.count == 2
    created = api.create_dataset("Contract", "made by our client")
    assert isinstance(created, Dataset) and created.deleted_at is None and created.slug
    assert api.fetch_dataset(created.id).name == "Contract"
    assert api.update_dataset(created.id, name="Renamed").name == "Renamed"
    assert api.update_dataset(created.id, description=None).description == "made by our client"
    record = api.create_record(created.id, {"messages": [{"role": "user", "content": "hi"}]}, {"label": "ok"})
    assert record.source == "DIRECT_INPUT" and record.properties == {"label": "ok"}

    event_ids = api.search_event_ids(None)
    tasks = [
        api.import_from_campaign(created.id, DEMO_CAMPAIGN_COMPLETED_ID),
        api.import_from_explorer(created.id, event_ids[:2]),
        api.import_from_file(created.id, DEMO_FILE_ID),
        api.import_from_playground(created.id, list(DEMO_CONVERSATION_IDS)),
        api.import_from_dataset_records(created.id, list(DEMO_RECORD_IDS)),
    ]
    for task in tasks:
        assert isinstance(task, DatasetImportTask)
        assert (task.status, task.progress, task.dataset_id) == ("RUNNING", 0, created.id)
    emu.advance_clock(5)
    for task in tasks:
        done = api.fetch_task(created.id, task.id)
        assert done.status == "COMPLETED" and done.progress == 100 and done.result is not None

    page = api.list_tasks(created.id, page_size=2)
    assert page.count == 5 and len(page.results or []) == 2
    assert {t.id for t in api.collect("iter_tasks", created.id)} == {t.id for t in tasks}

    records = api.collect("iter_records", created.id)
    assert {r.source for r in records} == {"DIRECT_INPUT", "EXPLORER", "UPLOADED_FILE", "PLAYGROUND"}
    exported = api.download_export(created.id)
    lines = exported.decode().splitlines()
    assert len(lines) == len(records) and all("payload" in json.loads(line) for line in lines)

    assert api.delete_dataset(created.id) is None
    with pytest.raises(NotFoundError):
        api.fetch_dataset(created.id)


def test_records_of_today_s_api_by_slug_and_by_record_id(emu: EmulatorServer, api: Both) -> None:
    created = api.create_dataset("Records Today", "3.x records")
    assert created.slug == "records-today" and api.fetch_dataset(created.slug).id == created.id
    span_payload = {"input": {"question": "2+2?"}, "output": "4"}
    span = api.create_record(created.slug, span_payload, source="TELEMETRY_SPAN")
    chat = api.create_record(created.id, {"messages": [{"role": "user", "content": "hi"}]}, {"label": "ok"})
    assert (span.source, span.payload, span.dataset_id) == ("TELEMETRY_SPAN", span_payload, created.id)

    # A listed page holding a record without messages parses (it did not before 3.x payloads were modelled).
    listed = {record.id: record for record in api.collect("iter_records", created.slug)}
    assert isinstance(listed[chat.id].payload, ConversationPayload) and listed[span.id].payload == span_payload

    assert api.fetch_record(span.id).payload == span_payload
    assert api.update_record_payload(span.id, {"input": "changed"}) is None
    assert api.update_record_properties(span.id, {"reviewed": True}) is None
    changed = api.fetch_record(span.id)
    assert (changed.payload, changed.properties) == ({"input": "changed"}, {"reviewed": True})

    judge = {
        "name": "tone", "description": "d", "model_name": "mistral-small-latest", "instructions": "Rate it.",
        "tools": [], "output": {"type": "REGRESSION", "min_description": "rude", "max_description": "polite"},
    }  # fmt: skip
    verdict = api.judge_record(chat.id, judge)
    assert isinstance(verdict, JudgeOutput) and isinstance(verdict.answer, float) and 0 <= verdict.answer <= 1

    assert api.delete_record(chat.id) is None
    with pytest.raises(NotFoundError) as gone:
        api.fetch_record(chat.id)
    assert gone.value.error_code == "DATASET_RECORD_NOT_FOUND" and not isinstance(gone.value, RouteNotFoundError)
    assert api.bulk_delete_records([span.id]) is None
    assert api.list_records(created.slug).count == 0


def test_404_carries_the_error_code(api: Both) -> None:
    with pytest.raises(NotFoundError) as caught:
        api.fetch_dataset(MISSING)
    assert caught.value.status_code == 404 and caught.value.error_code == "DATASET_NOT_FOUND"


def test_removed_import_routes_are_a_404_without_a_code(emu: EmulatorServer, api: Both) -> None:
    # Today's API (emulator knob): from-campaign and from-explorer are routes it does not have. The missing code is
    # what tells this 404 apart from a missing dataset.
    emu.configure(removed_import_routes="gone")
    with pytest.raises(RouteNotFoundError) as campaign:
        api.import_from_campaign(DEMO_DATASET_ID, DEMO_CAMPAIGN_COMPLETED_ID)
    assert campaign.value.status_code == 404 and campaign.value.error_code is None
    assert "no route POST" in str(campaign.value)
    with pytest.raises(RouteNotFoundError) as explorer:
        api.import_from_explorer(DEMO_DATASET_ID, ["evt"])
    assert explorer.value.error_code is None
    assert emu.stats()["tasks_created"] == {}
    with pytest.raises(NotFoundError) as task_missing:
        api.fetch_task(DEMO_DATASET_ID, MISSING)
    assert task_missing.value.error_code == "DATASET_TASK_NOT_FOUND"
    assert not isinstance(task_missing.value, RouteNotFoundError)


def test_422_is_a_validation_error(api: Both) -> None:
    with pytest.raises(ValidationError) as caught:
        api.fetch_task(DEMO_DATASET_ID, "not-a-uuid")
    assert caught.value.status_code == 422 and caught.value.error_code == "VALIDATION_ERROR"
    # A dataset path value that is not UUID-shaped is a slug: an unknown one is a missing dataset.
    with pytest.raises(NotFoundError) as slug:
        api.fetch_dataset("not-a-uuid")
    assert slug.value.error_code == "DATASET_NOT_FOUND"


def test_import_errors_are_typed(api: Both) -> None:
    with pytest.raises(NotFoundError) as campaign:
        api.import_from_campaign(DEMO_DATASET_ID, MISSING)
    assert campaign.value.error_code == "CAMPAIGN_NOT_FOUND"
    with pytest.raises(NotFoundError) as record:
        api.import_from_dataset_records(DEMO_DATASET_ID, [MISSING])
    assert record.value.error_code == "DATASET_RECORD_NOT_FOUND"


def test_a_failed_file_import_is_a_failed_task(emu: EmulatorServer, api: Both) -> None:
    task = api.import_from_file(DEMO_DATASET_ID, DEMO_BAD_FILE_ID)
    emu.advance_clock(5)
    failed = api.fetch_task(DEMO_DATASET_ID, task.id)
    assert failed.status == "FAILED" and failed.message is not None and "line 3" in failed.message


def test_a_wrong_key_is_an_authentication_error(emu: EmulatorServer) -> None:
    with DatasetsClient("", base_url=emu.url) as anonymous, pytest.raises(AuthenticationError) as caught:
        anonymous.list_datasets()
    assert caught.value.status_code == 401


def test_unusual_statuses_come_through_as_strings(emu: EmulatorServer, api: Both) -> None:
    emu.configure(status_sequence=["CONTINUED_AS_NEW", "UNKNOWN"], terminal_status="TERMINATED")
    task = api.import_from_file(DEMO_DATASET_ID, DEMO_FILE_ID)
    seen = {task.status}
    for _ in range(5):
        emu.advance_clock(1.2)
        seen.add(api.fetch_task(DEMO_DATASET_ID, task.id).status)
    assert {"CONTINUED_AS_NEW", "UNKNOWN", "TERMINATED"} <= seen


def test_a_503_then_success_is_retried_by_reads(emu: EmulatorServer) -> None:
    emu.configure(faults={"list_datasets": {"status": 503, "next": 1}})
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with DatasetsClient(emu.api_key, base_url=emu.url, retry=policy) as client:
        assert client.list_datasets().count == 2
    emu.configure(faults={"list_datasets": {"status": 503, "next": 1}})
    with DatasetsClient(emu.api_key, base_url=emu.url, retry=RetryPolicy.none()) as client:
        with pytest.raises(ServerError):
            client.list_datasets()
