"""Dataset names for the ids the ledger holds, read from the API now and then and kept in memory.

The page never waits on the API for long: a request asks for the names it has (none missing or stale starts one
refresh in a background thread), waiting at most ``wait_s`` for a refresh under way; when the API is slow or
unreachable it shows the ids alone and the next refresh is tried ``retry_s`` later, not on every request. One
refresh lists every dataset (a few pages), so a page of jobs on many datasets costs no request per id.

The API key is held by the client only; it is never logged (a failure logs its type and the base URL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["DatasetNames", "api_fetcher", "ids_named"]

log = logging.getLogger(__name__)

# At most this many datasets are read per refresh: the page shows names, it does not mirror a huge workspace.
MAX_DATASETS = 10_000


def ids_named(names: Mapping[str, str], text: str) -> set[str]:
    """The ids of the datasets whose name holds ``text`` (any case)."""
    needle = text.casefold()
    return {dataset_id for dataset_id, name in names.items() if needle in name.casefold()}


def api_fetcher(base_url: str, api_key: str, *, timeout_s: float = 2.0) -> Callable[[], dict[str, str]]:
    """A function that lists every dataset's ``id -> name`` through the API client, without retries."""

    def fetch() -> dict[str, str]:
        # Imported here: a page without an API configured loads no HTTP client.
        from api_client import DatasetsClient
        from api_client.retry import RetryPolicy

        names: dict[str, str] = {}
        with DatasetsClient(
            api_key, base_url=base_url, timeout_s=timeout_s, retry=RetryPolicy(max_attempts=1)
        ) as client:
            for dataset in client.iter_datasets(page_size=100):
                names[dataset.id] = dataset.name
                if len(names) >= MAX_DATASETS:
                    break
        return names

    return fetch


class DatasetNames:
    """``id -> name``, refreshed every ``ttl_s`` in the background; empty while the API cannot be read."""

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, str]] | None,
        *,
        ttl_s: float = 60.0,
        retry_s: float = 15.0,
        wait_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._retry_s = retry_s
        self._wait_s = wait_s
        self._clock = clock
        self._names: dict[str, str] = {}
        self._next_refresh = 0.0
        self._lock = threading.Lock()
        self._refreshing: threading.Event | None = None

    def names(self) -> dict[str, str]:
        """The names known now; starts a refresh when they are due one, and waits ``wait_s`` at most for it."""
        if self._fetch is None:
            return {}
        with self._lock:
            running = self._refreshing
            if running is None and self._clock() >= self._next_refresh:
                running = self._refreshing = threading.Event()
                threading.Thread(target=self._refresh, args=(running,), name="dataset-names", daemon=True).start()
        if running is not None:
            running.wait(self._wait_s)
        with self._lock:
            return dict(self._names)

    def _refresh(self, done: threading.Event) -> None:
        assert self._fetch is not None
        try:
            fresh = dict(self._fetch())
        except Exception as exc:  # the API being down or refusing the key must never break the page
            log.warning("dataset names: cannot list the datasets (%s); ids are shown alone", type(exc).__name__)
            with self._lock:
                self._next_refresh = self._clock() + self._retry_s
        else:
            with self._lock:
                self._names = fresh
                self._next_refresh = self._clock() + self._ttl_s
        finally:
            with self._lock:
                self._refreshing = None
            done.set()
