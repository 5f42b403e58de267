"""Live judging of a dataset record: the judge definition (``CreateJudgeRequest``) and a deterministic verdict.

No model runs here. The verdict depends only on the judge and the record's payload, so asking twice gives the
same ``{"analysis", "answer"}``: a CLASSIFICATION judge answers one of its option values (a string), a
REGRESSION judge a number within ``[min, max]`` (defaults 0 and 1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import validation_error
from .models import Record

__all__ = ["judge_record", "parse_judge_definition"]

JsonObject = dict[str, Any]


def parse_judge_definition(body: Mapping[str, Any]) -> JsonObject:
    """The ``judge_definition`` of a live-judging body, checked as the SDK's ``CreateJudgeRequest``."""
    judge = body.get("judge_definition")
    if not isinstance(judge, Mapping):
        raise validation_error("body.judge_definition: Field required (an object)")
    for key in ("name", "description", "model_name", "instructions"):
        if not isinstance(judge.get(key), str):
            raise validation_error(f"body.judge_definition.{key}: Field required (a string)")
    tools = judge.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise validation_error("body.judge_definition.tools: Field required (a list of strings)")
    output = judge.get("output")
    if not isinstance(output, Mapping):
        raise validation_error("body.judge_definition.output: Field required (an object)")
    kind = output.get("type")
    if kind == "CLASSIFICATION":
        options = output.get("options")
        if (
            not isinstance(options, list)
            or not options
            or not all(
                isinstance(o, Mapping) and isinstance(o.get("value"), str) and isinstance(o.get("description"), str)
                for o in options
            )
        ):
            raise validation_error(
                "body.judge_definition.output.options: Input should be a non-empty list of {value, description}"
            )
    elif kind == "REGRESSION":
        for key in ("min_description", "max_description"):
            if not isinstance(output.get(key), str):
                raise validation_error(f"body.judge_definition.output.{key}: Field required (a string)")
        low, high = output.get("min", 0), output.get("max", 1)
        if not _is_number(low) or not _is_number(high) or low > high:
            raise validation_error("body.judge_definition.output: min and max should be numbers with min <= max")
    else:
        raise validation_error("body.judge_definition.output.type: Input should be 'CLASSIFICATION' or 'REGRESSION'")
    return dict(judge)


def judge_record(judge: Mapping[str, Any], record: Record) -> JsonObject:
    """``JudgeOutput``: ``{"analysis": str, "answer": str | number}``."""
    digest = hashlib.sha256(
        json.dumps([judge, record.payload], sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    output = judge["output"]
    name = judge["name"]
    if output["type"] == "CLASSIFICATION":
        options = output["options"]
        chosen = options[int(share * len(options))]
        answer: str | float = chosen["value"]
        analysis = f"Judge {name!r} on record {record.id}: {chosen['description']}"
    else:
        low, high = float(output.get("min", 0)), float(output.get("max", 1))
        answer = round(low + share * (high - low), 4)
        analysis = (
            f"Judge {name!r} on record {record.id}: {answer} on a scale from {low} "
            f"({output['min_description']}) to {high} ({output['max_description']})"
        )
    return {"analysis": analysis, "answer": answer}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
