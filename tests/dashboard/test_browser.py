"""The whole local stack, watched in a real browser.

`dsimport up` starts the emulator, a worker, beat, Flower and the jobs page on Redis database 9; an import is
requested the way a user requests one (`dsimport import campaign`); headless Chromium (the Debian packages, driven
through chromedriver by selenium, nothing downloaded) loads the jobs page, sees the job move to COMPLETED while the
page refreshes itself, opens the job's page, and saves a screenshot to docs/screenshots/jobs-page.png; the two
charts show the import (a COMPLETED bar, a detection lag point), the dataset's name stands beside its id, a search
by job id finds the job, and a click on the dataset opens its page (its jobs only, the charts restricted to it),
saved to docs/screenshots/dataset-page.png. Then Ctrl-C
stops the stack, and nothing it started may be left running.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from cli.local_stack.launcher import free_port
from cli.main import main
from tests.fixtures.chromium import Chromium
from tests.fixtures.redis_db import flushed_redis
from tests.fixtures.up_process import running_up

from ..stack.procs import alive, descendants
from .conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshots" / "jobs-page.png"
DATASET_SCREENSHOT = REPO / "docs" / "screenshots" / "dataset-page.png"
# From the emulator's demo world: the empty "Scratch" dataset and the COMPLETED campaign "Large model answers".
SCRATCH = "dfc79181-2b3e-5846-b7be-6fce76981e9d"
CAMPAIGN = "367af2a3-ca62-5c10-bb37-5e45aa2e6206"


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    home: Path
    env: dict[str, str]
    output: Path
    jobs_url: str
    flower_url: str
    password: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def logs(self) -> str:
        parts = [f"----- up\n{self.output.read_text(errors='replace')}"]
        for path in sorted((self.home / "logs").glob("*.log")):
            parts.append(f"----- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def broker() -> Iterator[str]:
    with flushed_redis(TEST_REDIS_URL) as url:
        yield url


@pytest.fixture
def stack(tmp_path: Path, broker: str) -> Iterator[RunningStack]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSIMPORT_", "MISTRAL_", "FLOWER_"))}
    env.update(
        {
            "DSIMPORT_HOME": str(home),
            "DSIMPORT_BROKER_URL": broker,
            "DSIMPORT_FLOWER_PORT": str(free_port()),
            "DSIMPORT_DASHBOARD_PORT": str(free_port()),
            "DSIMPORT_DASHBOARD_REFRESH_S": "1",
            "DSIMPORT_POLL_TICK_S": "0.5",
            "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.5",
            "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
        }
    )
    output = tmp_path / "up.out"
    with running_up(env, output, cwd=REPO) as process:
        text = output.read_text()
        match = re.search(r"jobs page  (http://127\.0\.0\.1:\d+/)  \(user admin  password (\S+)\)", text)
        assert match is not None, text
        password = (home / "ui-password").read_text().strip()
        assert match.group(2) == password
        flower = re.search(r"flower     (http://127\.0\.0\.1:\d+/)  \(user admin  password ", text)
        assert flower is not None, text
        # The CLI (import, check) reaches the same broker and ledger through the home folder.
        cli_env = {**env, "DSIMPORT_UI_PASSWORD": password}
        yield RunningStack(process, home, cli_env, output, match.group(1), flower.group(1), password)


@pytest.fixture
def browser(tmp_path: Path, chromium: Chromium) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(chromium.driver, log_output=str(tmp_path / "chromedriver.log")), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _status_of(driver: webdriver.Chrome, job_id: str) -> str | None:
    """The status the page shows for ``job_id`` (None until its row is there); tolerant of the page reloading."""
    try:
        rows = driver.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"]')
        return rows[0].get_attribute("data-status") if rows else None
    except (StaleElementReferenceException, WebDriverException):
        return None


def _count(driver: webdriver.Chrome, selector: str) -> int:
    # One script reads the whole answer at once: the page reloads itself every second, an element may go stale.
    return int(driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector))


def _wait_for(driver: webdriver.Chrome, selector: str, what: str, *, at_least: int = 1, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while _count(driver, selector) < at_least:
        assert time.monotonic() < deadline, f"{what}: nothing matches {selector}"
        time.sleep(0.2)


def _charts_and_the_dataset_page(browser: webdriver.Chrome, jobs_url: str, job_id: str) -> None:
    """The two charts show the completed import, the dataset's name stands beside its id, and its own page (found
    by clicking it) shows its jobs and the charts restricted to it."""
    _wait_for(browser, '#chart-finished rect[data-outcome="completed"]', "a COMPLETED bar")
    assert _count(browser, "#chart-finished rect[data-outcome]:not(:has(> title))") == 0  # a tooltip on every bar
    # The lag of the import that completed: the poll saw the remote end, so there is a point on both lines.
    _wait_for(browser, '#chart-lag g[data-series="median"] circle', "a detection lag point")
    _wait_for(browser, '#chart-lag g[data-series="max"] circle', "a detection lag maximum")
    assert _count(browser, "#chart-finished desc") == 1 and _count(browser, "#chart-lag desc") == 1
    # The names come from the API (the emulator's demo world) once the page has asked for them.
    _wait_for(browser, f'tr[data-job-id="{job_id}"] a.dataset .dataset-name', "the dataset's name")
    name = browser.execute_script(
        "return document.querySelector(arguments[0]).textContent", f'tr[data-job-id="{job_id}"] .dataset-name'
    )
    assert name == "Scratch"

    # A search by job id finds that job alone.
    browser.get(jobs_url + f"?q={job_id}")
    _wait_for(browser, f'tr[data-job-id="{job_id}"]', "the job found by its id")
    assert _count(browser, "tr[data-job-id]") == 1

    # Its dataset's page, reached as a user reaches it: by clicking the dataset.
    browser.get(jobs_url)
    _wait_for(browser, f'tr[data-job-id="{job_id}"] a.dataset', "the dataset link")
    deadline = time.monotonic() + 10
    while "/datasets/" not in browser.current_url:
        assert time.monotonic() < deadline, browser.current_url
        with contextlib.suppress(StaleElementReferenceException, WebDriverException):
            browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"] a.dataset').click()
        time.sleep(0.2)
    assert browser.current_url.endswith(f"/datasets/{SCRATCH}")
    _wait_for(browser, f'h1#dataset[data-dataset-id="{SCRATCH}"] .dataset-name', "the dataset page's heading")
    _wait_for(browser, f'tr[data-job-id="{job_id}"]', "the job on its dataset's page")
    datasets = browser.execute_script(
        "return [...document.querySelectorAll('#jobs a.dataset')].map(a => a.dataset.datasetId)"
    )
    assert set(datasets) == {SCRATCH}, datasets  # only this dataset's jobs
    _wait_for(browser, '#chart-finished rect[data-outcome="completed"]', "the dataset's COMPLETED bar")
    desc = browser.execute_script("return document.querySelector('#chart-finished desc').textContent")
    assert "on Scratch" in desc
    assert browser.save_screenshot(str(DATASET_SCREENSHOT))
    assert DATASET_SCREENSHOT.stat().st_size > 10_000


@pytest.mark.timeout(300)
def test_a_job_completes_on_the_jobs_page(
    stack: RunningStack,
    browser: webdriver.Chrome,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = base64.b64encode(f"admin:{stack.password}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    # The page is open before the job exists: it must show the job's progress on its own.
    browser.get(stack.jobs_url)
    assert "dsimport jobs" in browser.title

    requested = stack.cli("import", "campaign", "--dataset", SCRATCH, "--campaign", CAMPAIGN)
    assert requested.returncode == 0, requested.stderr + stack.logs()
    job_id = requested.stdout.strip().splitlines()[-1]
    # A message no one could turn into a job: it must show up as a dead letter.
    stream = redis.Redis.from_url(TEST_REDIS_URL)
    stream.xadd("dsimport:requests", {"body": b'{"kind": "campaign", "dataset_id": "<not a uuid>"}'})
    stream.close()

    seen: list[str] = []
    deadline = time.monotonic() + 90
    while not seen or seen[-1] != "COMPLETED":
        assert time.monotonic() < deadline, f"statuses seen: {seen}\n{stack.logs()}"
        status = _status_of(browser, job_id)
        if status is not None and (not seen or seen[-1] != status):
            seen.append(status)
        time.sleep(0.2)  # no reload from here: the page refreshes itself
    assert seen[0] != "COMPLETED", "the job was never seen before it completed"
    assert seen[-1] == "COMPLETED"

    # The dead letter, and the demo schedule `dsimport up` added.
    deadline = time.monotonic() + 30
    while not browser.find_elements(By.CSS_SELECTOR, "tr[data-dead-letter]"):
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.3)
    assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-schedule="demo-explorer-window"]')

    browser.get(stack.jobs_url + f"jobs/{job_id}")
    history = browser.find_element(By.ID, "events").text
    for status in ("PENDING", "SUBMITTING", "RUNNING", "COMPLETED"):
        assert status in history
    # The campaign selected ten events. The stack's emulator runs with dedupe_imports off (its default): those the
    # demo schedule copied already are imported again, none is skipped.
    counts = re.search(r"(\d+) imported(?:, (\d+) skipped)?", browser.find_element(By.ID, "job").text)
    assert counts is not None and (int(counts.group(1)), int(counts.group(2) or 0)) == (10, 0)

    browser.get(stack.jobs_url)
    deadline = time.monotonic() + 10
    while _status_of(browser, job_id) != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    _charts_and_the_dataset_page(browser, stack.jobs_url, job_id)

    # Flower names the job each task was for (its argument) and how it ended (finalize's result).
    deadline = time.monotonic() + 20
    while True:
        tasks = httpx.get(
            stack.flower_url + "api/tasks", params={"taskname": "dsimport.finalize"}, auth=("admin", stack.password)
        ).json()
        finished = [t for t in tasks.values() if job_id in str(t.get("args")) and t.get("state") == "SUCCESS"]
        if finished:
            break
        assert time.monotonic() < deadline, tasks
        time.sleep(0.5)
    assert f"'job_id': '{job_id}'" in finished[0]["result"] and "'outcome': 'COMPLETED'" in finished[0]["result"]
    assert httpx.get(stack.flower_url + "api/tasks").status_code == 401

    # What the compose health checks run, against the live stack (in this process: a CLI start costs seconds).
    for name, value in stack.env.items():
        if name.startswith("DSIMPORT_"):
            monkeypatch.setenv(name, value)
    for check in (["worker"], ["beat"], ["db"], ["broker"], ["url", stack.jobs_url + "healthz"]):
        assert main(["check", *check]) == 0, f"check {check}: {capsys.readouterr().err}"

    # Logs: structured, the job id on the job's lines, and the API key nowhere.
    key = (stack.home / "emulator-api-key").read_text().strip()
    worker_log = (stack.home / "logs" / "worker.log").read_text()
    for path in (stack.home / "logs").glob("*.log"):
        assert key not in path.read_text(errors="replace"), f"API key in {path.name}"
        assert stack.password not in path.read_text(errors="replace"), f"UI password in {path.name}"
    job_lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{") and job_id in line]
    assert job_lines, worker_log[-3000:]
    assert all(line.get("job_id") == job_id for line in job_lines), job_lines
    finalize = [line for line in job_lines if line.get("task") == "dsimport.finalize"]
    assert finalize, "finalize left no line"

    # Ctrl-C: everything the stack started goes away.
    children = descendants(stack.process.pid)
    assert len(children) >= 6  # emulator, worker and its pool, beat, flower, dashboard (Redis is db 9 here)
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children):
        assert time.monotonic() < deadline, [pid for pid in children if alive(pid)]
        time.sleep(0.1)
    assert "stopped" in stack.output.read_text()
