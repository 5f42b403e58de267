"""The FilterPayload evaluator, operator by operator."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.filters import OPS, FilterError, compile_filter_payload

EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "created_at": "2026-01-01T10:00:00.000Z",
    "nb_input_tokens": 120,
    "extra_fields": {"model": "Mistral-Large", "tags": ["a", "b"], "score": None, "meta": {"k": "v"}},
}


def matches(field: str, op: str, value: Any) -> bool:
    return compile_filter_payload({"filters": {"field": field, "op": op, "value": value}})(EVENT)


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("nb_input_tokens", "lt", 121, True),
        ("nb_input_tokens", "lte", 120, True),
        ("nb_input_tokens", "gt", 120, False),
        ("nb_input_tokens", "gte", "100", True),
        ("created_at", "gt", "2026-01-01T09:59:59Z", True),
        ("created_at", "lt", "2026-01-01T11:00:00+01:00", False),  # the same instant, not earlier
        ("created_at", "lte", "2026-01-01T11:00:00+01:00", True),
        ("created_at", "eq", "2026-01-01T10:00:00+00:00", True),
        ("extra_fields.model", "eq", "Mistral-Large", True),
        ("extra_fields.model", "neq", "Mistral-Large", False),
        ("extra_fields.model", "startswith", "Mistral", True),
        ("extra_fields.model", "istartswith", "mistral", True),
        ("extra_fields.model", "endswith", "large", False),
        ("extra_fields.model", "iendswith", "LARGE", True),
        ("extra_fields.model", "contains", "-La", True),
        ("extra_fields.model", "icontains", "large", True),
        ("extra_fields.model", "notcontains", "small", True),
        ("extra_fields.model", "inotcontains", "LARGE", False),
        ("extra_fields.model", "matches", r"^Mis.*ge$", True),
        ("extra_fields.tags", "contains", "a", True),
        ("extra_fields.tags", "includes", ["z", "b"], True),
        ("extra_fields.tags", "excludes", "a", False),
        ("extra_fields.model", "includes", ["Mistral-Large", "x"], True),
        ("extra_fields.tags", "len_eq", 2, True),
        ("extra_fields.score", "isnull", True, True),
        ("extra_fields.missing", "isnull", True, True),
        ("extra_fields.model", "isnull", False, True),
        ("extra_fields.missing", "gt", 1, False),
        ("extra_fields.meta.k", "eq", "v", True),
        ("extra_fields.model", "lt", 3, False),  # incomparable types never match
    ],
)
def test_operators(field: str, op: str, value: Any, expected: bool) -> None:
    assert matches(field, op, value) is expected


def test_lt_is_strict_when_the_instant_is_equal() -> None:
    assert matches("created_at", "lt", "2026-01-01T10:00:00Z") is False


def test_every_sdk_operator_is_known() -> None:
    assert len(OPS) == 19


def test_groups() -> None:
    yes = {"field": "nb_input_tokens", "op": "gt", "value": 1}
    no = {"field": "nb_input_tokens", "op": "lt", "value": 1}
    check = compile_filter_payload
    assert check({"filters": {"AND": [yes, {"OR": [no, yes]}]}})(EVENT)
    assert not check({"filters": {"AND": [yes, no]}})(EVENT)
    assert check({"filters": {"OR": [no, yes]}})(EVENT)
    assert not check({"filters": {"AND": [yes], "OR": [no]}})(EVENT)
    assert check({"filters": {"AND": [], "OR": None}})(EVENT)
    assert check({"filters": None})(EVENT)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (None, 422),
        ({}, 422),
        ({"filters": []}, 422),
        ({"filters": {"AND": {}}}, 422),
        ({"filters": {"field": "", "op": "eq", "value": 1}}, 422),
        ({"filters": {"field": "x", "op": 3, "value": 1}}, 422),
        ({"filters": {"field": "x", "op": "nope", "value": 1}}, 400),
        ({"filters": {"field": "x", "op": "matches", "value": "[unclosed"}}, 400),
    ],
)
def test_malformed_filters(payload: Any, status: int) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter_payload(payload)
    assert caught.value.status == status
