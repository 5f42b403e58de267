"""Objects of the record operations 3.x added (``/v1/observability/dataset-records/...``): live judging.

A judge definition is a request body: it is validated here and serialized in the SDK's field order, so the bytes
on the wire are the 3.7.0 SDK's (``CreateJudgeRequest``, whose ``output`` is a classification or a regression,
told apart by ``type``). The judge's answer (``JudgeOutput``) is a response: unknown keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from .models import ResponseModel

__all__ = [
    "JudgeClassificationOption",
    "JudgeClassificationOutput",
    "JudgeDefinition",
    "JudgeOutput",
    "JudgeOutputSpec",
    "JudgeRegressionOutput",
]


class _RequestModel(BaseModel):
    # A misspelt key is an error here rather than a field the server never sees.
    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeClassificationOption(_RequestModel):
    """One class a classification judge may answer."""

    value: str
    description: str


class JudgeClassificationOutput(_RequestModel):
    """The judge answers one of ``options``."""

    options: list[JudgeClassificationOption]
    type: Literal["CLASSIFICATION"] = "CLASSIFICATION"


class JudgeRegressionOutput(_RequestModel):
    """The judge answers a number between ``min`` and ``max`` (0 and 1 unless given)."""

    min_description: str
    max_description: str
    type: Literal["REGRESSION"] = "REGRESSION"
    min: float = 0.0
    max: float = 1.0


JudgeOutputSpec: TypeAlias = Annotated[
    JudgeClassificationOutput | JudgeRegressionOutput, Field(discriminator="type")
]


class JudgeDefinition(_RequestModel):
    """What a live judging runs (``CreateJudgeRequest``); ``tools`` may be empty but must be given."""

    name: str
    description: str
    model_name: str
    output: JudgeOutputSpec
    instructions: str
    tools: list[str]


class JudgeOutput(ResponseModel):
    """A judge's verdict: its reasoning, and a class (classification) or a number (regression)."""

    analysis: str
    answer: str | float
