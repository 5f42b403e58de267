"""Turning request builders into client methods, so that each public method is written once.

``list_datasets = SyncCall(operations.list_datasets)`` in a client class gives ``client.list_datasets(...)``
with the builder's signature and docstring; the call builds the spec and hands it to the client's ``_send``.
``AsyncCall`` does the same with a coroutine, ``SyncPages``/``AsyncPages`` with iterators over every page.
mypy sees the exact parameter and return types through ``ParamSpec``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from .models import Page
from .pagination import PageWalk
from .spec import RequestSpec

__all__ = ["AsyncCall", "AsyncPages", "AsyncSender", "SyncCall", "SyncPages", "SyncSender"]

P = ParamSpec("P")
T = TypeVar("T")
BuiltT = TypeVar("BuiltT")
MethodT = TypeVar("MethodT")


class SyncSender(Protocol):
    def _send(self, spec: RequestSpec[T]) -> T: ...


class AsyncSender(Protocol):
    async def _send(self, spec: RequestSpec[T]) -> T: ...


class _Binding(Generic[P, BuiltT]):
    """Shared descriptor plumbing: the builder, and the name/signature/docstring copied onto each method."""

    def __init__(self, build: Callable[P, BuiltT]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__
        # The builder's parameters; its return annotation (a spec) is not what the method returns.
        self.__signature__ = inspect.signature(build).replace(return_annotation=inspect.Signature.empty)

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}{self.__signature__}>"

    def _describe(self, method: MethodT, owner: type | None) -> MethodT:
        method.__name__ = self._name  # type: ignore[attr-defined]
        method.__qualname__ = f"{owner.__qualname__}.{self._name}" if owner else self._name  # type: ignore[attr-defined]
        method.__doc__ = self.__doc__
        method.__signature__ = self.__signature__  # type: ignore[attr-defined]
        return method


class SyncCall(_Binding[P, RequestSpec[T]]):
    """A method that sends one request and returns its value."""

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> SyncCall[P, T]: ...
    @overload
    def __get__(self, instance: SyncSender, owner: type | None = None) -> Callable[P, T]: ...
    def __get__(self, instance: SyncSender | None, owner: type | None = None) -> SyncCall[P, T] | Callable[P, T]:
        if instance is None:
            return self
        build = self._build

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return instance._send(build(*args, **kwargs))

        return self._describe(method, owner)


class AsyncCall(_Binding[P, RequestSpec[T]]):
    """A coroutine method that sends one request and returns its value."""

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> AsyncCall[P, T]: ...
    @overload
    def __get__(
        self, instance: AsyncSender, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(
        self, instance: AsyncSender | None, owner: type | None = None
    ) -> AsyncCall[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if instance is None:
            return self
        build = self._build

        # Building inside the coroutine: a bad argument is raised where the call is awaited, like any error.
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await instance._send(build(*args, **kwargs))

        return self._describe(method, owner)


class SyncPages(_Binding[P, PageWalk[T]]):
    """A method returning an iterator over the items of every page."""

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> SyncPages[P, T]: ...
    @overload
    def __get__(self, instance: SyncSender, owner: type | None = None) -> Callable[P, Iterator[T]]: ...
    def __get__(
        self, instance: SyncSender | None, owner: type | None = None
    ) -> SyncPages[P, T] | Callable[P, Iterator[T]]:
        if instance is None:
            return self
        build = self._build

        def method(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return _iterate(instance, build(*args, **kwargs))

        return self._describe(method, owner)


class AsyncPages(_Binding[P, PageWalk[T]]):
    """A method returning an async iterator over the items of every page."""

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> AsyncPages[P, T]: ...
    @overload
    def __get__(self, instance: AsyncSender, owner: type | None = None) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(
        self, instance: AsyncSender | None, owner: type | None = None
    ) -> AsyncPages[P, T] | Callable[P, AsyncIterator[T]]:
        if instance is None:
            return self
        build = self._build

        def method(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            return _aiterate(instance, build(*args, **kwargs))

        return self._describe(method, owner)


def _iterate(sender: SyncSender, walk: PageWalk[T]) -> Iterator[T]:
    cursor = walk.start()
    while (spec := cursor.next_request()) is not None:
        page: Page[T] = sender._send(spec)
        yield from cursor.take(page)


async def _aiterate(sender: AsyncSender, walk: PageWalk[T]) -> AsyncIterator[T]:
    cursor = walk.start()
    while (spec := cursor.next_request()) is not None:
        page: Page[T] = await sender._send(spec)
        for item in cursor.take(page):
            yield item
