"""The shared description of a call: an :class:`Endpoint` (what the contract says) and a :class:`RequestSpec`
(one concrete request to it). Building a spec performs no I/O; the sync and async clients only send it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import InvalidRequestError, UnexpectedResponseReason

__all__ = [
    "OBSERVABILITY_PREFIX",
    "UNSET",
    "DecodeFailure",
    "Decoder",
    "Endpoint",
    "FilePart",
    "RequestSpec",
    "Unset",
    "encode_json",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Unset(enum.Enum):
    """Marks an argument that was not given, as opposed to one given as ``None`` (sent as ``null``)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET

# The paths of the Observability API, whose errors carry an ``error_code``.
OBSERVABILITY_PREFIX: Final = "/v1/observability/"

# (file name, content, content type or None to let httpx guess from the name)
FilePart: TypeAlias = tuple[str, bytes, str | None]


class DecodeFailure(Exception):
    """Raised by a decoder when a success answer's body does not fit; turned into UnexpectedResponseError."""

    def __init__(self, reason: UnexpectedResponseReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Decoder(Protocol[T_co]):
    """Turns a success answer into the value a method returns; raises :class:`DecodeFailure` otherwise."""

    def decode(self, response: httpx.Response) -> T_co: ...


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[T]):
    """One operation of the API as the contract describes it."""

    operation: str
    method: str
    # Template such as "/v1/observability/datasets/{dataset_id}"; "{url}" for a URL given by the server.
    path: str
    success_status: int
    decoder: Decoder[T]
    # Starts or creates something remotely: not safe to send twice (see RetryPolicy).
    creates: bool = False
    # False for presigned URLs, which must not receive the API key.
    authenticated: bool = True

    @property
    def coded_errors(self) -> bool:
        """True when the API answers every refusal here with an ``ObservabilityError`` code (contract §9.3), so a
        404 without a code means that the route itself is missing (see ``RouteNotFoundError``)."""
        return self.path.startswith(OBSERVABILITY_PREFIX)

    def request(
        self,
        path_params: Mapping[str, str] | None = None,
        *,
        query: tuple[tuple[str, str], ...] = (),
        json_body: object = UNSET,
        form: tuple[tuple[str, str], ...] = (),
        files: tuple[tuple[str, FilePart], ...] = (),
    ) -> RequestSpec[T]:
        """A request to this endpoint; path parameters are percent-encoded except ``/`` (as the SDK does)."""
        path = self.path
        for name, value in (path_params or {}).items():
            if not isinstance(value, str) or not value:
                raise InvalidRequestError(f"{self.operation}: {name} must be a non-empty string, got {value!r}")
            path = path.replace("{" + name + "}", quote(value, safe="/"))
        body = None if json_body is UNSET else encode_json(json_body, operation=self.operation)
        return RequestSpec(endpoint=self, path=path, query=query, body=body, form=form, files=files)

    def request_to_url(self, url: str) -> RequestSpec[T]:
        """A request to a URL the server handed out (absolute, or relative to the base URL)."""
        if not url:
            raise InvalidRequestError(f"{self.operation}: the URL is empty")
        return RequestSpec(endpoint=self, path=url, external=True)


@dataclass(frozen=True, slots=True)
class RequestSpec(Generic[T]):
    """One request, ready to send: rendered path, query in order, compact JSON body or multipart parts."""

    endpoint: Endpoint[T]
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    form: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, FilePart], ...] = ()
    # True when ``path`` is a URL from the server rather than a path under the base URL.
    external: bool = False


def encode_json(value: Any, *, operation: str = "request") -> bytes:
    """Compact JSON, as the SDK sends it (``{"a":"b"}``); datetimes and UUIDs become strings."""
    try:
        return json.dumps(to_jsonable_python(value), separators=(",", ":")).encode()
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise InvalidRequestError(f"{operation}: the body cannot be encoded as JSON: {exc}") from exc
