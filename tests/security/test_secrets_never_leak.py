"""The API key (and the UI and database passwords) never show up anywhere the service writes or serves.

One run of the real service: the emulator started with ``EMULATOR_API_KEY=<marker>`` (so the marker really is the
key every call sends), a worker, beat, Flower and the jobs page, all given ``MISTRAL_API_KEY=<marker>`` as compose
gives them, on Redis database 10 and a PostgreSQL ledger of the test's own that lets in only the password marker
(so every process really uses it). Through the command line, as users do: imports that complete (one after a
429), one the API refuses (a 404: REJECTED), one the API keeps failing (503s: FAILED), one whose command fails on
an API error, a queue message, a refused message, a schedule fired now, and polls that meet 502s. Then every
place is searched for the markers, raw and base64-encoded: every log file, every row of every ledger table,
every Redis key, Flower's pages and API (task arguments and results, worker configuration), the jobs page (list
and each job), the command line's outputs (jobs list/show --json included), the errors recorded on jobs, and the
command lines of every process.

A second test checks, on the same Flower, that its UI and API refuse requests without the login and that its
/metrics and /healthcheck reveal no job data.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.exc import OperationalError

from cli.local_stack.launcher import free_port
from cli.main import main
from jobs import metrics
from store.db import make_engine, make_session_factory, upgrade
from store.models import ImportJob, JobStatus
from tests.fixtures.redis_db import flushed_redis
from tests.fixtures.servers import postgres_server
from tests.integration.service import REPO, ServiceProcesses, wait_for_jobs

from ..stack.procs import descendants
from .conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KEY = f"sk-LEAKMARK-{uuid.uuid4().hex}"
UI_PASSWORD = f"ui-LEAKMARK-{uuid.uuid4().hex}"
DB_PASSWORD = f"db-LEAKMARK-{uuid.uuid4().hex}"
UI_USER = "watcher"
# From the emulator's demo world.
SCRATCH = "dfc79181-2b3e-5846-b7be-6fce76981e9d"
CAMPAIGN = "367af2a3-ca62-5c10-bb37-5e45aa2e6206"  # COMPLETED, ten events
CONVERSATION = "conv_78e391cdd6575581aea443970bde55ac"
MISSING = "00000000-0000-4000-8000-00000000dead"
_OURS = ("DSIMPORT_", "MISTRAL_", "FLOWER_", "EMULATOR_")
EVENTS = ["4b06fc62-9157-5220-9840-9665faec0ae4", "cddc2760-60f2-5de2-ae15-4aa963776c39"]


def encodings(secret: str) -> list[bytes]:
    """The secret as bytes, and the part of its base64 that is the same whatever precedes it."""
    raw = secret.encode()
    forms = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.append(encoded[4 if shift else 0 : -4])
    return forms


@dataclass
class Run:
    """What the service run left behind."""

    base: Path
    env: dict[str, str]
    database_url: str
    secrets: list[str]
    flower_url: str
    jobs_url: str
    service: ServiceProcesses
    emulator: subprocess.Popen[bytes]
    job_ids: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`dsimport ARGS` in this process (as tests/cli does), with the service's environment."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(_OURS):
                    patch.delenv(name)
            for name, value in self.env.items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

    def logs(self) -> str:
        return self.service.logs() + "\n" + (self.base / "logs" / "emulator.log").read_text(errors="replace")[-3000:]


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ledger_url() -> Iterator[str]:
    # A PostgreSQL cluster of the test's own that lets in only a client with the marker password: every process
    # that reaches the ledger provably holds the marker (a SQLite ledger, or a server that trusts any password,
    # would let the test pass with the marker never used).
    with postgres_server(password=DB_PASSWORD) as server:
        wrong = create_engine(server.url.replace(f":{DB_PASSWORD}@", ":not-the-marker@"))
        with pytest.raises(OperationalError, match="password authentication failed"):
            wrong.connect().close()
        wrong.dispose()
        yield server.url


@pytest.fixture(scope="module")
def run(ledger_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("leak")
    logs = base / "logs"
    logs.mkdir()
    with flushed_redis(TEST_REDIS_URL) as broker_url:
        upgrade(ledger_url)
        emulator_port, flower_port, jobs_port = free_port(), free_port(), free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
        emulator_log = (logs / "emulator.log").open("wb")
        emulator = subprocess.Popen(
            [sys.executable, "-m", "cli", "emulator", "--port", str(emulator_port), "--seed", "demo",
             "--task-duration", "0.4", "--log-level", "info"],
            env={**clean, "EMULATOR_API_KEY": KEY},
            cwd=REPO, stdout=emulator_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        emulator_log.close()
        env = {
            **clean,
            "DSIMPORT_HOME": str(base / "home"),
            "DSIMPORT_DATABASE_URL": ledger_url,
            "DSIMPORT_BROKER_URL": broker_url,
            "DSIMPORT_API_BASE_URL": f"http://127.0.0.1:{emulator_port}",
            "MISTRAL_API_KEY": KEY,
            "DSIMPORT_UI_USER": UI_USER,
            "DSIMPORT_UI_PASSWORD": UI_PASSWORD,
            "DSIMPORT_LOG_LEVEL": "DEBUG",
            "DSIMPORT_POLL_TICK_S": "0.5",
            "DSIMPORT_POLL_INITIAL_INTERVAL_S": "0.3",
            "DSIMPORT_POLL_MAX_INTERVAL_S": "1",
            "DSIMPORT_SUBMIT_MAX_RETRIES": "1",
            "DSIMPORT_SUBMIT_RETRY_BACKOFF_S": "0.2",
            "DSIMPORT_RECOVERY_INTERVAL_S": "1",
            # Every 503 on the explorer import is ambiguous: recovery looks for its task once the lease is over,
            # then gives up after the retries. A short lease (and API calls that fit in it) keeps that quick.
            "DSIMPORT_LEASE_S": "5",
            "DSIMPORT_API_TIMEOUT_S": "2",
            "DSIMPORT_API_MAX_ATTEMPTS": "2",
            "DSIMPORT_STREAM_BLOCK_S": "0.5",
        }
        (base / "home").mkdir()
        service = ServiceProcesses(env, logs)
        run = Run(
            base, env, ledger_url, [KEY, UI_PASSWORD, DB_PASSWORD], f"http://127.0.0.1:{flower_port}/",
            f"http://127.0.0.1:{jobs_port}/", service, emulator,
        )  # fmt: skip
        try:
            service.start_worker("worker")
            service.start_beat()
            flower = service.start("flower", "flower", "--port", str(flower_port))
            jobs_page = service.start("dashboard", "dashboard", "--port", str(jobs_port))
            _wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/health", emulator, logs / "emulator.log")
            _wait_http(run.flower_url + "healthcheck", flower, logs / "flower.log")
            _wait_http(run.jobs_url + "healthz", jobs_page, logs / "dashboard.log")
            _exercise(run, emulator_port, broker_url)
            yield run
        finally:
            service.stop()
            _stop(emulator)
            metrics.install(None)  # the in-process commands pointed this process's metrics at database 10


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _exercise(run: Run, emulator_port: int, broker_url: str) -> None:
    """Imports of every outcome, requested through the command line; returns once every job has ended."""
    faults = {
        "import_from_file": {"status": 429, "next": 1, "retry_after_s": 0.3},  # completes on the second try
        "import_from_explorer": {"status": 503, "next": 10},  # never accepted: recovery finds no task, then FAILED
        "fetch_task": {"status": 502, "next": 2},
        "list_tasks": {"status": 502, "next": 2},
    }
    httpx.post(f"http://127.0.0.1:{emulator_port}/_emulator/config", json={"faults": faults}).raise_for_status()
    (run.base / "events.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n"
    )
    calls = {
        "campaign": ["import", "campaign", "--dataset", SCRATCH, "--campaign", CAMPAIGN],
        "file": ["import", "file", "--dataset", SCRATCH, "--path", str(run.base / "events.jsonl")],
        "explorer": ["import", "explorer", "--dataset", SCRATCH, *[a for e in EVENTS for a in ("--event", e)]],
        "missing campaign": ["import", "campaign", "--dataset", SCRATCH, "--campaign", MISSING],
        "message": ["messages", "send", "playground", "--dataset", SCRATCH, "--conversation", CONVERSATION],
        "schedule": ["schedules", "add", "leak-check", "--every", "1h", "campaign", "--dataset", SCRATCH,
                     "--campaign", CAMPAIGN],
    }  # fmt: skip
    for name, argv in calls.items():
        done = run.cli(*argv)
        run.outputs[f"cli {name}"] = done.stdout + done.stderr
        assert done.returncode == 0, f"{name}: {done.stderr}"
        if name not in ("schedule", "message"):
            run.job_ids[name] = done.stdout.strip().splitlines()[-1]
    fired = run.cli("schedules", "run-now", "leak-check")
    run.outputs["cli schedules run-now"] = fired.stdout + fired.stderr
    assert fired.returncode == 0, fired.stderr
    # An import whose command itself meets an API error (the source dataset does not exist).
    failed = run.cli("import", "dataset", "--dataset", SCRATCH, "--from-dataset", MISSING)
    run.outputs["cli import dataset from a missing dataset"] = failed.stdout + failed.stderr
    assert failed.returncode == 1 and "cannot list the records of" in failed.stderr and failed.stderr.count("\n") == 1
    # A message no one can turn into a job.
    client = redis.Redis.from_url(broker_url)
    client.xadd("dsimport:requests", {"body": b'{"id": "leak-bad", "kind": "teleport"}'})
    client.close()

    engine = make_engine(run.database_url)
    sessions = make_session_factory(engine)
    try:
        deadline = time.monotonic() + 120
        while True:
            with sessions() as session:
                count = len(list(session.scalars(select(ImportJob.id))))
            if count >= 6:
                break
            assert time.monotonic() < deadline, f"{count} jobs of 6\n{run.logs()}"
            time.sleep(0.3)
        with sessions() as session:
            all_ids = list(session.scalars(select(ImportJob.id)))
        jobs = wait_for_jobs(sessions, all_ids, timeout_s=120, on_timeout=run.logs)
    finally:
        engine.dispose()
    statuses = {name: jobs[job_id].status for name, job_id in run.job_ids.items()}
    assert statuses == {
        "campaign": JobStatus.COMPLETED,
        "file": JobStatus.COMPLETED,
        "explorer": JobStatus.FAILED,
        "missing campaign": JobStatus.REJECTED,
    }, run.logs()
    others = {job.origin: str(job.status) for job in jobs.values() if job.id not in run.job_ids.values()}
    assert sorted(others.values()) == ["COMPLETED", "COMPLETED"], others  # the message's, the schedule's
    for name in ("explorer", "missing campaign"):
        job = jobs[run.job_ids[name]]
        assert job.last_error, f"{name} has no recorded error"
        run.outputs[f"error of {name}"] = f"{job.message} {job.last_error} {job.error_code}"
    run.job_ids.update({f"job {n}": job_id for n, job_id in enumerate(all_ids)})
    _wait_for_flower_to_see(run, all_ids)


def _wait_for_flower_to_see(run: Run, job_ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        tasks = httpx.get(run.flower_url + "api/tasks", auth=(UI_USER, UI_PASSWORD), timeout=10).json()
        seen = " ".join(str(task.get("args")) for task in tasks.values())
        if all(job_id in seen for job_id in job_ids):
            return
        assert time.monotonic() < deadline, f"Flower saw tasks for {seen[:500]}, not all of {job_ids}"
        time.sleep(0.5)


def _leaks(run: Run, text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return [secret[:14] for secret in run.secrets if any(form in data for form in encodings(secret))]


def _assert_clean(run: Run, where: str, text: str | bytes) -> None:
    found = _leaks(run, text)
    assert not found, f"{', '.join(found)} found in {where}"


# --- the searches ---------------------------------------------------------------------------------------------------


def test_the_markers_are_what_the_run_used(run: Run) -> None:
    # The emulator refuses any other token, so the jobs above could only complete with the marker as the key.
    datasets = run.env["DSIMPORT_API_BASE_URL"] + "/v1/observability/datasets"
    answer = httpx.get(datasets, headers={"Authorization": "Bearer x"})
    assert answer.status_code == 401
    assert _leaks(run, f"... {KEY} ...") and _leaks(run, base64.b64encode(f"{UI_USER}:{UI_PASSWORD}".encode()))


def test_no_log_line_holds_a_secret(run: Run) -> None:
    files = sorted((run.base / "logs").glob("*.log"))
    assert {path.stem for path in files} >= {"worker", "beat", "flower", "dashboard", "emulator"}
    worker_log = (run.base / "logs" / "worker.log").read_text(errors="replace")
    assert run.job_ids["campaign"] in worker_log and "DEBUG" in worker_log  # debug lines, about these jobs
    for path in files:
        _assert_clean(run, f"log {path.name}", path.read_bytes())
    for name, text in run.outputs.items():
        _assert_clean(run, f"output of {name}", text)


def test_no_row_of_the_ledger_holds_a_secret(run: Run) -> None:
    engine = create_engine(run.database_url) if run.database_url.startswith("sqlite") else make_engine(run.database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    dumped = []
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                dumped.append(f"{table.name}: {len(rows)} rows\n" + "\n".join(repr(tuple(row)) for row in rows))
    finally:
        engine.dispose()
    dump = "\n".join(dumped)
    assert {"import_jobs", "job_events", "dead_letters", "schedules", "schedule_runs"} <= set(metadata.tables)
    assert run.job_ids["explorer"] in dump and "teleport" in dump  # the failed job, the dead letter
    _assert_clean(run, "the ledger", dump)


def test_no_redis_key_holds_a_secret(run: Run) -> None:
    client = redis.Redis.from_url(run.env["DSIMPORT_BROKER_URL"])
    dumped: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            value: Any
            if kind == b"string":
                value = client.get(key)
            elif kind == b"list":
                value = client.lrange(key, 0, -1)
            elif kind == b"hash":
                value = client.hgetall(key)
            elif kind == b"set":
                value = client.smembers(key)
            elif kind == b"zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = client.xrange(key)
            dumped.append(key + b"=" + repr(value).encode())
    finally:
        client.close()
    assert any(b"dsimport:requests" in entry for entry in dumped)
    _assert_clean(run, "Redis", b"\n".join(dumped))


def test_flower_shows_no_secret(run: Run) -> None:
    auth = (UI_USER, UI_PASSWORD)
    tasks = httpx.get(run.flower_url + "api/tasks", auth=auth, timeout=10).json()
    assert tasks and all("args" in task and "result" in task for task in tasks.values())
    pages = {"api/tasks": json.dumps(tasks)}
    workers = httpx.get(run.flower_url + "api/workers", params={"refresh": "1"}, auth=auth, timeout=30)
    assert workers.status_code == 200 and workers.json()
    pages["api/workers"] = workers.text
    names = list(workers.json())
    paths = ["", "tasks", "workers", "broker", "metrics", "healthcheck", "api/queues/length",
             *[f"worker/{name}" for name in names]]  # fmt: skip
    for task_id in list(tasks)[:20]:
        paths += [f"task/{task_id}", f"api/task/info/{task_id}"]
    for path in paths:
        answer = httpx.get(run.flower_url + path, auth=auth, timeout=30)
        assert answer.status_code == 200, f"{path}: {answer.status_code}"
        pages[path] = answer.text
    # The worker's configuration is on show (Flower asks each worker for it): it is where a secret would hide.
    assert "dsimport_settings" in pages["api/workers"]
    for path, text in pages.items():
        _assert_clean(run, f"Flower /{path}", text)


def test_the_jobs_page_and_the_command_line_show_no_secret(run: Run) -> None:
    auth = (UI_USER, UI_PASSWORD)
    pages = {"/": httpx.get(run.jobs_url, auth=auth).text, "/metrics": httpx.get(run.jobs_url + "metrics").text}
    pages["/healthz"] = httpx.get(run.jobs_url + "healthz").text
    for job_id in set(run.job_ids.values()):
        page = httpx.get(run.jobs_url + f"jobs/{job_id}", auth=auth)
        assert page.status_code == 200
        pages[f"/jobs/{job_id}"] = page.text
    # The explorer import never got past its 503s: recovery found no task and gave up after the retries.
    assert "gave up after" in pages[f"/jobs/{run.job_ids['explorer']}"]
    for path, text in pages.items():
        _assert_clean(run, f"the jobs page {path}", text)
    commands = [["jobs", "list", "--json"], ["jobs", "list"], ["messages", "dead-letters", "--json"],
                ["schedules", "list", "--json"], ["schedules", "show", "leak-check", "--json"], ["messages", "stats"],
                ["db", "current"], ["check", "db"], ["check", "broker"], ["check", "url", run.jobs_url + "healthz"],
                *[["jobs", "show", job_id, "--json"] for job_id in set(run.job_ids.values())]]  # fmt: skip
    outputs = {}
    for argv in commands:
        done = run.cli(*argv)
        assert done.returncode == 0, f"{argv}: {done.stderr}"
        outputs[" ".join(argv)] = done.stdout + done.stderr
    listed = json.loads(outputs["jobs list --json"])
    assert {row["status"] for row in listed} == {"COMPLETED", "FAILED", "REJECTED"}
    assert any(row["last_error"] for row in listed)
    for command, text in outputs.items():
        _assert_clean(run, f"dsimport {command}", text)


def test_no_process_has_a_secret_on_its_command_line(run: Run) -> None:
    pids = {run.emulator.pid} | {process.pid for _, process in run.service.processes}
    for pid in list(pids):
        pids |= descendants(pid)
    assert len(pids) >= 6
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        _assert_clean(run, f"the command line of process {pid}", cmdline)


# --- Flower's login ---------------------------------------------------------------------------------------------


def test_flower_refuses_requests_without_the_login(run: Run) -> None:
    auth = (UI_USER, UI_PASSWORD)
    tasks = httpx.get(run.flower_url + "api/tasks", auth=auth, timeout=10).json()
    task_id = next(iter(tasks))
    worker_name = next(iter(httpx.get(run.flower_url + "api/workers", auth=auth, timeout=30).json()))
    gets = ["", "tasks", "api/tasks", "api/workers", f"task/{task_id}", "workers", "broker",
            f"worker/{worker_name}", f"api/task/info/{task_id}", f"api/task/result/{task_id}", "api/queues/length",
            "tasks/datatable"]  # fmt: skip
    posts = ["api/task/async-apply/dsimport.submit", f"api/task/revoke/{task_id}", f"api/worker/shutdown/{worker_name}",
             f"api/worker/pool/restart/{worker_name}"]  # fmt: skip
    wrong = [None, (UI_USER, "wrong"), ("admin", UI_PASSWORD), (UI_USER, UI_PASSWORD + "x")]
    for login in wrong:
        for path in gets:
            answer = httpx.get(run.flower_url + path, auth=login, timeout=10)
            assert answer.status_code == 401, f"GET /{path} with {login}: {answer.status_code}"
            assert task_id not in answer.text
        for path in posts:
            answer = httpx.post(run.flower_url + path, auth=login, json={"args": ["x"]}, timeout=10)
            assert answer.status_code == 401, f"POST /{path} with {login}: {answer.status_code}"
    # Flower 2 has no /dashboard any more (the workers page replaced it): no page, with or without the login.
    for login in (None, auth):
        answer = httpx.get(run.flower_url + "dashboard", auth=login, timeout=10)
        assert answer.status_code in (401, 404) and task_id not in answer.text
    # The worker is still there: nothing above reached it.
    assert worker_name in httpx.get(run.flower_url + "api/workers", auth=auth, timeout=30).json()


def test_flower_metrics_and_healthcheck_reveal_no_job_data(run: Run) -> None:
    tasks = httpx.get(run.flower_url + "api/tasks", auth=(UI_USER, UI_PASSWORD), timeout=10).json()
    private = [*run.job_ids.values(), *tasks, SCRATCH, CAMPAIGN, CONVERSATION]
    for path in ("metrics", "healthcheck"):
        answer = httpx.get(run.flower_url + path, timeout=10)
        assert answer.status_code == 200, path
        for value in private:
            assert value not in answer.text, f"{value} on Flower's /{path}"
        _assert_clean(run, f"Flower /{path}", answer.text)
    assert "flower_events_total" in httpx.get(run.flower_url + "metrics", timeout=10).text
