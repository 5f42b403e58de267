"""`dsimport import explorer|spans --filter …`, end to end: a real worker on Redis, the emulator on a socket, both
ledgers.

- `--dry-run` prints what the import would request now (count, first ids, sampled out, requested before,
  duplicates "not checked") and imports nothing: the emulator starts no task, the ledger gets no job;
- the import itself requests exactly the events the emulator holds that match, in chunks, each event once; the same
  command run again requests nothing more, and once a new matching event arrives, that event alone;
- spans are found by a search expression and sampled by ``trace_id:span_id``, as spans-window samples them;
- the commands find the API, the ledger and the broker through a running stack's file, as the other imports do.

The bad combinations (``--filter`` with ``--event``, a search's options without ``--filter``, ...) are in
tests/badinput/test_cli_arguments.py and tests/cli/test_cli_errors.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api_client import DatasetsClient
from cli.main import main
from emulator.testing import EmulatorServer
from store.models import ImportJob, JobStatus
from tests.integration.service import ServiceProcesses
from worker.stack_file import StackRecord, write_stack_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TEAM_A = [f"evt-a-{n:02d}" for n in range(23)]
TEAM_B = [f"evt-b-{n:02d}" for n in range(6)]
OLD_A = ["evt-a-old"]
FILTER = json.dumps({"field": "extra_fields.team", "op": "eq", "value": "a"})
MAPPING = "input=span_attributes:gen_ai.prompt"


def _in_sample(item_id: str, rate: float) -> bool:
    # Written out here rather than imported: the test holds the rule the feature promises.
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:16], 16) / 2**64 < rate


def _event(event_id: str, team: str, age_s: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "created_at_offset_s": -age_s,
        "extra_fields": {"team": team},
        "request_messages": [{"role": "user", "content": event_id}],
        "response_messages": [],
    }


@pytest.fixture
def cli_env(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DSIMPORT_", "MISTRAL_")):
            monkeypatch.delenv(name)
    for name, value in service_env.items():
        if name.startswith(("DSIMPORT_", "MISTRAL_")):
            monkeypatch.setenv(name, value)


def _run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    exit_code = main(list(argv))
    captured = capsys.readouterr()
    assert exit_code == code, captured.err
    return captured.out, captured.err


def _jobs(ledger: sessionmaker[Session]) -> list[ImportJob]:
    with ledger() as session:
        jobs = list(session.scalars(select(ImportJob).order_by(ImportJob.idempotency_key)))
        session.expunge_all()
    return jobs


def _origins(emulator: EmulatorServer, dataset_id: str) -> list[str]:
    return sorted(str(record["origin"]) for record in emulator.inventory([dataset_id])["records"].get(dataset_id, []))


@pytest.mark.usefixtures("cli_env")
def test_dry_run_shows_the_matching_events_then_the_import_takes_each_once_and_a_rerun_nothing_more(
    capsys: pytest.CaptureFixture[str],
    emulator: EmulatorServer,
    api: DatasetsClient,
    ledger: sessionmaker[Session],
    service: ServiceProcesses,
) -> None:
    emulator.seed(
        {"events": [*(_event(e, "a", 30) for e in TEAM_A), *(_event(e, "b", 30) for e in TEAM_B),
                    *(_event(e, "a", 7200) for e in OLD_A)]}
    )  # fmt: skip
    target = api.create_dataset("team a", "filled by a filter").id
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    command = ["import", "explorer", "--dataset", target, "--filter", FILTER, "--since", since, "--chunk-size", "5"]
    tasks_before = emulator.stats(include_tasks=False)["tasks_created"]

    preview = json.loads(_run(capsys, *command, "--dry-run", "--json", "--first", "4")[0])
    assert (preview["offered"], preview["sampled_out"], preview["already_requested"], preview["to_import"]) == (
        len(TEAM_A), 0, 0, len(TEAM_A)
    )  # fmt: skip
    assert preview["duplicates"] is None and preview["chunks"] == 5
    assert len(preview["first_ids"]) == 4 and set(preview["first_ids"]) <= set(TEAM_A)
    assert preview["key"].startswith("filter:explorer:")
    text = _run(capsys, *command, "--dry-run")[0]
    assert "duplicates        not checked (--skip-existing off)" in text
    assert f"would import      {len(TEAM_A)} in 5 job(s) of up to 5" in text
    assert f"ids (first 10 of {len(TEAM_A)}):" in text
    # Nothing was imported or requested.
    assert emulator.stats(include_tasks=False)["tasks_created"] == tasks_before
    assert _jobs(ledger) == []

    out, err = _run(capsys, *command, "--wait")
    job_ids = out.split()
    assert len(job_ids) == 5 and f"requested {len(TEAM_A)} in 5 job(s)" in err
    jobs = _jobs(ledger)
    assert sorted(job.id for job in jobs) == sorted(job_ids)
    assert all(job.status == JobStatus.COMPLETED and job.origin == "cli" for job in jobs)
    assert [job.idempotency_key.rsplit(":", 1)[1] for job in jobs] == ["0", "1", "2", "3", "4"]
    assert _origins(emulator, target) == sorted(f"event:{e}" for e in TEAM_A)

    # The same command again: every event was requested by the first run.
    again = json.loads(_run(capsys, *command, "--dry-run", "--json")[0])
    assert (again["already_requested"], again["earlier_jobs"], again["to_import"]) == (len(TEAM_A), 5, 0)
    out, err = _run(capsys, *command)
    assert out == "" and "nothing to import" in err
    assert len(_jobs(ledger)) == 5

    # A matching event arrives: the same command requests it alone, under the next chunk's key.
    emulator.seed({"events": [_event("evt-a-new", "a", 1)]})
    out, _ = _run(capsys, *command, "--wait")
    (new_job,) = out.split()
    with ledger() as session:
        job = session.get(ImportJob, new_job)
        assert job is not None
        assert job.params["completion_event_ids"] == ["evt-a-new"] and job.idempotency_key.endswith(":5")
    assert _origins(emulator, target) == sorted(f"event:{e}" for e in [*TEAM_A, "evt-a-new"])


@pytest.mark.usefixtures("cli_env")
def test_with_skip_existing_the_dry_run_counts_the_events_the_target_holds_and_the_import_leaves_them_out(
    capsys: pytest.CaptureFixture[str],
    emulator: EmulatorServer,
    api: DatasetsClient,
    ledger: sessionmaker[Session],
    service: ServiceProcesses,
) -> None:
    emulator.seed({"events": [_event(e, "a", 30) for e in TEAM_A]})
    target = api.create_dataset("team a", "holds two of the events").id
    held = TEAM_A[:2]
    for event_id in held:
        api.create_record(target, {"messages": [{"role": "user", "content": event_id}]}, {"event_id": event_id})
    command = ["import", "explorer", "--dataset", target, "--filter", FILTER, "--skip-existing"]

    preview = json.loads(_run(capsys, *command, "--dry-run", "--json")[0])
    assert (preview["offered"], preview["duplicates"], preview["to_import"]) == (len(TEAM_A), 2, len(TEAM_A) - 2)
    assert not set(preview["first_ids"]) & set(held)
    assert "duplicates        2" in _run(capsys, *command, "--dry-run")[0]
    assert _jobs(ledger) == []

    _run(capsys, *command, "--wait")
    jobs = _jobs(ledger)
    assert all(job.skip_existing and job.status == JobStatus.COMPLETED for job in jobs)
    # Each event once: the two written by hand (no origin in the emulator's books), the others imported.
    held_by_target = Counter(str(record.properties["event_id"]) for record in api.iter_records(target))
    assert held_by_target == Counter(dict.fromkeys(TEAM_A, 1))


@pytest.mark.usefixtures("cli_env")
def test_spans_found_by_an_expression_are_sampled_by_trace_and_span_id(
    capsys: pytest.CaptureFixture[str], emulator: EmulatorServer, api: DatasetsClient, ledger: sessionmaker[Session]
) -> None:
    traces = [
        {"trace_id": f"trace-{n:02d}", "service_name": "bot" if n % 4 else "other", "created_at_offset_s": -30,
         "spans": [{"span_id": f"span-{n:02d}-{k}", "offset_ms": 10 * k,
                    "span_attributes": {"gen_ai.prompt": f"q{n}"}} for k in range(2)]}
        for n in range(24)
    ]  # fmt: skip
    emulator.seed({"traces": traces})
    keys = [f"trace-{n:02d}:span-{n:02d}-{k}" for n in range(24) if n % 4 for k in range(2)]
    expected = [key for key in keys if _in_sample(key, 0.5)]
    target = api.create_dataset("spans", "filled by a search").id
    preview = json.loads(
        _run(capsys, "import", "spans", "--dataset", target, "--filter", "service_name = bot", "--map", MAPPING,
             "--sample", "0.5", "--dry-run", "--json", "--first", "100")[0]
    )  # fmt: skip
    assert (preview["offered"], preview["sampled_out"], preview["to_import"]) == (
        len(keys), len(keys) - len(expected), len(expected)
    )  # fmt: skip
    assert sorted(preview["first_ids"]) == sorted(expected)
    assert _jobs(ledger) == []
    # Without a worker the jobs stay PENDING: which spans and mapping they carry is what is checked here.
    out, _ = _run(capsys, "import", "spans", "--dataset", target, "--filter", "service_name = bot", "--map", MAPPING,
                  "--sample", "0.5")  # fmt: skip
    (job_id,) = out.split()
    with ledger() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        refs = [f"{ref['trace_id']}:{ref['span_id']}" for ref in job.params["span_references"]]
        assert sorted(refs) == sorted(expected)
        assert job.params["mapping_contract"]["mappings"][0]["target_field"] == "input"


def test_the_dry_run_reaches_the_api_through_a_running_stack_s_file(
    capsys: pytest.CaptureFixture[str],
    emulator: EmulatorServer,
    api: DatasetsClient,
    database_url: str,
    broker_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second terminal: nothing of dsimport's in the environment but the home, where `dsimport up` left its file.
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DSIMPORT_", "MISTRAL_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("DSIMPORT_HOME", str(home))
    key_file = tmp_path / "emulator-api-key"
    key_file.write_text(emulator.api_key + "\n")
    write_stack_file(
        home,
        StackRecord(pid=os.getpid(), started_at=datetime.now(UTC).isoformat(), broker_url=broker_url,
                    database_url=database_url, api_base_url=emulator.url, api_key_file=str(key_file),
                    jobs_page_url="http://127.0.0.1:1/", flower_url="http://127.0.0.1:1/"),
    )  # fmt: skip
    emulator.seed({"events": [_event(e, "a", 30) for e in TEAM_A[:3]]})
    target = api.create_dataset("via the stack", "").id
    preview = json.loads(
        _run(capsys, "import", "explorer", "--dataset", target, "--filter", FILTER, "--dry-run", "--json")[0]
    )
    assert preview["to_import"] == 3


def _count_jobs(ledger: sessionmaker[Session]) -> int:
    with ledger() as session:
        return int(session.scalar(select(func.count()).select_from(ImportJob)) or 0)


@pytest.mark.usefixtures("cli_env")
def test_a_search_the_api_refuses_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], api: DatasetsClient, ledger: sessionmaker[Session]
) -> None:
    target = api.create_dataset("refused", "").id
    _, err = _run(capsys, "import", "spans", "--dataset", target, "--filter", "service_name = = x", "--map", MAPPING,
                  code=1)  # fmt: skip
    assert err.startswith("dsimport: error: the search failed:") and err.count("\n") == 1, err
    assert _count_jobs(ledger) == 0
