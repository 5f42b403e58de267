"""Evaluate the Observability ``FilterPayload`` against chat-completion events.

``{"filters": null | Condition | Group}`` where a Group is ``{"AND"?: [...], "OR"?: [...]}`` (both
keys: both must hold; an empty or missing list adds no constraint) and a Condition is
``{"field", "op", "value"}``. Fields are top-level event keys or dotted paths such as
``extra_fields.user_id``. Two strings that both parse as ISO-8601 date-times compare as instants,
so ``created_at`` ranges work with any offset notation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .clock import parse_iso

__all__ = ["OPS", "FilterError", "Predicate", "compile_filter_payload", "resolve_field"]

Predicate = Callable[[Mapping[str, Any]], bool]

OPS = frozenset(
    {
        "lt", "lte", "gt", "gte", "startswith", "istartswith", "endswith", "iendswith", "contains",
        "icontains", "matches", "notcontains", "inotcontains", "eq", "neq", "isnull", "includes",
        "excludes", "len_eq",
    }
)  # fmt: skip


class FilterError(ValueError):
    """Raised when a filter is malformed (422) or uses an unknown op or bad regex (400)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def compile_filter_payload(payload: object) -> Predicate:
    if not isinstance(payload, Mapping) or "filters" not in payload:
        raise FilterError("search_params must be an object with a 'filters' key")
    return _compile(payload["filters"], "search_params.filters")


def resolve_field(event: Mapping[str, Any], field: str) -> Any:
    if field in event:
        return event[field]
    value: Any = event
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _always(_: Mapping[str, Any]) -> bool:
    return True


def _compile(node: object, path: str) -> Predicate:
    if node is None:
        return _always
    if not isinstance(node, Mapping):
        raise FilterError(f"{path} must be an object, a condition or null")
    if "field" in node or "op" in node:
        return _compile_condition(node, path)
    unknown = set(node) - {"AND", "OR"}
    if unknown:
        raise FilterError(f"{path}: unknown keys {sorted(unknown)} (expected AND / OR)")
    all_of = _compile_list(node.get("AND"), f"{path}.AND")
    any_of = _compile_list(node.get("OR"), f"{path}.OR")

    def group(event: Mapping[str, Any]) -> bool:
        return all(p(event) for p in all_of) and (not any_of or any(p(event) for p in any_of))

    return group


def _compile_list(items: object, path: str) -> list[Predicate]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise FilterError(f"{path} must be a list or null")
    return [_compile(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _compile_condition(node: Mapping[str, Any], path: str) -> Predicate:
    field, op, expected = node.get("field"), node.get("op"), node.get("value")
    if not isinstance(field, str) or not field:
        raise FilterError(f"{path}.field must be a non-empty string")
    if not isinstance(op, str):
        raise FilterError(f"{path}.op must be a string")
    if op not in OPS:
        raise FilterError(f"{path}.op: unsupported operator {op!r}", status=400)
    test = _op_test(op, expected, path)

    def condition(event: Mapping[str, Any]) -> bool:
        return test(resolve_field(event, field))

    return condition


def _op_test(op: str, expected: Any, path: str) -> Callable[[Any], bool]:
    if op in ("lt", "lte", "gt", "gte"):
        return lambda actual: _ordered(op, actual, expected)
    if op == "eq":
        return lambda actual: _equal(actual, expected)
    if op == "neq":
        return lambda actual: not _equal(actual, expected)
    if op == "isnull":
        return lambda actual: (actual is None) == bool(expected)
    if op in ("includes", "excludes"):
        wanted = op == "includes"
        return lambda actual: _includes(actual, expected) == wanted
    if op == "len_eq":
        return lambda actual: _length(actual) == expected
    if op == "matches":
        try:
            pattern = re.compile(str(expected))
        except re.error as exc:
            raise FilterError(f"{path}.value is not a valid regular expression: {exc}", status=400) from exc
        return lambda actual: isinstance(actual, str) and pattern.search(actual) is not None
    return _text_test(op, expected)


def _text_test(op: str, expected: Any) -> Callable[[Any], bool]:
    fold = op.startswith("i")
    base = op[1:] if fold else op
    needle = str(expected).lower() if fold else expected
    if base in ("contains", "notcontains"):
        negate = base == "notcontains"
        return lambda actual: _contains(actual, needle, fold) != negate
    if base == "startswith":
        return lambda actual: isinstance(actual, str) and _fold(actual, fold).startswith(str(needle))
    return lambda actual: isinstance(actual, str) and _fold(actual, fold).endswith(str(needle))


def _fold(text: str, fold: bool) -> str:
    return text.lower() if fold else text


def _contains(actual: Any, needle: Any, fold: bool) -> bool:
    if isinstance(actual, str):
        return str(needle) in _fold(actual, fold)
    if isinstance(actual, list):
        return any((_fold(v, fold) if isinstance(v, str) else v) == needle for v in actual)
    if isinstance(actual, Mapping):
        return needle in actual
    return False


def _includes(actual: Any, expected: Any) -> bool:
    wanted = expected if isinstance(expected, list) else [expected]
    have = actual if isinstance(actual, list) else [actual]
    return any(_equal(a, w) for a in have for w in wanted)


def _length(actual: Any) -> int | None:
    return len(actual) if isinstance(actual, str | list | Mapping) else None


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any]:
    if isinstance(actual, str) and isinstance(expected, str):
        try:
            return parse_iso(actual), parse_iso(expected)
        except ValueError:
            return actual, expected
    if isinstance(actual, int | float) and isinstance(expected, str):
        try:
            return actual, float(expected)
        except ValueError:
            return actual, expected
    return actual, expected


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _comparable(actual, expected)
    return bool(left == right)


def _ordered(op: str, actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return False
    left, right = _comparable(actual, expected)
    try:
        if op == "lt":
            return bool(left < right)
        if op == "lte":
            return bool(left <= right)
        if op == "gt":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False
