"""Iterators walk every page (1-based), stop on count or an empty page, and stay bounded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api_client import InvalidRequestError, NotFoundError, RetryPolicy

from . import samples as s
from .harness import answer

D = s.DATASET_ID


def paged(key: str, items: list[dict[str, Any]], make_next: bool = True) -> Any:
    """A server that serves ``items`` under ``key`` honouring page and page_size."""

    def handle(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["page_size"])
        chunk = items[(page - 1) * size : page * size]
        more = page * size < len(items)
        body = {"count": len(items), "results": chunk, "next": f"page={page + 1}" if more and make_next else None}
        return httpx.Response(200, json={key: body})

    return handle


def test_iter_datasets_walks_every_page(api: Any) -> None:
    items = [s.dataset(id=f"d{i}") for i in range(5)]
    harness = api(paged("datasets", items))
    got = harness.collect("iter_datasets", q="my", page_size=2)
    assert [d.id for d in got] == ["d0", "d1", "d2", "d3", "d4"]
    targets = [r.url.raw_path.decode() for r in harness.wire.requests]
    assert targets == [f"/v1/observability/datasets?page_size=2&page={n}&q=my" for n in (1, 2, 3)]


def test_a_missing_next_does_not_stop_the_walk_early(api: Any) -> None:
    # The format of next is undefined; some servers may never send it. count is required, so it decides.
    items = [s.task(id=f"t{i}") for i in range(3)]
    harness = api(paged("tasks", items, make_next=False))
    assert [t.id for t in harness.collect("iter_tasks", D, page_size=2)] == ["t0", "t1", "t2"]
    assert len(harness.wire.requests) == 2


def test_iter_records_and_campaign_events(api: Any) -> None:
    records = [s.record(id=f"r{i}") for i in range(3)]
    harness = api(paged("records", records))
    assert [r.id for r in harness.collect("iter_records", D)] == ["r0", "r1", "r2"]
    assert harness.wire.last.url.params["page_size"] == "100"

    events = [s.event_preview(f"e{i}") for i in range(4)]
    harness = api(paged("completion_events", events))
    assert [e.event_id for e in harness.collect("iter_campaign_events", s.CAMPAIGN_ID, page_size=3)] == [
        "e0", "e1", "e2", "e3"
    ]


def test_an_empty_page_ends_the_walk_even_if_count_says_more(api: Any) -> None:
    harness = api(
        answer(200, {"datasets": s.page([s.dataset(id="a")], count=10)}),
        answer(200, {"datasets": {"count": 10, "results": None}}),
    )
    assert [d.id for d in harness.collect("iter_datasets", page_size=1)] == ["a"]
    assert len(harness.wire.requests) == 2


def test_a_server_ignoring_page_cannot_loop_forever(api: Any) -> None:
    harness = api(answer(200, {"datasets": s.page([s.dataset(id="same")], count=3)}))
    assert [d.id for d in harness.collect("iter_datasets", page_size=1)] == ["same", "same", "same"]
    assert len(harness.wire.requests) == 3


def test_an_empty_list_makes_one_request(api: Any) -> None:
    harness = api(answer(200, {"tasks": {"count": 0}}))
    assert harness.collect("iter_tasks", D) == []
    assert len(harness.wire.requests) == 1


@pytest.mark.parametrize("page_size", [0, -1, True])
def test_page_size_must_be_positive(api: Any, page_size: Any) -> None:
    harness = api(answer(200, {"datasets": {"count": 0}}))
    with pytest.raises(InvalidRequestError):
        harness.collect("iter_datasets", page_size=page_size)
    assert harness.wire.requests == []


def test_an_error_mid_walk_is_raised(api: Any) -> None:
    harness = api(
        answer(200, {"datasets": s.page([s.dataset(id="a")], count=2)}),
        answer(404, {"detail": {"message": "gone", "error_code": "DATASET_NOT_FOUND"}}),
        retry=RetryPolicy.none(),
    )
    with pytest.raises(NotFoundError):
        harness.collect("iter_datasets", page_size=1)
