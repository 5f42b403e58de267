"""Looking for the remote tasks an interrupted submit may have started: a scan of a dataset's task list.

"No task found" proves that a request never arrived only if the scan saw every task created in the submit
window. The contract promises no order for ``list_tasks``, so the order is read from the pages themselves:

- newest first: pages are read forward until one ends with a task older than the window;
- oldest first: the last page is read first, then the pages before it, until one starts with a task older than
  the window (the window is at the end of such a list, however long the dataset's history);
- any other order, or one the first page does not show (a single task, equal times): every page is read.

Each page read is checked against the order assumed; a page that contradicts it switches to reading every page.

A scan that cannot finish raises :class:`ScanIncomplete` (too many pages, out of time, a list that shrank while
it was read) or the client's ``ApiError``: the caller must take that as "unknown" and wait, never as "not found".

What could still break it: an API that sorts by something other than creation time and yet looks sorted on every
page read. Tasks created during the scan are harmless: in a newest-first list they push the others towards later
pages, which are read next (a task is seen twice, never skipped); in an oldest-first list they go after the last
page and are younger than the window. A deletion moves tasks the other way and could hide one, so a list whose
``count`` drops during the scan makes the scan incomplete.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from itertools import pairwise

from api_client import DatasetImportTask, DatasetsClient

__all__ = ["ADOPTION_MAX_PAGES", "LIST_PAGE_SIZE", "ScanIncomplete", "find_orphan_tasks"]

# The largest page the API is known to accept.
LIST_PAGE_SIZE = 100
# Pages one lookup may read: 10,000 tasks. With the order known, a lookup reads the tasks created since the
# submit window plus one page, so this is reached only by a dataset given that many imports since the crash (or
# listed in an order the pages do not show). Each page is an API call made while the sweep holds the jobs'
# leases; past the bound the jobs wait for the next sweep rather than be sent again on a partial answer.
ADOPTION_MAX_PAGES = 100


class ScanIncomplete(Exception):
    """Raised when a scan stopped before it saw every task that could be in the window."""


class _Order(enum.Enum):
    NEWEST_FIRST = "newest first"
    OLDEST_FIRST = "oldest first"
    UNKNOWN = "unknown"


def find_orphan_tasks(
    client: DatasetsClient,
    dataset_id: str,
    *,
    since: datetime,
    until: datetime,
    owned: Callable[[Collection[str]], set[str]],
    creators: Collection[str] = (),
    max_pages: int = ADOPTION_MAX_PAGES,
    time_budget_s: float | None = None,
) -> list[DatasetImportTask]:
    """The remote tasks on the dataset created between ``since`` and ``until`` and owned by no job, oldest first.

    ``owned`` answers which of the given task ids a job already owns: asked about the tasks the scan saw, it stays
    bounded by them however long the dataset's history.

    A dataset is shared: other users and other programs import into it too, and their tasks are no orphans of ours.
    Only tasks created by the same API user as ours are candidates: ``creators`` (the ``creator_id`` of tasks this
    service started, as far as known) and those of the owned tasks the scan itself comes across. When neither says
    who we are, every unowned task in the window is a candidate, as before.

    :raises ScanIncomplete: the scan needed more than ``max_pages`` pages or ``time_budget_s`` seconds, or the list
        shrank while it was read.
    :raises ApiError: a page could not be read.
    """
    scan = _TaskListScan(client, dataset_id, max_pages=max_pages, time_budget_s=time_budget_s)
    scan.cover(since)
    taken = owned(list(scan.seen))
    ours = set(creators) | {task.creator_id for task in scan.seen.values() if task.id in taken}
    candidates = [
        task
        for task in scan.seen.values()
        if task.id not in taken
        and since <= task.created_at <= until
        and (not ours or task.creator_id in ours)
    ]
    return sorted(candidates, key=lambda task: (task.created_at, task.id))


class _TaskListScan:
    """The pages of one dataset's task list read so far, and the tasks seen on them."""

    def __init__(
        self, client: DatasetsClient, dataset_id: str, *, max_pages: int, time_budget_s: float | None
    ) -> None:
        self._client = client
        self._dataset_id = dataset_id
        self._max_pages = max_pages
        self._deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
        self._count: int | None = None
        self.pages_read: set[int] = set()
        self.seen: dict[str, DatasetImportTask] = {}

    def cover(self, since: datetime) -> None:
        """Read pages until every task created at or after ``since`` has been seen."""
        first = self._read(1)
        if self._last_page() <= 1:
            return
        order = _order_of([task.created_at for task in first])
        if order is _Order.NEWEST_FIRST and self._walk_newest_first(first, since):
            return
        if order is _Order.OLDEST_FIRST and self._walk_oldest_first(since):
            return
        self._read_to_end()

    def _walk_newest_first(self, first: list[DatasetImportTask], since: datetime) -> bool:
        """Forward until a page ends before ``since``; False when a page contradicts the order."""
        oldest = first[-1].created_at
        page_number = 1
        while oldest >= since:
            page_number += 1
            if page_number > self._last_page():
                return True
            new = self._read_new(page_number)
            times = [task.created_at for task in new]
            if not _non_increasing([oldest, *times]):
                return False
            if times:
                oldest = times[-1]
        return True

    def _walk_oldest_first(self, since: datetime) -> bool:
        """Backward from the last page until a page starts before ``since``; False when a page contradicts it."""
        later: datetime | None = None  # the oldest task of the page read just before (the next one in the list)
        page_number = self._last_page()
        while page_number > 1:
            times = [task.created_at for task in self._read_new(page_number)]
            if not _non_decreasing([*times, *([later] if later is not None else [])]):
                return False
            if times:
                if times[0] < since:
                    return True
                later = times[0]
            page_number -= 1
        return True

    def _read_to_end(self) -> None:
        page_number = 2
        while page_number <= self._last_page():
            if page_number not in self.pages_read and not self._read(page_number):
                return
            page_number += 1

    def _read_new(self, page_number: int) -> list[DatasetImportTask]:
        """The tasks of a page not seen on an earlier one."""
        known = set(self.seen)
        return [task for task in self._read(page_number) if task.id not in known]

    def _read(self, page_number: int) -> list[DatasetImportTask]:
        if len(self.pages_read) >= self._max_pages:
            raise ScanIncomplete(f"more than {self._max_pages} pages of tasks to read")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise ScanIncomplete(f"out of time after {len(self.pages_read)} pages of tasks")
        page = self._client.list_tasks(self._dataset_id, page=page_number, page_size=LIST_PAGE_SIZE)
        if self._count is not None and page.count < self._count:
            raise ScanIncomplete(f"the task list shrank from {self._count} to {page.count} while it was read")
        self._count = page.count
        self.pages_read.add(page_number)
        for task in page.results:
            self.seen.setdefault(task.id, task)
        return page.results

    def _last_page(self) -> int:
        return math.ceil((self._count or 0) / LIST_PAGE_SIZE)


def _order_of(times: Sequence[datetime]) -> _Order:
    if len(set(times)) < 2:
        return _Order.UNKNOWN
    if _non_increasing(times):
        return _Order.NEWEST_FIRST
    if _non_decreasing(times):
        return _Order.OLDEST_FIRST
    return _Order.UNKNOWN


def _non_increasing(times: Sequence[datetime]) -> bool:
    return all(a >= b for a, b in pairwise(times))


def _non_decreasing(times: Sequence[datetime]) -> bool:
    return all(a <= b for a, b in pairwise(times))
