"""The published JSON Schema: generated from the model, committed, printed by the CLI, and in agreement with the
model on good and bad messages (checked with an independent validator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

from cli.main import main
from triggers.messages.message_model import SCHEMA_ID, json_schema, parse_message

from .corpus import KINDS, BadEntry, bad_corpus, encode, good, valid_messages

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "import-request.schema.json"
REGENERATE = "dsimport messages schema > schemas/import-request.schema.json"


def generated_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated_text(), f"stale schema: run `{REGENERATE}`"


def test_the_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["messages", "schema"]) == 0
    assert capsys.readouterr().out == generated_text()


def test_the_schema_is_a_valid_draft_2020_12_schema_naming_every_kind() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_ID
    assert schema["discriminator"]["propertyName"] == "kind"
    assert sorted(schema["discriminator"]["mapping"]) == sorted(KINDS)
    requests = [schema["$defs"][ref.rsplit("/", 1)[1]] for ref in schema["discriminator"]["mapping"].values()]
    for definition in requests:
        assert {"id", "kind", "dataset_id"} <= set(definition["required"])
    for definition in schema["$defs"].values():
        assert definition["additionalProperties"] is False


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("kind", KINDS)
def test_the_schema_accepts_good_messages(kind: str) -> None:
    _validator().validate(good(kind))


# What a JSON Schema cannot see: bytes, size, duplicate keys and NaN are checked before the JSON is a value, and
# a lone surrogate is a valid JSON string escape.
_BEYOND_SCHEMA = {"not UTF-8", "too large", "no body", "invalid JSON", "nested too deeply", "lone surrogate"}


def _schema_visible(entry: BadEntry) -> bool:
    return entry.name not in _BEYOND_SCHEMA and not any(part in entry.reason for part in _BEYOND_SCHEMA)


@pytest.mark.parametrize(
    "entry", [e for e in bad_corpus() if _schema_visible(e)], ids=lambda e: e.name
)
def test_the_schema_refuses_what_the_model_refuses(entry: BadEntry) -> None:
    assert entry.body is not None
    value: Any = json.loads(entry.body)
    assert not _validator().is_valid(value)


@settings(max_examples=100, deadline=None)
@given(valid_messages())
def test_the_schema_and_the_model_agree_on_generated_messages(message: dict[str, Any]) -> None:
    parse_message(encode(message))
    _validator().validate(message)
