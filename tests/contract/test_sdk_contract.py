"""The official SDK (mistralai==2.5.0) against the emulator: typed results, typed errors.

If the emulator drifts from the real API's wire format (status codes, required keys, error
bodies), these calls raise ``SDKError`` or ``ResponseValidationError`` instead of returning models.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from mistralai.client import Mistral, errors, models
from mistralai.client.utils import BackoffStrategy, RetryConfig

from emulator.fixtures import (
    DEMO_CAMPAIGN_COMPLETED_ID,
    DEMO_CONVERSATION_IDS,
    DEMO_DATASET_ID,
    DEMO_FILE_ID,
    DEMO_RECORD_IDS,
)
from emulator.testing import EmulatorServer

pytestmark = pytest.mark.contract

MISSING = "6d7c6a2e-0000-4000-8000-000000000000"
RETRY = RetryConfig(
    strategy="backoff",
    backoff=BackoffStrategy(initial_interval=10, max_interval=50, exponent=1.5, max_elapsed_time=10_000),
    retry_connection_errors=False,
)


def test_every_dataset_endpoint_returns_its_model(emu: EmulatorServer, sdk: Mistral) -> None:
    datasets = sdk.beta.observability.datasets

    listed = datasets.list()
    assert isinstance(listed, models.ListDatasetsResponse) and listed.datasets.count == 2
    assert listed.datasets.results is not None
    assert all(isinstance(d, models.DatasetPreview) for d in listed.datasets.results)

    created = datasets.create(name="Contract", description="made by the SDK")
    assert isinstance(created, models.Dataset) and created.deleted_at is None

    fetched = datasets.fetch(dataset_id=created.id)
    assert isinstance(fetched, models.DatasetPreview) and fetched.name == "Contract"

    renamed = datasets.update(dataset_id=created.id, name="Renamed")
    assert isinstance(renamed, models.DatasetPreview) and renamed.name == "Renamed"
    kept = datasets.update(dataset_id=created.id, description=None)
    assert kept.description == "made by the SDK"

    record = datasets.create_record(
        dataset_id=created.id,
        payload=models.ConversationPayload(messages=[{"role": "user", "content": "hi"}]),
        properties={"label": "ok"},
    )
    assert isinstance(record, models.DatasetRecord) and record.source == "DIRECT_INPUT"

    events = sdk.beta.observability.chat_completion_events.search_ids(search_params={"filters": None})
    tasks = [
        datasets.import_from_campaign(dataset_id=created.id, campaign_id=DEMO_CAMPAIGN_COMPLETED_ID),
        datasets.import_from_explorer(dataset_id=created.id, completion_event_ids=events.completion_event_ids[:2]),
        datasets.import_from_file(dataset_id=created.id, file_id=DEMO_FILE_ID),
        datasets.import_from_playground(dataset_id=created.id, conversation_ids=list(DEMO_CONVERSATION_IDS)),
        datasets.import_from_dataset_records(dataset_id=created.id, dataset_record_ids=list(DEMO_RECORD_IDS)),
    ]
    for task in tasks:
        assert isinstance(task, models.DatasetImportTask)
        assert (task.status, task.progress, task.dataset_id) == ("RUNNING", 0, created.id)

    emu.advance_clock(5)
    for task in tasks:
        done = datasets.fetch_task(dataset_id=created.id, task_id=task.id)
        assert isinstance(done, models.DatasetImportTask) and done.status == "COMPLETED" and done.progress == 100

    listed_tasks = datasets.list_tasks(dataset_id=created.id, page_size=2)
    assert isinstance(listed_tasks, models.ListDatasetImportTasksResponse)
    assert listed_tasks.tasks.count == 5 and listed_tasks.tasks.next is not None

    records = datasets.list_records(dataset_id=created.id, page_size=100)
    assert isinstance(records, models.ListDatasetRecordsResponse)
    # 1 direct + 10 campaign events (2 of the explorer ones may overlap) + 5 file + 3 playground + 3 copies
    assert records.records.results is not None and records.records.count == len(records.records.results)
    assert {r.source for r in records.records.results} == {"DIRECT_INPUT", "EXPLORER", "UPLOADED_FILE", "PLAYGROUND"}

    export = datasets.export_to_jsonl(dataset_id=created.id)
    assert isinstance(export, models.ExportDatasetResponse)
    assert len(httpx.get(export.file_url).text.splitlines()) == records.records.count

    assert datasets.delete(dataset_id=created.id) is None
    with pytest.raises(errors.ObservabilityError):
        datasets.fetch(dataset_id=created.id)


def test_list_with_query_and_paging_arguments(sdk: Mistral) -> None:
    page = sdk.beta.observability.datasets.list(page_size=1, page=2, q="a")
    assert page.datasets.count == 2 and page.datasets.previous is not None and page.datasets.next is None


def test_async_twins_work(emu: EmulatorServer) -> None:
    async def run() -> models.DatasetImportTask:
        async with Mistral(api_key=emu.api_key, server_url=emu.url) as client:
            datasets = client.beta.observability.datasets
            dataset = await datasets.create_async(name="Async", description="")
            task = await datasets.import_from_file_async(dataset_id=dataset.id, file_id=DEMO_FILE_ID)
            return await datasets.fetch_task_async(dataset_id=dataset.id, task_id=task.id)

    assert asyncio.run(run()).status == "RUNNING"


def test_404_is_observability_error_with_code(sdk: Mistral) -> None:
    with pytest.raises(errors.ObservabilityError) as caught:
        sdk.beta.observability.datasets.fetch(dataset_id=MISSING)
    assert caught.value.status_code == 404
    assert caught.value.data.detail.error_code == "DATASET_NOT_FOUND"
    with pytest.raises(errors.ObservabilityError) as task_missing:
        sdk.beta.observability.datasets.fetch_task(dataset_id=DEMO_DATASET_ID, task_id=MISSING)
    assert task_missing.value.data.detail.error_code == "DATASET_TASK_NOT_FOUND"


@pytest.mark.parametrize("call", ["bad_uuid", "page_size", "page"])
def test_422_is_observability_error_validation(sdk: Mistral, call: str) -> None:
    datasets = sdk.beta.observability.datasets
    with pytest.raises(errors.ObservabilityError) as caught:
        if call == "bad_uuid":
            # Task ids are UUIDs; a dataset path value that is not UUID-shaped is a slug (404 when unknown).
            datasets.fetch_task(dataset_id=DEMO_DATASET_ID, task_id="not-a-uuid")
        elif call == "page_size":
            datasets.list(page_size=0)
        else:
            datasets.list_records(dataset_id=DEMO_DATASET_ID, page=0)
    assert caught.value.status_code == 422
    assert caught.value.data.detail.error_code == "VALIDATION_ERROR"


def test_import_errors_are_typed(sdk: Mistral) -> None:
    datasets = sdk.beta.observability.datasets
    with pytest.raises(errors.ObservabilityError) as campaign:
        datasets.import_from_campaign(dataset_id=DEMO_DATASET_ID, campaign_id=MISSING)
    assert campaign.value.data.detail.error_code == "CAMPAIGN_NOT_FOUND"
    with pytest.raises(errors.ObservabilityError) as record:
        datasets.import_from_dataset_records(dataset_id=DEMO_DATASET_ID, dataset_record_ids=[MISSING])
    assert record.value.data.detail.error_code == "DATASET_RECORD_NOT_FOUND"


def test_failed_file_import_is_a_failed_task(emu: EmulatorServer, sdk: Mistral) -> None:
    from emulator.fixtures import DEMO_BAD_FILE_ID

    datasets = sdk.beta.observability.datasets
    task = datasets.import_from_file(dataset_id=DEMO_DATASET_ID, file_id=DEMO_BAD_FILE_ID)
    emu.advance_clock(5)
    failed = datasets.fetch_task(dataset_id=DEMO_DATASET_ID, task_id=task.id)
    assert failed.status == "FAILED" and failed.message is not None and "line 3" in failed.message


def test_missing_key_is_sdk_error_401(emu: EmulatorServer) -> None:
    with Mistral(server_url=emu.url) as anonymous, pytest.raises(errors.SDKError) as caught:
        anonymous.beta.observability.datasets.list()
    assert caught.value.status_code == 401


def test_unusual_statuses_are_surfaced_to_the_sdk(emu: EmulatorServer, sdk: Mistral) -> None:
    emu.configure(status_sequence=["RUNNING", "CONTINUED_AS_NEW"], terminal_status="UNKNOWN")
    datasets = sdk.beta.observability.datasets
    task = datasets.import_from_file(dataset_id=DEMO_DATASET_ID, file_id=DEMO_FILE_ID)
    emu.advance_clock(3)
    assert datasets.fetch_task(dataset_id=DEMO_DATASET_ID, task_id=task.id).status == "CONTINUED_AS_NEW"
    emu.advance_clock(100)
    stuck = datasets.fetch_task(dataset_id=DEMO_DATASET_ID, task_id=task.id)
    assert stuck.status == "UNKNOWN" and stuck.progress is None


def test_injected_503_then_success_with_sdk_retries(emu: EmulatorServer, sdk: Mistral) -> None:
    emu.configure(faults={"list_datasets": {"status": 503, "next": 1}})
    with pytest.raises(errors.SDKError) as caught:
        sdk.beta.observability.datasets.list()
    assert caught.value.status_code == 503
    emu.configure(faults={"list_datasets": {"status": 429, "next": 2, "retry_after_s": 0.05}})
    emu.reset_stats()
    assert sdk.beta.observability.datasets.list(retries=RETRY).datasets.count == 2
    assert emu.stats()["responses"]["list_datasets"] == {"429": 2, "200": 1}


def test_campaigns(emu: EmulatorServer, sdk: Mistral) -> None:
    campaigns = sdk.beta.observability.campaigns
    created = campaigns.create(
        search_params={"filters": {"field": "nb_input_tokens", "op": "gte", "value": 100}},
        judge_id="judge-1",
        name="SDK campaign",
        description="tokens >= 100",
        max_nb_events=5,
    )
    assert isinstance(created, models.Campaign) and isinstance(created.judge, models.Judge)
    listed = campaigns.list()
    assert isinstance(listed, models.ListCampaignsResponse) and listed.campaigns.count == 4
    fetched = campaigns.fetch(campaign_id=DEMO_CAMPAIGN_COMPLETED_ID)
    assert isinstance(fetched, models.Campaign) and fetched.max_nb_events == 10
    status = campaigns.fetch_status(campaign_id=created.id)
    assert isinstance(status, models.FetchCampaignStatusResponse) and status.status == "RUNNING"
    emu.advance_clock(5)
    assert campaigns.fetch_status(campaign_id=created.id).status == "COMPLETED"
    events = campaigns.list_events(campaign_id=created.id)
    assert isinstance(events, models.ListCampaignSelectedEventsResponse) and events.completion_events.count == 5
    assert campaigns.delete(campaign_id=created.id) is None
    with pytest.raises(errors.ObservabilityError) as caught:
        campaigns.fetch(campaign_id=created.id)
    assert caught.value.data.detail.error_code == "CAMPAIGN_NOT_FOUND"


def test_chat_completion_events(sdk: Mistral) -> None:
    events = sdk.beta.observability.chat_completion_events
    feed = events.search(search_params={"filters": None}, page_size=8)
    assert isinstance(feed, models.SearchChatCompletionEventsResponse)
    first_page = feed.completion_events
    assert first_page.results is not None and len(first_page.results) == 8 and first_page.cursor
    second = events.search(search_params={"filters": None}, page_size=8, cursor=first_page.cursor)
    assert second.completion_events.results is not None
    assert {e.event_id for e in first_page.results}.isdisjoint(e.event_id for e in second.completion_events.results)
    filters = {"OR": [{"field": "extra_fields.user_id", "op": "eq", "value": "user-0"}]}
    ids = events.search_ids(search_params={"filters": filters})
    assert isinstance(ids, models.SearchChatCompletionEventIdsResponse) and len(ids.completion_event_ids) == 5
    event = events.fetch(event_id=ids.completion_event_ids[0])
    assert isinstance(event, models.ChatCompletionEvent) and event.extra_fields["user_id"] == "user-0"
    with pytest.raises(errors.ObservabilityError) as caught:
        events.fetch(event_id="nope")
    assert caught.value.status_code == 404


def test_conversations(sdk: Mistral) -> None:
    conversations = sdk.beta.conversations
    model_conv = conversations.get(conversation_id=DEMO_CONVERSATION_IDS[0])
    assert isinstance(model_conv, models.ModelConversation) and model_conv.model == "mistral-medium-latest"
    agent_conv = conversations.get(conversation_id=DEMO_CONVERSATION_IDS[2])
    assert isinstance(agent_conv, models.AgentConversation)
    messages = conversations.get_messages(conversation_id=DEMO_CONVERSATION_IDS[1])
    assert isinstance(messages, models.ConversationMessages) and len(messages.messages) == 4
    assert isinstance(messages.messages[0], models.MessageInputEntry)
    assert isinstance(messages.messages[1], models.MessageOutputEntry)
    listed = conversations.list(page=0, page_size=2)
    assert len(listed) == 2
    started = conversations.start(inputs="Ping", model="mistral-small-latest")
    assert isinstance(started, models.ConversationResponse)
    assert conversations.get(conversation_id=started.conversation_id).id == started.conversation_id
    with pytest.raises(errors.SDKError) as caught:
        conversations.get(conversation_id="conv_missing")
    assert caught.value.status_code == 404


def test_files(sdk: Mistral) -> None:
    content = "\n".join(json.dumps({"messages": [{"role": "user", "content": str(i)}]}) for i in range(3)).encode()
    uploaded = sdk.files.upload(file={"file_name": "records.jsonl", "content": content})
    assert isinstance(uploaded, models.CreateFileResponse)
    assert uploaded.size_bytes == len(content) and uploaded.filename == "records.jsonl"
    retrieved = sdk.files.retrieve(file_id=uploaded.id)
    assert isinstance(retrieved, models.GetFileResponse) and retrieved.deleted is False
    download = sdk.files.download(file_id=uploaded.id)
    try:
        assert download.read() == content
    finally:
        download.close()
    task = sdk.beta.observability.datasets.import_from_file(dataset_id=DEMO_DATASET_ID, file_id=uploaded.id)
    assert task.status == "RUNNING"
    deleted = sdk.files.delete(file_id=uploaded.id)
    assert isinstance(deleted, models.DeleteFileResponse) and deleted.deleted
    with pytest.raises(errors.SDKError):
        sdk.files.retrieve(file_id=uploaded.id)
