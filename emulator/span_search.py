"""The spans ``search_expression``: a small filter language (the SDK fixes only that it is a string).

Grammar (keywords any case; ``AND`` binds tighter than ``OR``)::

    expression := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := unary ("AND" unary)*
    unary      := "NOT" unary | "(" or_expr ")" | comparison
    comparison := FIELD OP VALUE
    OP         := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" (contains) | "!~" (does not contain)
    VALUE      := "double quoted" | 'single quoted' | a number | a bare word

``FIELD`` is a top-level ``GetSpan`` key (``span_name``, ``service_name``, ``duration_ns``, ``start_time`` ...) or
``span_attributes.KEY`` / ``resource_attributes.KEY``, where KEY is the rest of the name taken literally
(``span_attributes.gen_ai.operation.name``). Numbers compare as numbers, ``start_time``/``end_time`` as instants,
everything else as text. A missing attribute equals nothing and contains nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .clock import parse_iso

__all__ = ["SearchExpressionError", "SpanPredicate", "compile_search_expression"]

SpanPredicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<paren>[()])
      | (?P<word>[^\s()=!<>~"']+)
    )""",
    re.VERBOSE,
)
_TIME_FIELDS = frozenset({"start_time", "end_time"})
_NAMESPACES = ("span_attributes.", "resource_attributes.")


class SearchExpressionError(ValueError):
    """The expression does not parse or names a field spans do not have."""


def compile_search_expression(expression: str | None, fields: frozenset[str]) -> SpanPredicate:
    """A predicate over a span's wire dict; a null or blank expression matches every span."""
    if expression is None or not expression.strip():
        return lambda _: True
    parser = _Parser(_tokenize(expression), fields)
    predicate = parser.or_expr()
    rest = parser.peek()
    if rest is not None:
        raise SearchExpressionError(f"unexpected {rest[1]!r} at the end of the expression")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise SearchExpressionError(f"cannot read the expression at character {position + 1}")
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: frozenset[str]) -> None:
        self._tokens = tokens
        self._index = 0
        self._fields = fields

    def peek(self) -> tuple[str, str] | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise SearchExpressionError("the expression ends too early")
        self._index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self._index += 1
            return True
        return False

    def or_expr(self) -> SpanPredicate:
        parts = [self.and_expr()]
        while self._keyword("OR"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda span: any(p(span) for p in parts))

    def and_expr(self) -> SpanPredicate:
        parts = [self.unary()]
        while self._keyword("AND"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda span: all(p(span) for p in parts))

    def unary(self) -> SpanPredicate:
        if self._keyword("NOT"):
            inner = self.unary()
            return lambda span: not inner(span)
        token = self.peek()
        if token == ("paren", "("):
            self._index += 1
            inner = self.or_expr()
            if self._take() != ("paren", ")"):
                raise SearchExpressionError("a '(' is not closed")
            return inner
        return self.comparison()

    def comparison(self) -> SpanPredicate:
        kind, field = self._take()
        if kind != "word":
            raise SearchExpressionError(f"expected a field name, found {field!r}")
        reader = self._field_reader(field)
        kind, op = self._take()
        if kind != "op":
            raise SearchExpressionError(f"expected an operator after {field!r}, found {op!r}")
        kind, raw = self._take()
        if kind not in ("string", "word"):
            raise SearchExpressionError(f"expected a value after {field} {op}, found {raw!r}")
        expected = _unquote(raw) if kind == "string" else raw
        return _compare(reader, op, expected, field in _TIME_FIELDS)

    def _field_reader(self, field: str) -> Callable[[Mapping[str, Any]], Any]:
        for prefix in _NAMESPACES:
            if field.startswith(prefix) and len(field) > len(prefix):
                namespace, key = prefix[:-1], field[len(prefix) :]
                return lambda span: (span.get(namespace) or {}).get(key)
        if field not in self._fields:
            raise SearchExpressionError(f"unknown field {field!r}")
        return lambda span: span.get(field)


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _compare(reader: Callable[[Mapping[str, Any]], Any], op: str, expected: str, is_time: bool) -> SpanPredicate:
    if op in ("~", "!~"):
        negate = op == "!~"

        def contains(span: Mapping[str, Any]) -> bool:
            actual = reader(span)
            if isinstance(actual, list):
                found = expected in [str(v) for v in actual]
            else:
                found = actual is not None and expected in str(actual)
            return found != negate

        return contains
    if is_time:
        try:
            wanted: Any = parse_iso(expected)
        except ValueError as exc:
            raise SearchExpressionError(f"{expected!r} is not an ISO-8601 date-time") from exc
    else:
        wanted = expected

    def compare(span: Mapping[str, Any]) -> bool:
        actual = reader(span)
        if actual is None:
            return op == "!="
        left, right = _comparable(actual, wanted, is_time)
        try:
            return bool(_OPS[op](left, right))
        except TypeError:
            return False

    return compare


def _comparable(actual: Any, wanted: Any, is_time: bool) -> tuple[Any, Any]:
    if is_time and isinstance(actual, str):
        return parse_iso(actual), wanted
    if isinstance(actual, bool):
        return str(actual).lower(), str(wanted).lower()
    if isinstance(actual, int | float):
        try:
            return actual, float(wanted)
        except ValueError:
            return str(actual), wanted
    return str(actual), str(wanted)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
