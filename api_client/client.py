"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import httpx
from pydantic import SecretStr

from . import operations as ops
from . import record_operations as rec
from . import source_operations as src
from .binding import SyncCall, SyncPages
from .core import DEFAULT_BASE_URL, DEFAULT_USER_AGENT, Attempts, ClientCore
from .errors import ApiError
from .retry import RetryPolicy
from .spec import RequestSpec

__all__ = ["DatasetsClient"]

T = TypeVar("T")


class DatasetsClient:
    """Blocking client for the Observability Datasets API and the sources imports read from.

    Every method raises an :class:`~api_client.errors.ApiError` subclass on failure, never an httpx or pydantic
    exception. Use it as a context manager, or call :meth:`close`.

    ``sleep`` and ``clock`` (seconds, monotonic) drive retries; tests replace them so nothing really waits.
    """

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = ClientCore(
            api_key, base_url=base_url, timeout_s=timeout_s, retry=retry, user_agent=user_agent, clock=clock
        )
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **self._core.client_options())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._core.base_url!r})"

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> DatasetsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Datasets (contract §2)
    list_datasets = SyncCall(ops.list_datasets)
    iter_datasets = SyncPages(ops.iter_datasets)
    create_dataset = SyncCall(ops.create_dataset)
    fetch_dataset = SyncCall(ops.fetch_dataset)
    update_dataset = SyncCall(ops.update_dataset)
    delete_dataset = SyncCall(ops.delete_dataset)
    list_records = SyncCall(ops.list_records)
    iter_records = SyncPages(ops.iter_records)
    create_record = SyncCall(ops.create_record)
    start_import = SyncCall(ops.start_import)
    import_from_campaign = SyncCall(ops.import_from_campaign)
    import_from_explorer = SyncCall(ops.import_from_explorer)
    import_from_file = SyncCall(ops.import_from_file)
    import_from_playground = SyncCall(ops.import_from_playground)
    import_from_dataset_records = SyncCall(ops.import_from_dataset_records)
    export_to_jsonl = SyncCall(ops.export_to_jsonl)
    fetch_task = SyncCall(ops.fetch_task)
    list_tasks = SyncCall(ops.list_tasks)
    iter_tasks = SyncPages(ops.iter_tasks)

    # Records by their own id (3.x, contract "Today's API")
    fetch_record = SyncCall(rec.fetch_record)
    delete_record = SyncCall(rec.delete_record)
    bulk_delete_records = SyncCall(rec.bulk_delete_records)
    update_record_payload = SyncCall(rec.update_record_payload)
    update_record_properties = SyncCall(rec.update_record_properties)
    judge_record = SyncCall(rec.judge_record)

    # Sources (contract §5)
    fetch_campaign = SyncCall(src.fetch_campaign)
    fetch_campaign_status = SyncCall(src.fetch_campaign_status)
    list_campaign_events = SyncCall(src.list_campaign_events)
    iter_campaign_events = SyncPages(src.iter_campaign_events)
    search_event_ids = SyncCall(src.search_event_ids)
    search_spans = SyncCall(src.search_spans)
    fetch_event = SyncCall(src.fetch_event)
    upload_file = SyncCall(src.upload_file)
    download_file = SyncCall(src.download_file)
    fetch_conversation = SyncCall(src.fetch_conversation)
    fetch_conversation_messages = SyncCall(src.fetch_conversation_messages)

    def download_export(self, dataset_id: str) -> bytes:
        """Export a dataset and download the JSONL file from its presigned URL (no API key sent there)."""
        export = self._send(ops.export_to_jsonl(dataset_id))
        return self._send(ops.download_export_from(export.file_url))

    def _send(self, spec: RequestSpec[T]) -> T:
        """Send ``spec``, retrying as the policy allows; return its value or raise the last error."""
        attempts = self._core.attempts(spec)
        while True:
            try:
                return self._attempt(spec, attempts)
            except ApiError as error:
                delay_s = attempts.delay_after(error)
                if delay_s is None:
                    raise
            self._sleep(delay_s)

    def _attempt(self, spec: RequestSpec[T], attempts: Attempts) -> T:
        request = self._core.build_request(self._http, spec)
        started = attempts.begin()
        try:
            response = self._http.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._core.send_failed(spec, request, exc) from exc
        try:
            response.read()
        except httpx.HTTPError as exc:
            raise self._core.read_failed(spec, response, exc) from exc
        finally:
            response.close()
        return self._core.interpret(spec, response, started)
