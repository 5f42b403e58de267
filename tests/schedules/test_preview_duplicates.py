"""`schedules preview` counts the items the target dataset holds already (what the fire's jobs would leave out), on
both ledgers, against the emulator on a socket: a record that names an event in its properties makes that event a
duplicate; a schedule made with `--no-skip-existing` says it does not check.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api_client import DatasetsClient
from cli.main import main
from emulator.testing import EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

EVENTS = [f"evt-{n:02d}" for n in range(10)]


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


@pytest.mark.usefixtures("cli_env")
def test_preview_counts_the_events_the_target_holds_and_lists_only_the_others(
    capsys: pytest.CaptureFixture[str], emulator: EmulatorServer, api: DatasetsClient
) -> None:
    emulator.seed({"events": [{"event_id": event_id, "created_at_offset_s": -30} for event_id in EVENTS]})
    target = api.create_dataset("target", "holds two of the events")
    for event_id in ("evt-03", "evt-07"):
        api.create_record(target.id, {"messages": [{"role": "user", "content": event_id}]}, {"event_id": event_id})
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    _run(capsys, "schedules", "add", "checked", "--every", "1h", "--paused", "explorer-window", "--dataset", target.id,
         "--since", since)  # fmt: skip
    _run(capsys, "schedules", "add", "unchecked", "--every", "1h", "--paused", "--no-skip-existing",
         "explorer-window", "--dataset", target.id, "--since", since)  # fmt: skip
    tasks_before = emulator.stats(include_tasks=False)["tasks_created"]

    checked = json.loads(_run(capsys, "schedules", "preview", "checked", "--json", "--first", "20"))
    assert (checked["offered"], checked["duplicates"], checked["to_import"]) == (10, 2, 8)
    assert sorted(checked["first_ids"]) == [e for e in EVENTS if e not in ("evt-03", "evt-07")]
    assert "duplicates        2" in _run(capsys, "schedules", "preview", "checked")

    unchecked = json.loads(_run(capsys, "schedules", "preview", "unchecked", "--json"))
    assert (unchecked["duplicates"], unchecked["to_import"]) == (None, 10)
    assert "not checked (skip_existing off)" in _run(capsys, "schedules", "preview", "unchecked")
    assert json.loads(_run(capsys, "schedules", "show", "unchecked", "--json"))["skip_existing"] is False
    assert emulator.stats(include_tasks=False)["tasks_created"] == tasks_before, "a preview imports nothing"
