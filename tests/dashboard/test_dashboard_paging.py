"""Paging the jobs list by cursor, its filters and its search, over a real ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from dashboard import DashboardConfig, build_app
from dashboard.paging import Cursor, JobFilters, page_query
from store.models import ImportKind, JobStatus
from store.state_machine import apply_transition

from .conftest import NOW, PASSWORD, USER, add_job, auth_header
from .server import serve

PAGE = 10


@pytest.fixture
def paged(database_url: str) -> Iterator[httpx.Client]:
    config = DashboardConfig(database_url=database_url, username=USER, password=PASSWORD, page_size=PAGE)
    with serve(build_app(config, now=lambda: NOW)) as http:
        yield http


def _ids(page: str) -> list[str]:
    return re.findall(r'<tr data-job-id="([^"]+)"', page)


def _link(page: str, name: str) -> str | None:
    match = re.search(rf'id="{name}" href="([^"]+)"', page)
    return None if match is None else html.unescape(match.group(1))


def _fill(sessions: sessionmaker[Session], count: int, *, prefix: str = "job", **kwargs: object) -> list[str]:
    """``count`` jobs, newest first in the returned list; every three share a creation time (ties on the key)."""
    with sessions() as session:
        jobs = [
            add_job(session, f"{prefix}-{i:03d}", created=NOW - timedelta(minutes=60) + timedelta(seconds=i // 3),
                    **kwargs)  # type: ignore[arg-type]
            for i in range(count)
        ]
        session.commit()
        return [job.id for job in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]


def test_pages_older_and_back_without_duplicates_or_gaps_while_jobs_arrive(
    paged: httpx.Client, session_factory: sessionmaker[Session]
) -> None:
    expected = _fill(session_factory, 34)
    first = paged.get("/", headers=auth_header()).text
    assert _ids(first) == expected[:PAGE]
    assert _link(first, "newer") is None
    seen, pages, url = [], [first], _link(first, "older")
    seen.extend(_ids(first))
    arrivals = 0
    while url is not None:
        # Jobs written while the user pages land at the newest end: the older pages neither shift nor repeat.
        with session_factory() as session:
            add_job(session, f"late-{arrivals}", created=NOW + timedelta(seconds=arrivals))
            session.commit()
        arrivals += 1
        page = paged.get(url, headers=auth_header())
        assert page.status_code == 200
        pages.append(page.text)
        seen.extend(_ids(page.text))
        url = _link(page.text, "older")
    assert seen == expected
    assert len(pages) == 4 and len(_ids(pages[-1])) == 4
    # And back: each "newer" link shows the page before it again, until the newest page, late arrivals included.
    back = _link(pages[-1], "newer")
    assert back is not None
    assert _ids(paged.get(back, headers=auth_header()).text) == expected[2 * PAGE : 3 * PAGE]
    before_second = paged.get(_link(pages[1], "newer") or "", headers=auth_header()).text
    assert _ids(before_second) == expected[:PAGE]
    # The jobs that arrived meanwhile are above it: one more step shows the newest page, whole.
    newest = paged.get(_link(before_second, "newer") or "", headers=auth_header()).text
    assert len(_ids(newest)) == PAGE and _link(newest, "newer") is None
    assert _ids(newest)[arrivals:] == expected[: PAGE - arrivals]


def test_page_links_keep_the_filters(paged: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    explorer = _fill(session_factory, 12, prefix="ex", kind=ImportKind.EXPLORER, dataset_id="ds-x")
    _fill(session_factory, 12, prefix="camp")
    first = paged.get("/?kind=explorer&q=ds-x", headers=auth_header()).text
    older = _link(first, "older")
    assert older is not None and "kind=explorer" in older and "q=ds-x" in older
    second = paged.get(older, headers=auth_header()).text
    assert _ids(first) + _ids(second) == explorer
    assert _link(second, "older") is None
    newer = _link(second, "newer")
    assert newer is not None and "kind=explorer" in newer


def test_search_by_job_id_key_prefix_and_dataset(client: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        nightly = [add_job(session, f"nightly-2026-03-0{d}", dataset_id="ds-night") for d in (1, 2)]
        other = add_job(session, "adhoc-1", dataset_id="ds-other")
        session.commit()
        nightly_ids, other_id = [j.id for j in nightly], other.id

    def found(q: str) -> set[str]:
        page = client.get("/", params={"q": q}, headers=auth_header())
        assert page.status_code == 200
        return set(_ids(page.text))

    assert found(other_id) == {other_id}
    assert found("adhoc-1") == {other_id}
    assert found("nightly-") == set(nightly_ids)
    assert found("nightly-2026-03-02") == {nightly_ids[1]}
    assert found("ds-night") == set(nightly_ids)
    assert found("%") == set() and found("_ightly") == set()  # LIKE wildcards are matched as text
    assert found("NIGHTLY-") == set()  # a key is matched as written
    assert found("nightly-2026-03-0") == set(nightly_ids) and found("nightly-2026-03-1") == set()
    assert found("no-such-thing") == set()
    page = client.get("/", params={"q": "nothing"}, headers=auth_header()).text
    assert "no jobs match these filters" in page


@pytest.mark.parametrize(
    "query", ["cursor=not-a-cursor", "cursor=b2xkZXJ8eHw", "hours=0", "hours=abc", "hours=100000", "q=" + "x" * 300]
)
def test_bad_cursor_hours_or_search_is_a_400(client: httpx.Client, query: str) -> None:
    page = client.get("/?" + query, headers=auth_header())
    assert page.status_code == 400
    assert "Bad filter" in page.text


def test_a_cursor_round_trips() -> None:
    cursor = Cursor("older", NOW, "0b7e7c2a-6a4e-4e8e-9d55-1f2a3b4c5d6e")
    assert Cursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode() and "|" not in cursor.encode()


def _plan(engine: Engine, filters: JobFilters, *, sorting: bool = False) -> str:
    cursor = Cursor("older", NOW, "0b7e7c2a-6a4e-4e8e-9d55-1f2a3b4c5d6e")
    query = page_query(filters, cursor, 100, dialect=engine.dialect.name)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            return "\n".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        # On a near-empty table PostgreSQL would rightly scan it: ask whether the index can serve the page at all.
        conn.execute(text("SET enable_seqscan = off"))
        if not sorting:
            conn.execute(text("SET enable_sort = off"))
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        return "\n".join(str(row[0]) for row in conn.execute(text("EXPLAIN " + sql)))


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (JobFilters(), "ix_import_jobs_created_at_id"),
        (JobFilters(status=JobStatus.RUNNING), "ix_import_jobs_status_created_at_id"),
        (JobFilters(dataset_id="ds-1"), "ix_import_jobs_dataset_id_created_at_id"),
    ],
)
def test_a_page_reads_an_index_range_not_a_sorted_table(engine: Engine, filters: JobFilters, index: str) -> None:
    plan = _plan(engine, filters)
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan.upper() and "Sort" not in plan, plan


def test_dataset_page_shows_its_counts_jobs_and_schedules_only(
    client: httpx.Client, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        mine = add_job(session, "mine", dataset_id="ds-mine")
        apply_transition(mine, JobStatus.SUBMITTING, now=NOW)
        apply_transition(mine, JobStatus.REJECTED, now=NOW, message="refused")
        add_job(session, "mine-2", dataset_id="ds-mine")
        theirs = add_job(session, "theirs", dataset_id="ds-theirs")
        session.commit()
        mine_id, theirs_id = mine.id, theirs.id
    page = client.get("/datasets/ds-mine", headers=auth_header())
    assert page.status_code == 200
    assert 'id="dataset" data-dataset-id="ds-mine"' in page.text
    assert mine_id in _ids(page.text) and theirs_id not in page.text
    counts = re.search(r'<div class="counts">.*?</div>', page.text, re.S)
    assert counts is not None and "all<b>2</b>" in counts.group(0) and 'data-status="REJECTED"' in counts.group(0)
    assert _ids(client.get("/datasets/ds-mine?status=REJECTED", headers=auth_header()).text) == [mine_id]
    assert "chart-finished" in page.text and "chart-lag" in page.text
    # The list links each dataset to its page.
    assert 'href="/datasets/ds-theirs"' in client.get("/", headers=auth_header()).text
    assert client.get("/datasets/" + "x" * 65, headers=auth_header()).status_code == 404


def test_a_search_reads_indexes_not_the_table(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        # id, key, key prefix (a range), dataset: each by its index.
        plan = _plan(engine, JobFilters(search="nightly-2026"))
        assert "MULTI-INDEX OR" in plan and "SCAN import_jobs" not in plan, plan
    else:
        # A whole id: equalities only, each with its index (no LIKE, which would read every key); a part of a key
        # is a LIKE prefix.
        plan = _plan(engine, JobFilters(search="0b7e7c2a-6a4e-4e8e-9d55-1f2a3b4c5d6e"), sorting=True)
        assert "~~" not in plan, plan
        assert "~~" in _plan(engine, JobFilters(search="nightly-2026"), sorting=True)
