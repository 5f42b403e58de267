"""Dataset names beside ids: read from the API (the emulator, over a real socket), cached, and never in the way."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from cli.local_stack.launcher import free_port
from dashboard import DashboardConfig, build_app
from dashboard.dataset_names import DatasetNames, api_fetcher
from emulator.testing import EmulatorServer

from .conftest import NOW, PASSWORD, USER, add_job, auth_header
from .server import serve

NAME = "Support <chats> & more"


@pytest.fixture
def named_dataset(api: DatasetsClient) -> str:
    return api.create_dataset(NAME, "for the jobs page").id


def _app(database_url: str, api_url: str, api_key: str) -> DashboardConfig:
    return DashboardConfig(
        database_url=database_url, username=USER, password=PASSWORD, api_base_url=api_url, api_key=api_key
    )


def test_names_are_read_from_the_api_and_shown_beside_ids(
    emulator: EmulatorServer, named_dataset: str, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        job = add_job(session, "named", dataset_id=named_dataset)
        other = add_job(session, "unnamed", dataset_id="ds-not-in-the-api")
        session.commit()
        job_id, other_id = job.id, other.id
    with serve(build_app(_app(database_url, emulator.url, emulator.api_key), now=lambda: NOW)) as client:
        # The first request waits a moment for the names; on a busy machine a later one shows them.
        deadline = time.monotonic() + 10
        while "Support &lt;chats&gt; &amp; more" not in (page := client.get("/", headers=auth_header()).text):
            assert time.monotonic() < deadline, "the names never came"
            time.sleep(0.1)
        assert "<chats>" not in page
        assert "ds-not-in-the-api" in page  # a dataset the API does not know: its id alone
        found = client.get("/", params={"q": "CHATS"}, headers=auth_header()).text  # a part of the name, any case
        assert job_id in found and other_id not in found
        dataset = client.get(f"/datasets/{named_dataset}", headers=auth_header()).text
        assert '<span class="dataset-name">Support &lt;chats&gt; &amp; more</span>' in dataset
        assert "Imports finished on Support &lt;chats&gt; &amp; more" in dataset
        assert "Support &lt;chats&gt;" in client.get(f"/jobs/{job_id}", headers=auth_header()).text


def test_a_wrong_key_shows_ids_alone_and_logs_no_key(caplog: pytest.LogCaptureFixture) -> None:
    with EmulatorServer(api_key="the-right-key") as emulator:
        with DatasetsClient("the-right-key", base_url=emulator.url) as api:
            dataset_id = api.create_dataset(NAME, "").id
        names = DatasetNames(api_fetcher(emulator.url, "not-the-key"), wait_s=5)
        assert names.names() == {}
        assert "not-the-key" not in caplog.text and "cannot list the datasets" in caplog.text
        assert DatasetNames(api_fetcher(emulator.url, "the-right-key"), wait_s=5).names()[dataset_id] == NAME


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An address that accepts connections and never answers: the slowest API there is."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.parametrize("api", ["closed", "silent"])
def test_an_unreachable_api_never_holds_the_page(
    api: str, silent_api: str, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    url = silent_api if api == "silent" else f"http://127.0.0.1:{free_port()}"
    with session_factory() as session:
        job = add_job(session, "k", dataset_id="ds-somewhere")
        session.commit()
        job_id = job.id
    with serve(build_app(_app(database_url, url, "key"), now=lambda: NOW)) as client:
        for _ in range(3):
            started = time.monotonic()
            page = client.get("/", headers=auth_header())
            took = time.monotonic() - started
            assert page.status_code == 200 and job_id in page.text and ">ds-somewhere<" in page.text
            # The API call times out after 2 s; the page waits 0.3 s at most for it, whatever the API does.
            assert took < 1.8, f"the page took {took:.2f} s"


def test_names_are_cached_for_their_ttl_and_a_failure_is_retried_later() -> None:
    calls: list[float] = []
    now = [0.0]
    answers: list[dict[str, str] | Exception] = [{"a": "A"}, RuntimeError("down"), {"a": "A2"}]

    def fetch() -> dict[str, str]:
        calls.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    names = DatasetNames(fetch, ttl_s=60, retry_s=15, wait_s=5, clock=lambda: now[0])
    assert names.names() == {"a": "A"}
    now[0] = 59
    assert names.names() == {"a": "A"} and len(calls) == 1
    now[0] = 61
    assert names.names() == {"a": "A"} and len(calls) == 2  # the failed refresh keeps the names it had
    now[0] = 70
    assert names.names() == {"a": "A"} and len(calls) == 2  # not before retry_s
    now[0] = 77
    assert names.names() == {"a": "A2"} and len(calls) == 3
    assert DatasetNames(None).names() == {}


def test_the_page_without_an_api_shows_ids(client: httpx.Client, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        add_job(session, "plain", dataset_id="ds-plain")
        session.commit()
    assert ">ds-plain<" in client.get("/", headers=auth_header()).text
