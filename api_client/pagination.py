"""Walking a paginated list: which page to ask for next and when to stop, shared by both clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import InvalidRequestError
from .models import Page
from .spec import RequestSpec

__all__ = ["PageCursor", "PageWalk"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageWalk(Generic[T]):
    """How to request page ``n`` (1-based) of a list, for a fixed page size."""

    page_request: Callable[[int], RequestSpec[Page[T]]]
    page_size: int

    def __post_init__(self) -> None:
        if not isinstance(self.page_size, int) or isinstance(self.page_size, bool) or self.page_size < 1:
            raise InvalidRequestError(f"page_size must be a positive int, got {self.page_size!r}")

    def start(self) -> PageCursor[T]:
        return PageCursor(self)


class PageCursor(Generic[T]):
    """The state of one walk.

    It stops at the first empty page or once ``count`` items have been seen. ``count`` is required by the
    contract while the format of ``next`` is not defined (URL, token, or always null), so ``next`` is not used.
    Counting also bounds a walk over a server that ignores ``page``. Items added or removed during the walk can be
    skipped or seen twice, as with any offset pagination.
    """

    def __init__(self, walk: PageWalk[T]) -> None:
        self._walk = walk
        self._page = 1
        self._seen = 0
        self._done = False

    def next_request(self) -> RequestSpec[Page[T]] | None:
        """The request for the next page, or None when the walk is over."""
        return None if self._done else self._walk.page_request(self._page)

    def take(self, page: Page[T]) -> list[T]:
        """Record a fetched page and return its items."""
        results = page.results
        self._seen += len(results)
        self._page += 1
        if not results or self._seen >= page.count:
            self._done = True
        return results
