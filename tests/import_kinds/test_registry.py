"""The import kinds' registry: its lists agree, its entries are complete, and every layer that handles a kind
offers exactly what the entry says (the command groups, the message model, the client, the plain schedules)."""

from __future__ import annotations

import typing
from types import MappingProxyType
from typing import Any

import click
import pytest

from api_client.operations import IMPORT_ENDPOINTS, IMPORT_KINDS
from cli.main import cli
from import_kinds import (
    IMPORT_KINDS as SPECS,
)
from import_kinds import (
    BodyError,
    BodyField,
    CommandGroup,
    ImportKind,
    ImportKindName,
    ImportKindSpec,
    Option,
    spec_of,
)
from import_kinds.fields import ID_LIST, ONE_ID, ONE_UUID, UUID_LIST
from triggers.messages.message_model import REQUEST_MODELS, json_schema
from triggers.schedules.specs import KIND_NAMES

UUID_A = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
HELP = MappingProxyType({group: "help" for group in CommandGroup})


def _subcommand(*path: str) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _flags(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}


def test_the_enum_the_literal_and_the_entries_name_the_same_kinds_in_one_order() -> None:
    assert list(SPECS) == list(ImportKind)
    assert typing.get_args(ImportKindName) == tuple(kind.value for kind in ImportKind)
    assert IMPORT_KINDS == typing.get_args(ImportKindName)
    for kind, spec in SPECS.items():
        assert spec.name == kind and spec_of(kind.value) is spec


@pytest.mark.parametrize("kind", list(ImportKind))
def test_each_command_group_offers_each_kind_with_the_entrys_options(kind: ImportKind) -> None:
    spec = SPECS[kind]
    flags = {option.flag for option in spec.options}
    assert flags <= _flags(_subcommand("import", kind.value))
    # A search (--filter) may fill several jobs: only `dsimport import` runs one; a message carries one job's items.
    searches = {o.flag for o in spec.options if o.resolver is not None and o.resolver.searches}
    assert _flags(_subcommand("messages", "send", kind.value)) >= flags - searches
    assert not searches & _flags(_subcommand("messages", "send", kind.value))
    # A schedule's body is fixed when it is made: options resolved at request time are not offered there.
    scheduled = {o.flag for o in spec.options if o.resolver is None or o.schedule_refusal is not None}
    assert _flags(_subcommand("schedules", "add", kind.value)) == {"--dataset", *scheduled}
    assert _subcommand("import", kind.value).help == spec.help[CommandGroup.IMPORT]


@pytest.mark.parametrize("kind", list(ImportKind))
def test_the_message_model_the_endpoint_and_the_schedule_kind_come_from_the_entry(kind: ImportKind) -> None:
    spec = SPECS[kind]
    model = REQUEST_MODELS[kind]
    # skip_existing is every request's own option, not a body field of the kind.
    assert set(model.model_fields) == {"id", "dataset_id", "kind", "skip_existing", *spec.field_names}
    assert model.__doc__ == spec.about
    assert json_schema()["discriminator"]["mapping"][kind.value] == f"#/$defs/{model.__name__}"
    endpoint = IMPORT_ENDPOINTS[kind.value]  # type: ignore[index]
    assert endpoint.path.endswith(f"/imports/{spec.route}") and endpoint.operation == spec.operation
    assert kind.value in KIND_NAMES


