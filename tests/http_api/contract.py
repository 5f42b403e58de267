"""Every answer a test receives is checked against the OpenAPI document the server publishes.

The operation is found by method and path template; its status must be listed; a JSON body must validate
(jsonschema, Draft 2020-12) against the schema the document gives for that status. A path no operation matches
(``/api/v1/nowhere``) may only answer an error, in the one error shape. An answer the document does not describe
fails the test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema

API_PREFIX = "/api/v1"


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


@dataclass
class ContractChecker:
    """Collects answers (an httpx response hook) and checks them against ``document``."""

    document: dict[str, Any] | None = None
    answers: list[Recorded] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append(
            Recorded(
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
        )

    def check_all(self) -> int:
        assert self.document is not None, "no OpenAPI document to check against"
        for answer in self.answers:
            if answer.path.startswith(API_PREFIX):
                check_answer(self.document, answer)
        return len(self.answers)


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    relative = path.removeprefix(API_PREFIX)
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, relative) and method.lower() in operations:
            return dict(operations[method.lower()])
    return None


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        parts = node["$ref"].removeprefix("#/").split("/")
        target: Any = document
        for part in parts:
            target = target[part]
        node = target
    return node


def validate(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """``value`` against ``schema``, a schema of the document whose references point into its components."""
    root = {**schema, "components": document["components"]}
    jsonschema.Draft202012Validator(root).validate(value)


def check_answer(document: dict[str, Any], answer: Recorded) -> None:
    where = f"{answer.method} {answer.path} -> {answer.status}"
    operation = _operation(document, answer.method, answer.path)
    if operation is None:
        # No operation: only an error in the one error shape may come back (an unknown path, a wrong method).
        assert answer.status >= 400, f"{where}: an answer the document does not describe"
        validate(document, {"$ref": "#/components/schemas/ErrorAnswer"}, json.loads(answer.body))
        return
    responses = operation["responses"]
    assert str(answer.status) in responses, f"{where}: status not in the document ({sorted(responses)})"
    described = _resolve(document, responses[str(answer.status)])
    content = described.get("content")
    if not content:
        assert answer.body == b"", f"{where}: the document describes no body, the server sent one"
        return
    assert answer.content_type.startswith("application/json"), f"{where}: {answer.content_type}"
    schema = content["application/json"].get("schema")
    if schema is not None:
        validate(document, schema, json.loads(answer.body))
