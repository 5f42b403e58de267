"""Drives the official SDK of whatever ``mistralai`` version runs it against a running emulator.

Run as a script by tests/contract/test_sdk_versions.py, once with the project's interpreter (SDK 2.5.0) and once with
the cached 3.7.0 virtualenv's: the two SDKs cannot share one environment. It imports nothing of this project, so it
runs in either. Prints one JSON object: ``{"sdk": "3.7.0", "results": {operation: {"status", "detail"}}}`` where
status is ``pass``, ``fail`` or ``absent`` (the SDK has no such method).

    python sdk_driver.py --url http://127.0.0.1:PORT --key KEY --fixture '{"dataset_id": ..., ...}'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

# Every operation this driver exercises, and the SDK generations that have it ("2" = 2.5.0, "3" = 3.7.0).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "datasets.list": ("2", "3"),
    "datasets.create": ("2", "3"),
    "datasets.fetch": ("2", "3"),
    "datasets.fetch (by slug)": ("2", "3"),
    "datasets.update": ("2", "3"),
    "datasets.delete": ("2", "3"),
    "datasets.list_records": ("2", "3"),
    "datasets.create_record": ("2", "3"),
    "datasets.create_record (free-form payload, TELEMETRY_SPAN)": ("3",),
    "datasets.import_from_campaign": ("2",),
    "datasets.import_from_explorer": ("2",),
    "datasets.import_from_file": ("2", "3"),
    "datasets.import_from_playground": ("2", "3"),
    "datasets.import_from_dataset_records": ("2", "3"),
    "datasets.import_from_spans": ("3",),
    "datasets.export_to_jsonl": ("2", "3"),
    "datasets.fetch_task": ("2", "3"),
    "datasets.list_tasks": ("2", "3"),
    "datasets.records.fetch": ("2", "3"),
    "datasets.records.update_payload": ("2", "3"),
    "datasets.records.update_properties": ("2", "3"),
    "datasets.records.judge": ("2", "3"),
    "datasets.records.delete": ("2", "3"),
    "datasets.records.bulk_delete": ("2", "3"),
    "spans.search_spans": ("2", "3"),
    "errors: 404 DATASET_NOT_FOUND (unknown slug)": ("2", "3"),
    "errors: 404 DATASET_RECORD_NOT_FOUND": ("2", "3"),
    "errors: 422 VALIDATION_ERROR": ("2", "3"),
    "errors: unknown route": ("2", "3"),
    "async: datasets.create_async": ("2", "3"),
    "async: datasets.import_from_file_async": ("2", "3"),
    "async: datasets.import_from_spans_async": ("3",),
    "async: datasets.fetch_task_async": ("2", "3"),
    "async: datasets.records.fetch_async": ("2", "3"),
    "async: spans.search_spans_async": ("2", "3"),
}
# The datasets method behind an operation only one generation has: the other is checked not to have it ("absent").
# An operation without an entry is a behaviour, not a method: "n/a" for the generation without it.
METHODS = {
    "datasets.import_from_campaign": "import_from_campaign",
    "datasets.import_from_explorer": "import_from_explorer",
    "datasets.import_from_spans": "import_from_spans",
    "async: datasets.import_from_spans_async": "import_from_spans_async",
}
MAPPING = {
    "version": 1,
    "mappings": [
        {"target_field": "messages", "source_field": {"namespace": "span_attributes", "key": "gen_ai.input.messages"}},
        {"target_field": "label", "source_field": {"namespace": "span_attributes", "key": "app.label"}},
    ],
}
JUDGE = {
    "name": "helpfulness",
    "description": "Is the answer helpful?",
    "model_name": "mistral-small-latest",
    "output": {
        "type": "CLASSIFICATION",
        "options": [{"value": "good", "description": "helpful"}, {"value": "bad", "description": "not helpful"}],
    },
    "instructions": "Judge the last answer.",
    "tools": [],
}
MISSING = "6d7c6a2e-0000-4000-8000-000000000000"


class Driver:
    def __init__(self, url: str, key: str, fixture: dict[str, Any]) -> None:
        from mistralai.client import Mistral, _version, errors, models

        self.url, self.key, self.fixture = url, key, fixture
        self.Mistral, self.errors, self.models = Mistral, errors, models
        self.version = str(_version.__version__)
        self.generation = self.version.split(".")[0]
        self.sdk = Mistral(api_key=key, server_url=url)
        self.datasets = self.sdk.beta.observability.datasets
        self.results: dict[str, dict[str, str]] = {}

    # Bookkeeping ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def check(self, operation: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"[:400]
            self.results[operation] = {"status": "fail", "detail": detail + "\n" + traceback.format_exc(limit=3)}
        else:
            self.results.setdefault(operation, {"status": "pass", "detail": ""})

    def admin(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the loopback emulator's http URL
            self.url + "/_emulator" + path,
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the loopback emulator
            answer.read()

    def expect_error(self, call: Callable[[], object], status: int, code: str | None) -> None:
        try:
            call()
        except self.errors.ObservabilityError as exc:
            assert exc.status_code == status, (exc.status_code, exc.body)
            assert exc.data.detail.error_code == code, exc.data.detail
            return
        raise AssertionError(f"expected an ObservabilityError {status} {code}")

    # The scenario --------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.admin("/reset", {})
        for operation, generations in OPERATIONS.items():
            if self.generation not in generations:
                method = METHODS.get(operation)
                if method is None:
                    status = "n/a"
                else:
                    status = "present" if hasattr(self.datasets, method) else "absent"
                self.results[operation] = {"status": status, "detail": ""}
        self.datasets_and_records()
        self.imports()
        self.record_operations()
        self.spans_and_errors()
        asyncio.run(self.async_twins())

    def datasets_and_records(self) -> None:
        d, m = self.datasets, self.models
        with self.check("datasets.list"):
            listed = d.list(page_size=1, page=2, q="a")
            assert isinstance(listed, m.ListDatasetsResponse) and listed.datasets.count == 2
            assert listed.datasets.previous is not None and listed.datasets.next is None
        with self.check("datasets.create"):
            self.dataset = d.create(name="SDK Contract", description="made by the SDK")
            assert isinstance(self.dataset, m.Dataset) and self.dataset.deleted_at is None
            if self.generation != "2":
                assert self.dataset.slug == "sdk-contract"
        with self.check("datasets.fetch"):
            fetched = d.fetch(dataset_id=self.dataset.id)
            assert isinstance(fetched, m.DatasetPreview) and fetched.name == "SDK Contract"
        with self.check("datasets.fetch (by slug)"):
            assert d.fetch(dataset_id="sdk-contract").id == self.dataset.id
        with self.check("datasets.update"):
            renamed = d.update(dataset_id=self.dataset.id, name="Renamed")
            assert isinstance(renamed, m.DatasetPreview) and renamed.name == "Renamed"
            assert d.update(dataset_id=self.dataset.id, description=None).description == "made by the SDK"
        with self.check("datasets.create_record"):
            self.record = d.create_record(
                dataset_id=self.dataset.id,
                payload={"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
                properties={"label": "ok"},
            )
            assert isinstance(self.record, m.DatasetRecord) and self.record.source == "DIRECT_INPUT"
            assert self.record.properties == {"label": "ok"}
        if self.generation != "2":
            with self.check("datasets.create_record (free-form payload, TELEMETRY_SPAN)"):
                free = d.create_record(
                    dataset_id=self.dataset.id, payload={"question": "q?", "context": [1, 2]}, source="TELEMETRY_SPAN"
                )
                assert free.payload == {"question": "q?", "context": [1, 2]} and free.source == "TELEMETRY_SPAN"
                assert free.properties == {}
        with self.check("datasets.list_records"):
            records = d.list_records(dataset_id=self.dataset.id, page_size=1)
            assert isinstance(records, m.ListDatasetRecordsResponse)
            count = 1 if self.generation == "2" else 2
            assert records.records.count == count and len(records.records.results or []) == 1
            assert (records.records.next is not None) == (count > 1)

    def imports(self) -> None:
        d, m, f = self.datasets, self.models, self.fixture
        target = d.create(name="Import target", description="")
        self.target = target
        starts: dict[str, Callable[[], Any]] = {
            "datasets.import_from_file": lambda: d.import_from_file(dataset_id=target.id, file_id=f["file_id"]),
            "datasets.import_from_playground": lambda: d.import_from_playground(
                dataset_id=target.id, conversation_ids=f["conversation_ids"]
            ),
            "datasets.import_from_dataset_records": lambda: d.import_from_dataset_records(
                dataset_id=target.id, dataset_record_ids=f["record_ids"]
            ),
        }
        if self.generation == "2":
            starts["datasets.import_from_campaign"] = lambda: d.import_from_campaign(
                dataset_id=target.id, campaign_id=f["campaign_id"]
            )
            starts["datasets.import_from_explorer"] = lambda: d.import_from_explorer(
                dataset_id=target.id, completion_event_ids=f["event_ids"]
            )
        else:
            references = [{"trace_id": t, "span_id": s} for t, s in f["chat_spans"]]
            references.append({"trace_id": "0" * 32, "span_id": "0" * 16})
            starts["datasets.import_from_spans"] = lambda: d.import_from_spans(
                dataset_id=target.id, span_references=references, mapping_contract=MAPPING
            )
        tasks: dict[str, Any] = {}
        for operation, start in starts.items():
            with self.check(operation):
                task = start()
                assert isinstance(task, m.DatasetImportTask)
                assert (task.status, task.progress, task.dataset_id) == ("RUNNING", 0, target.id)
                tasks[operation] = task
        self.admin("/clock", {"advance_s": 10})
        with self.check("datasets.fetch_task"):
            for operation, task in tasks.items():
                done = d.fetch_task(dataset_id=target.id, task_id=task.id)
                assert isinstance(done, m.DatasetImportTask) and done.status == "COMPLETED", (operation, done)
                assert done.progress == 100
        if "datasets.import_from_spans" in tasks:
            with self.check("datasets.import_from_spans"):
                done = d.fetch_task(dataset_id=target.id, task_id=tasks["datasets.import_from_spans"].id)
                assert isinstance(done.result, m.DatasetImportResult), done
                assert (done.result.requested_record_count, done.result.imported_record_count) == (5, 4)
                assert done.result.skipped_record_count == 1
                spans = [r for r in self.all_records(target.id) if r.source == "TELEMETRY_SPAN"]
                assert len(spans) == 4 and spans[0].payload["label"] == "good", spans[:1]
                assert isinstance(spans[0].payload["messages"], list)
                assert set(spans[0].properties) == {"trace_id", "span_id"}
        with self.check("datasets.list_tasks"):
            listed = d.list_tasks(dataset_id=target.id, page_size=2)
            assert isinstance(listed, m.ListDatasetImportTasksResponse)
            assert listed.tasks.count == len(starts) and listed.tasks.next is not None
        with self.check("datasets.export_to_jsonl"):
            export = d.export_to_jsonl(dataset_id=target.id)
            assert isinstance(export, m.ExportDatasetResponse)
            with urllib.request.urlopen(export.file_url, timeout=30) as answer:  # noqa: S310 - loopback
                lines = answer.read().decode().splitlines()
            assert len(lines) == len(self.all_records(target.id)) > 0

    def all_records(self, dataset_id: str) -> list[Any]:
        page = self.datasets.list_records(dataset_id=dataset_id, page_size=100)
        return list(page.records.results or [])

    def record_operations(self) -> None:
        records, m = self.datasets.records, self.models
        record_id = self.record.id
        with self.check("datasets.records.fetch"):
            fetched = records.fetch(dataset_record_id=record_id)
            assert isinstance(fetched, m.DatasetRecord) and fetched.id == record_id
            assert fetched.dataset_id == self.dataset.id
        with self.check("datasets.records.update_payload"):
            new_payload = {"messages": [{"role": "user", "content": "edited"}]}
            assert records.update_payload(dataset_record_id=record_id, payload=new_payload) is None
            payload = records.fetch(dataset_record_id=record_id).payload
            content = payload["messages"][0]["content"] if isinstance(payload, dict) else payload.messages[0]["content"]
            assert content == "edited"
        with self.check("datasets.records.update_properties"):
            assert records.update_properties(dataset_record_id=record_id, properties={"label": "new"}) is None
            assert records.fetch(dataset_record_id=record_id).properties == {"label": "new"}
        with self.check("datasets.records.judge"):
            verdict = records.judge(dataset_record_id=record_id, judge_definition=JUDGE)
            assert isinstance(verdict, m.JudgeOutput) and verdict.answer in ("good", "bad")
            assert isinstance(verdict.analysis, str) and verdict.analysis
        copies = [r for r in self.all_records(self.target.id) if r.source != "TELEMETRY_SPAN"]
        with self.check("datasets.records.delete"):
            assert records.delete(dataset_record_id=copies[0].id) is None
            self.expect_error(lambda: records.fetch(dataset_record_id=copies[0].id), 404, "DATASET_RECORD_NOT_FOUND")
        with self.check("datasets.records.bulk_delete"):
            ids = [r.id for r in copies[1:3]]
            assert records.bulk_delete(dataset_record_ids=[*ids, MISSING]) is None
            left = {r.id for r in self.all_records(self.target.id)}
            assert not left & set(ids)
        with self.check("datasets.delete"):
            assert self.datasets.delete(dataset_id=self.dataset.id) is None
            self.expect_error(lambda: self.datasets.fetch(dataset_id=self.dataset.id), 404, "DATASET_NOT_FOUND")

    def spans_and_errors(self) -> None:
        spans, m, d = self.sdk.beta.observability.spans, self.models, self.datasets
        with self.check("spans.search_spans"):
            first = spans.search_spans(page_size=4)
            assert isinstance(first, m.GetSpans) and len(first.spans.results or []) == 4 and first.spans.cursor
            seen = [s.span_id for s in first.spans.results or []]
            cursor = first.spans.cursor
            while cursor:
                page = spans.search_spans(page_size=4, cursor=cursor)
                seen += [s.span_id for s in page.spans.results or []]
                cursor = page.spans.cursor
            assert len(seen) == len(set(seen)) == self.fixture["span_count"]
            chats = spans.search_spans(search_expression="operation_name = chat AND span_attributes.app.label = good")
            assert len(chats.spans.results or []) == 3
            from datetime import UTC, datetime, timedelta

            now = datetime.fromtimestamp(self.fixture["now"], UTC)
            window = spans.search_spans(from_=now - timedelta(minutes=20), to=now)
            assert {s.trace_id for s in window.spans.results or []} == {self.fixture["trace_ids"][-1]}
            assert all(isinstance(s, m.GetSpan) for s in window.spans.results or [])
        with self.check("errors: 404 DATASET_NOT_FOUND (unknown slug)"):
            self.expect_error(lambda: d.fetch(dataset_id="no-such-slug"), 404, "DATASET_NOT_FOUND")
        with self.check("errors: 404 DATASET_RECORD_NOT_FOUND"):
            self.expect_error(lambda: d.records.fetch(dataset_record_id=MISSING), 404, "DATASET_RECORD_NOT_FOUND")
        with self.check("errors: 422 VALIDATION_ERROR"):
            self.expect_error(lambda: d.list(page_size=0), 422, "VALIDATION_ERROR")
            self.expect_error(
                lambda: d.fetch_task(dataset_id=self.target.id, task_id="not-a-uuid"), 422, "VALIDATION_ERROR"
            )
        with self.check("errors: unknown route"):
            # The SDK parses the emulator's answer to a path it does not serve as a typed error.
            self.expect_error(lambda: d.fetch(dataset_id=MISSING, server_url=self.url + "/nowhere"), 404, None)

    async def async_twins(self) -> None:
        f = self.fixture
        async with self.Mistral(api_key=self.key, server_url=self.url) as client:
            d = client.beta.observability.datasets
            with self.check("async: datasets.create_async"):
                dataset = await d.create_async(name="Async", description="")
                assert dataset.name == "Async"
            with self.check("async: datasets.import_from_file_async"):
                task = await d.import_from_file_async(dataset_id=dataset.id, file_id=f["file_id"])
                assert task.status == "RUNNING"
            if self.generation != "2":
                with self.check("async: datasets.import_from_spans_async"):
                    references = [{"trace_id": t, "span_id": s} for t, s in f["chat_spans"][:1]]
                    spans_task = await d.import_from_spans_async(
                        dataset_id="async", span_references=references, mapping_contract=MAPPING
                    )
                    assert spans_task.dataset_id == dataset.id
            with self.check("async: datasets.fetch_task_async"):
                fetched = await d.fetch_task_async(dataset_id=dataset.id, task_id=task.id)
                assert fetched.id == task.id and fetched.status == "RUNNING"
            with self.check("async: datasets.records.fetch_async"):
                record = await d.records.fetch_async(dataset_record_id=f["record_ids"][0])
                assert record.id == f["record_ids"][0]
            with self.check("async: spans.search_spans_async"):
                found = await client.beta.observability.spans.search_spans_async(page_size=100)
                assert len(found.spans.results or []) == f["span_count"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--fixture", required=True, help="JSON: the demo world's ids")
    args = parser.parse_args()
    driver = Driver(args.url, args.key, json.loads(args.fixture))
    driver.run()
    json.dump({"sdk": driver.version, "results": driver.results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