def test_a_field_is_given_by_several_options_or_one_and_every_option_gives_a_field() -> None:
    with pytest.raises(ValueError, match="gives no field"):
        ImportKindSpec("k", "from-k", "import_from_k", "About.", HELP, (BodyField("a", ONE_ID, "a"),),
                       (Option("--b", "b", "B."),))  # fmt: skip
    with pytest.raises(ValueError, match="no option gives a"):
        ImportKindSpec("k", "from-k", "import_from_k", "About.", HELP, (BodyField("a", ONE_ID, "a"),), ())
    with pytest.raises(ValueError, match="help of every command group"):
        ImportKindSpec("k", "from-k", "import_from_k", "About.", {CommandGroup.IMPORT: "x"},
                       (BodyField("a", ONE_ID, "a"),), (Option("--a", "a", "A."),))  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("explorer", {"completion_event_ids": ("e1", "e2")}, {"completion_event_ids": ["e1", "e2"]}),
        ("explorer", {"completion_event_ids": "e1"}, "completion_event_ids must be a non-empty list, got 'e1'"),
        ("explorer", {"completion_event_ids": {"e1": 1}}, "completion_event_ids must be a non-empty list"),
        ("explorer", {"completion_event_ids": []}, "completion_event_ids must be a non-empty list"),
        ("playground", {"conversation_ids": ["c", ""]}, "conversation_ids must hold non-empty strings"),
        ("file", {"file_id": ""}, "file_id must be a non-empty string, got ''"),
        ("file", {"file_id": "f", "extra": 1}, "a file import takes exactly 'file_id', got ['extra', 'file_id']"),
        ("campaign", {}, "a campaign import takes exactly 'campaign_id', got []"),
        ("campaign", ["campaign_id"], "a campaign import takes exactly 'campaign_id', got ['campaign_id']"),
    ],
)
def test_the_check_every_layer_shares(kind: str, params: Any, expected: Any) -> None:
    spec = spec_of(kind)
    if isinstance(expected, dict):
        assert spec.check(params) == expected
        return
    with pytest.raises(BodyError) as caught:
        spec.check(params)
    assert expected in str(caught.value)


def test_schedule_values_are_normalised_so_one_schedule_is_stored_one_way() -> None:
    assert ID_LIST.from_schedule(" e1 ", "events") == ["e1"]
    assert ID_LIST.from_schedule(["e1", "e2", "e1 "], "events") == ["e1", "e2"]
    assert UUID_LIST.from_schedule([UUID_A.upper(), UUID_A], "records") == [UUID_A]
    assert ONE_UUID.from_schedule(UUID_A.replace("-", ""), "campaign") == UUID_A
    for shape, value, message in [
        (ID_LIST, [], "events must be a non-empty list of ids"),
        (ID_LIST, ["a", " "], "events must hold non-empty strings"),
        (UUID_LIST, ["r-1"], "events 'r-1' is not a valid UUID"),
        (ONE_ID, "  ", "events must be a non-empty string"),
    ]:
        with pytest.raises(BodyError, match=message):
            shape.from_schedule(value, "events")


def test_a_chunk_keeps_the_bodys_other_fields() -> None:
    spec = spec_of("dataset")
    assert spec.item_field is not None and spec.item_field.name == "dataset_record_ids"
    assert spec.with_items({"dataset_record_ids": ["a", "b"]}, ["b"]) == {"dataset_record_ids": ["b"]}
    assert spec.items_of({"dataset_record_ids": ["a", "b"]}) == ["a", "b"]
    assert spec_of("campaign").item_field is None
    with pytest.raises(ValueError, match="no list of items"):
        spec_of("file").with_items({"file_id": "f"}, ["x"])


# --- spans -------------------------------------------------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
MAPPING = {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}


