"""The models accept what the 2.5.0 SDK accepts and refuse what it refuses (contract §3, §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from api_client import (
    TERMINAL_TASK_STATUSES,
    Campaign,
    ChatCompletionEvent,
    Conversation,
    ConversationMessages,
    ConversationPayload,
    Dataset,
    DatasetImportTask,
    DatasetRecord,
    FileObject,
    MessageInputEntry,
    MessageOutputEntry,
    Page,
    RecordSources,
    TaskStatuses,
    is_terminal,
)

from . import samples as s


def test_terminal_statuses_are_the_five_final_temporal_states() -> None:
    assert frozenset({"COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"}) == TERMINAL_TASK_STATUSES
    assert all(is_terminal(status) for status in TERMINAL_TASK_STATUSES)
    for status in ("RUNNING", "CONTINUED_AS_NEW", "UNKNOWN", "PENDING", ""):
        assert not is_terminal(status)
    assert is_terminal(TaskStatuses.FAILED)
    assert TaskStatuses.COMPLETED == "COMPLETED"
    assert {member.value for member in TaskStatuses} >= TERMINAL_TASK_STATUSES


def test_status_is_a_plain_string_comparable_with_the_constants() -> None:
    task = DatasetImportTask.model_validate(s.task(status="COMPLETED"))
    assert task.status == TaskStatuses.COMPLETED
    assert type(task.status) is str
    record = DatasetRecord.model_validate(s.record(source="UPLOADED_FILE"))
    assert record.source == RecordSources.UPLOADED_FILE


def test_dataset_times_are_aware_datetimes() -> None:
    dataset = Dataset.model_validate(s.dataset(deleted_at="2025-10-08T00:00:00Z"))
    assert dataset.created_at == datetime(2025, 10, 7, 20, 56, 1, 974000, tzinfo=UTC)
    assert dataset.deleted_at == datetime(2025, 10, 8, tzinfo=UTC)


@pytest.mark.parametrize("model", [Dataset, DatasetRecord, DatasetImportTask, Campaign])
def test_deleted_at_key_is_required_but_may_be_null(model: type[pydantic.BaseModel]) -> None:
    sample = {Dataset: s.dataset, DatasetRecord: s.record, DatasetImportTask: s.task, Campaign: s.campaign}[model]()
    model.model_validate(sample)
    with pytest.raises(pydantic.ValidationError):
        model.model_validate({k: v for k, v in sample.items() if k != "deleted_at"})


def test_conversation_payload_keeps_extra_keys_and_requires_message_objects() -> None:
    payload = ConversationPayload.model_validate({"messages": [{"role": "user", "content": "x"}], "meta": 1})
    assert payload.model_dump() == {"messages": [{"role": "user", "content": "x"}], "meta": 1}
    with pytest.raises(pydantic.ValidationError):
        ConversationPayload.model_validate({"messages": [[None]]})
    with pytest.raises(pydantic.ValidationError):
        ConversationPayload.model_validate({})


def test_page_is_generic_and_count_is_required() -> None:
    page = Page[Dataset].model_validate({"count": 2, "results": [s.dataset()], "next": "x"})
    assert isinstance(page.results[0], Dataset)
    assert page.next == "x"
    assert page.previous is None
    with pytest.raises(pydantic.ValidationError):
        Page[Dataset].model_validate({"results": []})


def test_models_are_immutable() -> None:
    task = DatasetImportTask.model_validate(s.task())
    with pytest.raises(pydantic.ValidationError):
        task.status = "COMPLETED"  # type: ignore[misc]


def test_file_object_reads_bytes_as_size_bytes() -> None:
    file = FileObject.model_validate(s.file_object(num_lines=3, visibility="workspace"))
    assert file.size_bytes == 42
    assert file.num_lines == 3
    assert file.model_dump(by_alias=True)["bytes"] == 42
    assert FileObject.model_validate(s.file_object(purpose="dataset-import")).purpose == "dataset-import"


def test_chat_completion_event_keeps_extra_field_types() -> None:
    event = ChatCompletionEvent.model_validate(s.event())
    assert event.extra_fields == {"model": "mistral-small", "score": 0.5, "tags": ["a"], "missing": None}
    assert event.request_messages[0]["content"] == "hi"


@pytest.mark.parametrize(
    "overrides",
    [{"model": "mistral-small"}, {"model": None, "agent_id": "ag_1", "agent_version": 2}],
)
def test_conversation_is_a_model_or_an_agent_conversation(overrides: dict[str, Any]) -> None:
    conversation = Conversation.model_validate(s.conversation(**overrides))
    assert conversation.model or conversation.agent_id


def test_conversation_without_model_or_agent_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        Conversation.model_validate(s.conversation(model=None))


def test_conversation_messages_tell_input_from_output() -> None:
    messages = ConversationMessages.model_validate(s.conversation_messages()).messages
    assert isinstance(messages[0], MessageInputEntry)
    assert isinstance(messages[1], MessageOutputEntry)
    assert [m.content for m in messages] == ["hi", "hello"]
    chunks = ConversationMessages.model_validate(
        s.conversation_messages(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    )
    assert chunks.messages[0].content == [{"type": "text", "text": "hi"}]


SDK_MODELS = pytest.importorskip("mistralai.client.models")


@pytest.mark.parametrize(
    ("ours", "theirs", "sample"),
    [
        (Dataset, "Dataset", s.dataset()),
        (DatasetRecord, "DatasetRecord", s.record()),
        (DatasetImportTask, "DatasetImportTask", s.task()),
        (Campaign, "Campaign", s.campaign()),
        (ChatCompletionEvent, "ChatCompletionEvent", s.event()),
        (FileObject, "CreateFileResponse", s.file_object()),
        (ConversationMessages, "ConversationMessages", s.conversation_messages()),
    ],
)
def test_the_samples_fit_both_our_models_and_the_sdk(
    ours: type[pydantic.BaseModel], theirs: str, sample: dict[str, Any]
) -> None:
    getattr(SDK_MODELS, theirs).model_validate(sample)
    ours.model_validate(sample)
