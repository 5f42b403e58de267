"""Sampling window schedules and previewing a fire, against the emulator on a socket, on both ledgers.

- a rate of 0.5 over a known window picks the same items on two schedules (two runs over one window), exactly
  the items whose SHA-256 falls under the rate, computed here independently; the run records the offered and
  sampled-out counts, and `schedules show` / `list` show the rate;
- spans-window samples by ``trace_id:span_id`` the same way;
- `schedules preview` prints what a fire would import now and imports nothing: the emulator starts no task, the
  ledger gets no job and no run;
- a rate outside (0, 1] is refused with one clear line, on the command line and in the schedules file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from emulator.testing import EmulatorServer
from store.models import ImportJob, ScheduleRun
from store.schedules import get_schedule
from triggers.schedules.firing import FireContext, FireOutcome, fire
from triggers.schedules.schedule_file import ScheduleFileError, parse_schedules
from triggers.schedules.specs import InvalidSchedule, build_definition

from .conftest import TARGET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EVENTS = [f"evt-{n:02d}" for n in range(40)]
MAPPING = "input=span_attributes:gen_ai.prompt"


def _in_sample(item_id: str, rate: float) -> bool:
    # Written out here rather than imported: the test holds the rule the feature promises.
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:16], 16) / 2**64 < rate


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, broker_url: str, emulator: EmulatorServer
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", broker_url)
    monkeypatch.setenv("DSIMPORT_API_BASE_URL", emulator.url)
    monkeypatch.setenv("MISTRAL_API_KEY", emulator.api_key)
    monkeypatch.setenv("DSIMPORT_SCHEDULE_SETTLE_LAG_S", "0")
    monkeypatch.delenv("DSIMPORT_SCHEDULES_FILE", raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _context(ledger: sessionmaker[Session], emulator: EmulatorServer) -> FireContext:
    from api_client import DatasetsClient

    return FireContext(
        session_factory=ledger,
        client_factory=lambda: DatasetsClient(emulator.api_key, base_url=emulator.url),
        send=lambda job_id: None,  # the jobs stay PENDING: which items they carry is what is checked
        now=lambda: datetime.now(UTC),
        lease_s=30.0,
        deadline_s=600.0,
        settle_lag_s=0.0,
    )


def _requested(ledger: sessionmaker[Session], job_ids: list[str], field: str) -> list[Any]:
    with ledger() as session:
        return [item for job_id in job_ids for item in session.get(ImportJob, job_id).params[field]]  # type: ignore[union-attr]


def _counts(ledger: sessionmaker[Session]) -> tuple[int, int]:
    with ledger() as session:
        jobs = session.scalar(select(func.count()).select_from(ImportJob))
        runs = session.scalar(select(func.count()).select_from(ScheduleRun))
    return int(jobs or 0), int(runs or 0)


def _seed_events(emulator: EmulatorServer) -> None:
    events = [{"event_id": event_id, "created_at_offset_s": -30} for event_id in EVENTS]
    events.append({"event_id": "before-the-window", "created_at_offset_s": -3600})
    emulator.seed({"events": events})


@pytest.mark.usefixtures("cli_env")
def test_a_half_sample_picks_the_same_events_on_two_runs_and_preview_imports_nothing(
    capsys: pytest.CaptureFixture[str], emulator: EmulatorServer, ledger: sessionmaker[Session]
) -> None:
    _seed_events(emulator)
    expected = [event_id for event_id in EVENTS if _in_sample(event_id, 0.5)]
    assert 12 <= len(expected) <= 28, "near half of 40"
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    for name in ("first", "second"):
        _run(capsys, "schedules", "add", name, "--every", "1h", "--paused", "explorer-window", "--dataset", TARGET,
             "--since", since, "--chunk-size", "7", "--sample", "0.5")  # fmt: skip
    tasks_before = emulator.stats(include_tasks=False)["tasks_created"]

    preview = json.loads(_run(capsys, "schedules", "preview", "first", "--json", "--first", "5"))
    assert preview["sample_rate"] == 0.5
    assert (preview["offered"], preview["sampled_out"], preview["already_imported"], preview["to_import"]) == (
        40, 40 - len(expected), 0, len(expected)
    )  # fmt: skip
    assert len(preview["first_ids"]) == 5 and set(preview["first_ids"]) <= set(expected)
    table = _run(capsys, "schedules", "preview", "first")
    assert f"would import      {len(expected)}" in table and f"sampled out       {40 - len(expected)}" in table
    # Nothing was imported, requested or recorded.
    assert emulator.stats(include_tasks=False)["tasks_created"] == tasks_before
    assert _counts(ledger) == (0, 0)

    context = _context(ledger, emulator)
    picked = {}
    for name in ("first", "second"):
        report = fire(context, name, datetime.now(UTC), trigger="manual")
        assert report.outcome == FireOutcome.SUBMITTED, report.message
        picked[name] = _requested(ledger, report.job_ids, "completion_event_ids")
        assert f"{40 - len(expected)} of 40 sampled out at rate 0.5" in (report.message or "")
    assert sorted(picked["first"]) == sorted(picked["second"]) == sorted(expected)

    shown = json.loads(_run(capsys, "schedules", "show", "first", "--json"))
    assert shown["sample_rate"] == 0.5
    run = shown["runs"][0]
    assert (run["offered"], run["sampled_out"], run["items"]) == (40, 40 - len(expected), len(expected))
    listed = _run(capsys, "schedules", "list")
    line = next(line for line in listed.splitlines() if line.startswith("first "))
    assert " 0.5 " in line
    # Once fired, the preview finds the window covered: nothing more to import.
    again = json.loads(_run(capsys, "schedules", "preview", "first", "--json"))
    assert again["to_import"] == 0


@pytest.mark.usefixtures("cli_env")
def test_spans_are_sampled_by_their_trace_and_span_id(
    capsys: pytest.CaptureFixture[str], emulator: EmulatorServer, ledger: sessionmaker[Session]
) -> None:
    traces = [
        {"trace_id": f"trace-{n:02d}", "created_at_offset_s": -30,
         "spans": [{"span_id": f"span-{n:02d}-{k}", "offset_ms": 10 * k} for k in range(2)]}
        for n in range(20)
    ]  # fmt: skip
    emulator.seed({"traces": traces})
    keys = [f"trace-{n:02d}:span-{n:02d}-{k}" for n in range(20) for k in range(2)]
    expected = sorted(key for key in keys if _in_sample(key, 0.5))
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    for name in ("one", "two"):
        _run(capsys, "schedules", "add", name, "--every", "1h", "--paused", "spans-window", "--dataset", TARGET,
             "--map", MAPPING, "--since", since, "--sample", "0.5")  # fmt: skip

    preview = json.loads(_run(capsys, "schedules", "preview", "one", "--json"))
    assert (preview["offered"], preview["to_import"]) == (40, len(expected))
    assert _counts(ledger) == (0, 0)

    context = _context(ledger, emulator)
    for name in ("one", "two"):
        report = fire(context, name, datetime.now(UTC), trigger="manual")
        refs = _requested(ledger, report.job_ids, "span_references")
        assert sorted(f"{ref['trace_id']}:{ref['span_id']}" for ref in refs) == expected


@pytest.mark.parametrize("rate", ["0", "-0.5", "1.5", "nan", "inf", "half"])
@pytest.mark.usefixtures("cli_env")
def test_a_rate_outside_zero_to_one_is_refused_on_the_command_line(
    capsys: pytest.CaptureFixture[str], ledger: sessionmaker[Session], rate: str
) -> None:
    code = main(["schedules", "add", "bad", "--every", "1h", "explorer-window", "--dataset", TARGET, "--sample", rate])
    err = capsys.readouterr().err
    assert code == 2
    assert "sample" in err and ("greater than 0 and at most 1" in err or "is not a valid float" in err), err
    with ledger() as session:
        assert get_schedule(session, "bad") is None


def test_the_rate_is_kept_from_the_file_and_checked_there() -> None:
    table = f'[schedules.w]\nevery = "1h"\nkind = "explorer-window"\ndataset = "{TARGET}"\nsample = 0.25\n'
    (definition,) = parse_schedules(table)
    assert definition.sample_rate == 0.25
    with pytest.raises(ScheduleFileError, match=r"\[schedules.w\]: sample must be a number greater than 0"):
        parse_schedules(table.replace("0.25", "2"))
    # A rate of 1 is every item: stored as no rate at all.
    assert parse_schedules(table.replace("0.25", "1"))[0].sample_rate is None
    with pytest.raises(InvalidSchedule, match="a dataset-copy schedule does not take sample"):
        build_definition("c", kind="dataset-copy", dataset=TARGET, every="1h",
                         options={"from_dataset": "71a2e42d-7414-4fe6-89cb-44a2122b6f6b", "sample": 0.5})  # fmt: skip


@pytest.mark.usefixtures("cli_env")
def test_only_window_schedules_are_previewed(capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "schedules", "add", "c", "--every", "1h", "campaign", "--dataset", TARGET, "--campaign",
         "8a4b0c8e-5f63-4c1e-9a51-0d3f3c1f7a01")  # fmt: skip
    assert main(["schedules", "preview", "c"]) == 1
    assert "a preview shows what a window schedule" in capsys.readouterr().err
    assert main(["schedules", "preview", "nope"]) == 1
    assert "no schedule named 'nope'" in capsys.readouterr().err