def test_spans_take_references_and_a_mapping_contract_of_version_1() -> None:
    spec = spec_of("spans")
    assert spec.field_names == ("span_references", "mapping_contract")
    assert spec.item_field is not None and spec.item_field.name == "span_references"
    reference = {"trace_id": TRACE, "span_id": SPAN}
    clean = spec.check({"span_references": (reference,), "mapping_contract": {"mappings": [MAPPING]}})
    # The version is written out, as the SDK sends it.
    assert clean == {
        "span_references": [{"trace_id": TRACE, "span_id": SPAN}],
        "mapping_contract": {"mappings": [MAPPING], "version": 1},
    }
    assert list(clean["mapping_contract"]) == ["mappings", "version"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"span_references": [{"trace_id": TRACE}], "mapping_contract": {"mappings": [MAPPING]}},
         "span_references[0].span_id: Field required"),
        ({"span_references": [f"{TRACE}:{SPAN}"], "mapping_contract": {"mappings": [MAPPING]}},
         "span_references[0]: Input should be a valid dictionary"),
        ({"span_references": [], "mapping_contract": {"mappings": [MAPPING]}},
         "span_references must be a non-empty list"),
        ({"span_references": [{"trace_id": TRACE, "span_id": SPAN}], "mapping_contract": {"mappings": []}},
         "mapping_contract.mappings: List should have at least 1 item"),
        ({"span_references": [{"trace_id": TRACE, "span_id": SPAN}],
          "mapping_contract": {"mappings": [MAPPING], "version": 2}},
         "mapping_contract.version: Input should be 1"),
        ({"span_references": [{"trace_id": TRACE, "span_id": SPAN}]},
         "a spans import takes exactly 'span_references' and 'mapping_contract', got ['span_references']"),
    ],
)  # fmt: skip
def test_a_spans_body_that_does_not_fit_is_refused_naming_the_place(params: dict[str, Any], expected: str) -> None:
    with pytest.raises(BodyError) as caught:
        spec_of("spans").check(params)
    assert expected in str(caught.value)


def test_spans_and_mappings_are_written_as_text_on_the_command_line() -> None:
    references, contract = (body_field.shape for body_field in spec_of("spans").fields)
    assert references.from_cli((f"{TRACE}:{SPAN}", " t:s ")) == [
        {"trace_id": TRACE, "span_id": SPAN}, {"trace_id": "t", "span_id": "s"}
    ]  # fmt: skip
    # The key is literal: dots and colons are part of it.
    other = {"target_field": "x", "source_field": {"namespace": "resource_attributes", "key": "a:b"}}
    assert contract.from_cli(("input=span_attributes:gen_ai.prompt", "x=resource_attributes:a:b")) == {
        "mappings": [MAPPING, other],
        "version": 1,
    }
    for shape, text, message in [
        (references, "no-colon", "expected TRACE_ID:SPAN_ID, got 'no-colon'"),
        (references, "t:", "expected TRACE_ID:SPAN_ID"),
        (contract, "input", "expected TARGET=NAMESPACE:KEY, got 'input'"),
        (contract, "input=span_attributes", "expected TARGET=NAMESPACE:KEY"),
        (contract, "=span_attributes:k", "expected TARGET=NAMESPACE:KEY"),
    ]:
        with pytest.raises(BodyError, match=message):
            shape.from_cli((text,))


def test_a_spans_schedule_stores_one_form_whichever_way_it_was_written() -> None:
    references, contract = (body_field.shape for body_field in spec_of("spans").fields)
    written = [f"{TRACE}:{SPAN}", {"trace_id": TRACE, "span_id": SPAN}, "t:s"]
    assert references.from_schedule(written, "spans") == [
        {"trace_id": TRACE, "span_id": SPAN}, {"trace_id": "t", "span_id": "s"}
    ]  # fmt: skip
    assert contract.from_schedule("input=span_attributes:gen_ai.prompt", "mapping") == contract.from_schedule(
        {"mappings": [MAPPING]}, "mapping"
    )
    with pytest.raises(BodyError, match=r"mapping.mappings\[0\].source_field.namespace"):
        contract.from_schedule(["input=attributes:k"], "mapping")
    with pytest.raises(BodyError, match="spans must be a non-empty list"):
        references.from_schedule([], "spans")


def test_a_span_is_recorded_under_a_key_that_fits_the_ledger() -> None:
    references = spec_of("spans").fields[0].shape
    assert references.item_key({"trace_id": TRACE, "span_id": SPAN}) == f"{TRACE}:{SPAN}"
    long_key = references.item_key({"trace_id": "t" * 200, "span_id": "s"})
    ambiguous = [references.item_key({"trace_id": "a:b", "span_id": "c"}),
                 references.item_key({"trace_id": "a", "span_id": "b:c"})]  # fmt: skip
    assert len(long_key) <= 64 and long_key.startswith("sha256:")
    assert ambiguous[0] != ambiguous[1]
