"""The package's surface: a complete ``__all__``, and two clients with the same methods."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

import pydantic

import api_client
from api_client import AsyncDatasetsClient, DatasetsClient
from api_client import operations as ops
from api_client import record_operations as rec
from api_client import source_operations as src

PUBLIC_METHODS = {
    "list_datasets", "iter_datasets", "create_dataset", "fetch_dataset", "update_dataset", "delete_dataset",
    "list_records", "iter_records", "create_record", "start_import", "import_from_campaign",
    "import_from_explorer", "import_from_file", "import_from_playground", "import_from_dataset_records",
    "export_to_jsonl", "download_export", "fetch_task", "list_tasks", "iter_tasks", "fetch_campaign",
    "fetch_campaign_status", "list_campaign_events", "iter_campaign_events", "search_event_ids", "search_spans",
    "fetch_event", "upload_file", "fetch_conversation", "fetch_conversation_messages", "fetch_record", "delete_record",
    "bulk_delete_records", "update_record_payload", "update_record_properties", "judge_record",
}
SYNC_ONLY = {"close"}
ASYNC_ONLY = {"aclose"}


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_every_name_in_all_exists_and_all_is_sorted_and_unique() -> None:
    for name in api_client.__all__:
        assert hasattr(api_client, name), name
    assert len(set(api_client.__all__)) == len(api_client.__all__)


def test_every_public_name_of_the_package_is_exported() -> None:
    public = {
        name
        for name, value in vars(api_client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(api_client.__all__)


def test_every_error_and_model_is_exported() -> None:
    from api_client import errors, models, record_models, source_models

    for module in (errors, models, record_models, source_models):
        for name in module.__all__:
            if name in ("ResponseModel", "UnexpectedResponseReason", "error_class_for_status", "ExtraFieldValue"):
                continue
            assert name in api_client.__all__, f"{module.__name__}.{name}"


def test_every_type_a_method_takes_or_returns_is_exported() -> None:
    builders = {
        name: getattr(ops, name, None) or getattr(rec, name, None) or getattr(src, name)
        for name in PUBLIC_METHODS - {"download_export"}
    }
    seen: set[type] = set()
    for builder in builders.values():
        for hint in typing.get_type_hints(builder).values():
            seen.update(_classes_in(hint))
    # What builders return (specs and walks) is internal: the methods return the values inside.
    internal = {api_client.spec.RequestSpec, api_client.pagination.PageWalk}
    ours = {cls for cls in seen if cls.__module__.startswith("api_client.") and cls not in internal}
    assert api_client.Page in ours
    assert api_client.Unset in ours
    for cls in ours:
        assert cls.__name__ in api_client.__all__, cls


def _classes_in(hint: Any) -> set[type]:
    found: set[type] = set()
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
        # A parametrized pydantic generic such as Page[Dataset] is a class of its own.
        metadata = hint.__pydantic_generic_metadata__
        if metadata["origin"] is not None:
            found.add(metadata["origin"])
            for arg in metadata["args"]:
                found |= _classes_in(arg)
            return found
    if isinstance(hint, type):
        found.add(hint)
    for arg in typing.get_args(hint):
        found |= _classes_in(arg)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        found.add(origin)
    return found


def test_both_clients_have_the_same_methods() -> None:
    assert _public(DatasetsClient) - SYNC_ONLY == _public(AsyncDatasetsClient) - ASYNC_ONLY
    assert PUBLIC_METHODS <= _public(DatasetsClient)


def test_both_clients_have_the_same_signatures() -> None:
    sync, async_ = DatasetsClient("k"), AsyncDatasetsClient("k")
    try:
        for name in PUBLIC_METHODS:
            sync_sig = inspect.signature(getattr(sync, name))
            async_sig = inspect.signature(getattr(async_, name))
            assert [str(p) for p in sync_sig.parameters.values()] == [str(p) for p in async_sig.parameters.values()]
    finally:
        sync.close()


def test_async_methods_are_coroutines_and_iterators_async_iterators() -> None:
    client = AsyncDatasetsClient("k")
    for name in PUBLIC_METHODS:
        method = getattr(client, name)
        if name.startswith("iter_"):
            assert not inspect.iscoroutinefunction(method), name
        else:
            assert inspect.iscoroutinefunction(method), name
    iterator = client.iter_tasks("d")
    assert hasattr(iterator, "__anext__")


def test_methods_carry_their_builders_docstrings_and_names() -> None:
    client = DatasetsClient("k")
    try:
        assert client.list_datasets.__doc__ == ops.list_datasets.__doc__
        assert client.fetch_event.__name__ == "fetch_event"
        assert client.fetch_event.__qualname__ == "DatasetsClient.fetch_event"
        assert list(inspect.signature(client.update_dataset).parameters) == ["dataset_id", "name", "description"]
    finally:
        client.close()


def test_import_body_fields_cover_every_kind() -> None:
    assert set(api_client.IMPORT_BODY_FIELDS) == set(typing.get_args(api_client.ImportKind))
    assert api_client.IMPORT_BODY_FIELDS == {
        "campaign": ("campaign_id",),
        "explorer": ("completion_event_ids",),
        "file": ("file_id",),
        "playground": ("conversation_ids",),
        "dataset": ("dataset_record_ids",),
        "spans": ("span_references", "mapping_contract"),
    }
