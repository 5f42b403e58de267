"""Dataset references: a UUID (always read as an id) or a slug of the assumed shape; nothing else."""

from __future__ import annotations

import pytest

from api_client import is_dataset_uuid, parse_dataset_ref
from api_client.dataset_refs import MAX_SLUG_CHARS

UUID = "306b5f31-e31c-4e06-9220-e3008c61bf1b"


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (UUID, UUID),
        # UUID-shaped values are ids whatever their spelling, so they are written the one canonical way.
        (UUID.upper(), UUID),
        (UUID.replace("-", ""), UUID),
        ("my-dataset", "my-dataset"),
        ("eval_set_2", "eval_set_2"),
        ("a", "a"),
        ("0" * MAX_SLUG_CHARS, "0" * MAX_SLUG_CHARS),
    ],
)
def test_uuids_and_slugs_are_accepted(given: str, parsed: str) -> None:
    assert parse_dataset_ref(given) == parsed


@pytest.mark.parametrize(
    "given",
    [
        "",
        "My-Dataset",
        "my dataset",
        "my--dataset",
        "-leading",
        "trailing_",
        "a/b",
        "../datasets",
        "%2e%2e",
        "'; DROP TABLE import_jobs; --",
        "306b5f31e31c4e069220e3008c61bf1bXX",
        "é",
        "a" * (MAX_SLUG_CHARS + 1),
    ],
)
def test_anything_else_is_refused_with_what_a_reference_looks_like(given: str) -> None:
    with pytest.raises(ValueError, match="is not a dataset UUID or slug"):
        parse_dataset_ref(given)


def test_only_uuid_shaped_values_are_ids() -> None:
    assert is_dataset_uuid(UUID) and is_dataset_uuid(UUID.replace("-", ""))
    assert not is_dataset_uuid("my-dataset")
    assert not is_dataset_uuid(UUID[:-1] + "g")
