"""`dsimport schedules`, invoked as users do: add, list, show, pause, resume, remove, run-now, sync (both ledgers)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from cli.main import main
from store.models import ImportJob, JobStatus
from store.schedules import get_schedule
from triggers.schedules.firing import fire

from .conftest import CAMPAIGN, NOW, SOURCE, TARGET, Harness, at
from .test_definitions import EXAMPLE


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, broker_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", broker_url)
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.delenv("DSIMPORT_SCHEDULES_FILE", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def test_add_every_kind_then_list(capsys: pytest.CaptureFixture[str]) -> None:
    adds = [
        ["hourly", "--every", "1h", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN],
        ["events", "--cron", "0 * * * *", "explorer", "--dataset", TARGET, "--event", "e1", "--event", "e2"],
        ["file", "--every", "1d", "file", "--dataset", TARGET, "--file-id", "file-1"],
        ["chats", "--every", "1d", "playground", "--dataset", TARGET, "--conversation", "conv_1"],
        ["records", "--every", "1d", "dataset", "--dataset", TARGET, "--record", SOURCE],
        ["window", "--every", "10m", "explorer-window", "--dataset", TARGET, "--chunk-size", "50",
         "--filter", '{"field": "extra_fields.team", "op": "eq", "value": "support"}',
         "--since", "2026-01-01T00:00:00Z"],
        ["late", "--every", "5m", "campaign-when-done", "--dataset", TARGET, "--campaign", CAMPAIGN],
        ["mirror", "--paused", "--every", "1h", "dataset-copy", "--dataset", TARGET, "--from-dataset", SOURCE],
    ]  # fmt: skip
    for argv in adds:
        code, out, err = run(capsys, "schedules", "add", *argv)
        assert code == 0, err
        assert out.startswith(f"{argv[0]}: ")
    rows = {row["name"]: row for row in run_json(capsys, "schedules", "list", "--json")}
    assert {name: row["kind"] for name, row in rows.items()} == {
        "hourly": "campaign", "events": "explorer", "file": "file", "chats": "playground", "records": "dataset",
        "window": "explorer-window", "late": "campaign-when-done", "mirror": "dataset-copy",
    }  # fmt: skip
    assert rows["window"]["params"] == {
        "filter": {"field": "extra_fields.team", "op": "eq", "value": "support"},
        "chunk_size": 50,
    }
    assert rows["window"]["watermark"] == "2026-01-01T00:00:00Z"
    assert rows["mirror"]["state"] == "paused" and rows["mirror"]["next_fire_at"] is None
    assert rows["hourly"]["timing"] == "every 1h" and rows["hourly"]["next_fire_at"].endswith(":00:00Z")
    assert rows["events"]["timing"] == "cron 0 * * * *"
    code, out, _ = run(capsys, "schedules", "list")
    assert code == 0 and out.splitlines()[0].startswith("NAME") and len(out.splitlines()) == 9


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["x", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN], "give exactly one of --cron and --every"),
        (["x", "--every", "1m", "--cron", "* * * * *", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN],
         "give exactly one of --cron and --every"),
        (["x", "--every", "fortnight", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN], "cannot read period"),
        (["x", "--cron", "* *", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN], "needs 5 fields"),
        (["x", "--every", "1m", "campaign", "--dataset", "No pe", "--campaign", CAMPAIGN],
         "'No pe' is not a dataset UUID or slug"),
        (["x", "--every", "1m", "teleport"], "No such command 'teleport'"),
        (["x", "--every", "1m"], "Missing command"),
        (["x y", "--every", "1m", "file", "--dataset", TARGET, "--file-id", "f"], "schedule name 'x y'"),
        (["x", "--every", "1m", "dataset", "--dataset", TARGET, "--from-dataset", SOURCE], "use kind dataset-copy"),
        (["x", "--every", "1m", "dataset", "--dataset", TARGET], "give --record"),
        (["x", "--every", "1m", "explorer-window", "--dataset", TARGET, "--filter", "{"], "not valid JSON"),
        (["x", "--every", "1m", "explorer-window", "--dataset", TARGET, "--filter", '{"a": 1}'], "got keys ['a']"),
        (["x", "--every", "1m", "explorer-window", "--dataset", TARGET, "--chunk-size", "0"], "0 is not in the range"),
        (["x", "--every", "1m", "explorer-window", "--dataset", TARGET, "--since", "soon"], "since 'soon'"),
        (["x", "--every", "1m", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN, "--bogus"], "No such option"),
        (["x", "--every", "1m", "spans-window", "--dataset", TARGET], "Missing option '--map'"),
        (["x", "--every", "1m", "spans-window", "--dataset", TARGET, "--map", "in=attrs:k"],
         "mapping.mappings[0].source_field.namespace"),
        (["x", "--every", "1m", "spans", "--dataset", TARGET, "--span", "t", "--map", "in=span_attributes:k"],
         "expected TRACE_ID:SPAN_ID"),
    ],
)  # fmt: skip
def test_bad_definitions_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, _, err = run(capsys, "schedules", "add", *argv)
    assert code == 2
    assert expected in err
    assert err.strip().count("\n") == 0, err
    assert "Traceback" not in err


def test_spans_schedules_are_added_with_their_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["traces", "--every", "10m", "spans-window", "--dataset", TARGET, "--search", "service_name = 'bot'",
         "--map", "input=span_attributes:gen_ai.prompt", "--chunk-size", "50", "--since", "2026-01-01T00:00:00Z"],
        ["same-spans", "--every", "1h", "spans", "--dataset", TARGET, "--span", "t1:s1", "--span", "t1:s1",
         "--map", "input=span_attributes:gen_ai.prompt"],
    ):  # fmt: skip
        code, _, err = run(capsys, "schedules", "add", *argv)
        assert code == 0, err
    rows = {row["name"]: row for row in run_json(capsys, "schedules", "list", "--json")}
    mapping = {"target_field": "input", "source_field": {"namespace": "span_attributes", "key": "gen_ai.prompt"}}
    contract = {"mappings": [mapping], "version": 1}
    assert rows["traces"]["kind"] == "spans-window" and rows["traces"]["watermark"] == "2026-01-01T00:00:00Z"
    assert rows["traces"]["params"] == {
        "search": "service_name = 'bot'", "mapping_contract": contract, "chunk_size": 50
    }
    assert rows["same-spans"]["kind"] == "spans"
    assert rows["same-spans"]["params"] == {
        "span_references": [{"trace_id": "t1", "span_id": "s1"}],
        "mapping_contract": contract,
    }


def test_a_kind_shows_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schedules", "add", "x", "--every", "1m", "explorer-window", "--help")
    assert code == 0
    assert "--chunk-size" in out and "--filter" in out


def test_show_pause_resume_remove(capsys: pytest.CaptureFixture[str], harness: Harness) -> None:
    assert run(capsys, "schedules", "add", "hourly", "--every", "1h", "campaign", "--dataset", TARGET,
               "--campaign", CAMPAIGN)[0] == 0  # fmt: skip
    harness.clock.now = at(3601)
    fire(harness.context, "hourly", at(3600))
    shown = run_json(capsys, "schedules", "show", "hourly", "--json")
    assert shown["last_fire_at"] == "2026-03-01T13:00:00Z"
    [last] = shown["runs"]
    assert last["status"] == "SUBMITTED" and last["fire_time"] == "2026-03-01T13:00:00Z"
    assert [job["status"] for job in last["jobs"]] == ["PENDING"]
    assert shown["last_run"] == last

    code, out, _ = run(capsys, "schedules", "show", "hourly")
    assert code == 0 and "2026-03-01T13:00:00Z  SUBMITTED  beat" in out and "PENDING" in out

    assert run(capsys, "schedules", "pause", "hourly")[1] == "hourly: paused\n"
    assert run_json(capsys, "schedules", "show", "hourly", "--json")["state"] == "paused"
    assert run(capsys, "schedules", "resume", "hourly")[1] == "hourly: resumed\n"
    assert run_json(capsys, "schedules", "show", "hourly", "--json")["state"] == "active"
    assert run(capsys, "schedules", "remove", "hourly")[1] == "hourly: removed (history kept; --forget deletes it)\n"
    # Removed, not forgotten: its history is still shown, and it is gone from the list.
    removed = run_json(capsys, "schedules", "show", "hourly", "--json")
    assert removed["state"] == "removed" and [run["status"] for run in removed["runs"]] == ["SUBMITTED"]
    assert run_json(capsys, "schedules", "list", "--json") == []
    for command in ("pause", "resume", "remove", "run-now"):
        assert run(capsys, "schedules", command, "hourly")[0] == 1
    assert run(capsys, "schedules", "remove", "hourly", "--forget")[1] == "hourly: removed and forgotten\n"
    code, _, err = run(capsys, "schedules", "show", "hourly")
    assert (code, err.strip()) == (1, "dsimport: error: no schedule named 'hourly'")


def test_a_name_is_used_once(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["schedules", "add", "x", "--every", "1h", "campaign", "--dataset", TARGET, "--campaign", CAMPAIGN]
    assert run(capsys, *argv)[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 1 and "a schedule named 'x' exists already" in err


def test_file_schedules_sync_and_cannot_be_removed_here(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "schedules", "sync")
    assert (code, err.strip()) == (1, "dsimport: error: DSIMPORT_SCHEDULES_FILE is not set")
    path = tmp_path / "schedules.toml"
    path.write_text(EXAMPLE)
    monkeypatch.setenv("DSIMPORT_SCHEDULES_FILE", str(path))
    code, out, _ = run(capsys, "schedules", "sync")
    assert code == 0 and out.startswith("added: ")
    assert run(capsys, "schedules", "sync")[1] == "schedules table already matches the file\n"
    code, _, err = run(capsys, "schedules", "remove", "mirror")
    assert code == 1 and "comes from the schedules file: edit the file to remove it" in err
    assert run(capsys, "schedules", "resume", "mirror")[0] == 0  # pausing and resuming file schedules is fine
    path.write_text("[schedules.x\n")
    code, _, err = run(capsys, "schedules", "sync")
    assert code == 1 and "is not valid TOML" in err
    code, _, err = run(capsys, "beat")
    assert code == 1 and "is not valid TOML" in err  # beat refuses to start on a broken file


def test_run_now_sends_a_manual_fire_to_the_workers(
    capsys: pytest.CaptureFixture[str], broker_url: str, harness: Harness
) -> None:
    assert run(capsys, "schedules", "add", "x", "--paused", "--every", "1h", "campaign", "--dataset", TARGET,
               "--campaign", CAMPAIGN)[0] == 0  # fmt: skip
    code, out, err = run(capsys, "schedules", "run-now", "x")
    assert code == 0, err
    fire_time = out.strip().split(" fire ")[1].removesuffix(" sent")
    client = redis.Redis.from_url(broker_url)
    try:
        [raw] = client.lrange("dsimport", 0, -1)
    finally:
        client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == "dsimport.fire_schedule"
    args, _, _ = json.loads(base64.b64decode(message["body"]))
    assert args == ["x", fire_time, "manual"]
    with harness.sessions() as session:
        assert get_schedule(session, "x") is not None
    assert NOW.year <= int(fire_time[:4])


def test_show_counts_retried_and_given_up_items(capsys: pytest.CaptureFixture[str], harness: Harness) -> None:
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE, chunk_size=2)
    harness.api.records = ["r-1", "r-2", "r-3"]
    first = fire(harness.context, "mirror", at(3600))
    with harness.sessions() as session:
        job = session.get(ImportJob, first.job_ids[0])
        assert job is not None
        job.status = JobStatus.FAILED
        session.commit()
    fire(harness.context, "mirror", at(7200))
    shown = run_json(capsys, "schedules", "show", "mirror", "--json")
    assert shown["items"] == {"imported": 3, "retried": 2, "given_up": 0}
    assert "retry 1 of 3" in shown["runs"][0]["message"]
    code, out, _ = run(capsys, "schedules", "show", "mirror")
    assert code == 0 and "3 requested, 2 retried, 0 given up" in out


def test_backfill_records_the_backfill_and_sends_it_to_the_workers(
    capsys: pytest.CaptureFixture[str], broker_url: str
) -> None:
    assert run(capsys, "schedules", "add", "win", "--every", "1h", "explorer-window", "--dataset", TARGET,
               "--since", "2026-01-01T00:00:00Z")[0] == 0  # fmt: skip
    argv = ["schedules", "backfill", "win", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T06:00:00",
            "--step", "2h"]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out.splitlines() == [
        "win: backfill 1 started: 2026-01-01T00:00:00Z .. 2026-01-01T06:00:00Z by 7200s, 0/3 chunks, RUNNING: "
        "0 offered, 0 sampled out, 0 requested in 0 job(s)",
        "follow it with: dsimport schedules show win",
    ]
    client = redis.Redis.from_url(broker_url)
    try:
        [raw] = client.lrange("dsimport", 0, -1)
    finally:
        client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == "dsimport.run_backfill"
    assert json.loads(base64.b64decode(message["body"]))[0] == [1]

    # The same command again is the same backfill; another step is another one.
    assert "backfill 1 resumed" in run(capsys, *argv)[1]
    assert "backfill 2 started" in run(capsys, *argv[:-1], "1h")[1]
    shown = run_json(capsys, "schedules", "show", "win", "--json")
    assert [(b["id"], b["chunks"], b["status"]) for b in shown["backfills"]] == [(2, 6, "RUNNING"), (1, 3, "RUNNING")]
    code, out, _ = run(capsys, "schedules", "show", "win")
    assert code == 0 and "backfills (latest first):\n  2  2026-01-01T00:00:00Z .. 2026-01-01T06:00:00Z by 3600s" in out


def test_backfill_refuses_what_it_cannot_do_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "schedules", "add", "hourly", "--every", "1h", "campaign", "--dataset", TARGET,
               "--campaign", CAMPAIGN)[0] == 0  # fmt: skip
    assert run(capsys, "schedules", "add", "win", "--every", "1h", "explorer-window", "--dataset", TARGET)[0] == 0
    cases = [
        (["hourly", "--since", "2h ago", "--until", "1h ago"], 1,
         "schedule 'hourly' is a plain schedule: only window schedules (explorer-window, spans-window)"),
        (["nope", "--since", "2h ago", "--until", "1h ago"], 1, "no schedule named 'nope'"),
        (["win", "--since", "2h ago", "--until", "2099-01-01T00:00:00Z"], 1,
         "--until 2099-01-01T00:00:00Z is later than"),
        (["win", "--since", "1h ago", "--until", "2h ago"], 2, "--since '1h ago' must be before --until '2h ago'"),
    ]  # fmt: skip
    for argv, exit_code, expected in cases:
        code, _, err = run(capsys, "schedules", "backfill", *argv)
        assert (code, err.count("\n")) == (exit_code, 1), err
        assert expected in err
