"""Bad input on the command line: exit 2 with one line that says what is wrong; broken setup: exit 1, one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main

UUID_A = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
UUID_B = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DSIMPORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/15")  # no command here reaches it
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["import", "campaign", "--dataset", "No pe", "--campaign", UUID_B], "'No pe' is not a dataset UUID or slug"),
        (["import", "campaign", "--dataset", UUID_A, "--campaign", "12"], "'12' is not a valid UUID"),
        (["import", "teleport", "--dataset", UUID_A], "No such command 'teleport'"),
        (["import", "explorer", "--dataset", UUID_A], "give --event (one or more) or --filter, not both"),
        (["import", "explorer", "--dataset", UUID_A, "--event", "e1", "--filter", "{}"], "not both"),
        (["import", "explorer", "--dataset", UUID_A, "--event", "e1", "--dry-run"], "--dry-run goes with --filter"),
        (["import", "campaign", "--campaign", UUID_B], "Missing option '--dataset'"),
        (["import", "file", "--dataset", UUID_A], "give exactly one of --path and --file-id"),
        (["import", "file", "--dataset", UUID_A, "--path", "x.jsonl", "--file-id", "f"], "exactly one of"),
        (["import", "file", "--dataset", UUID_A, "--path", "missing.jsonl"], "cannot read missing.jsonl"),
        (["import", "dataset", "--dataset", UUID_A], "give --record (one or more) or --from-dataset"),
        (["import", "dataset", "--dataset", UUID_A, "--record", UUID_B, "--from-dataset", UUID_B], "not both"),
        (["import", "dataset", "--dataset", UUID_A, "--record", "r-1"], "'r-1' is not a valid UUID"),
        (["jobs", "list", "--status", "BOGUS"], "'BOGUS' is not one of"),
        (["jobs", "list", "--limit", "0"], "0 is not in the range"),
        (["jobs", "show"], "Missing argument 'JOB_ID'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, err = run(capsys, *argv)
    assert code == 2
    assert expected in err
    assert err.strip().count("\n") == 0, err
    assert "Traceback" not in err


def test_an_empty_file_is_refused(capsys: pytest.CaptureFixture[str], isolated_env: Path) -> None:
    (isolated_env / "empty.jsonl").write_text("")
    code, err = run(capsys, "import", "file", "--dataset", UUID_A, "--path", "empty.jsonl")
    assert code == 2 and "empty.jsonl is empty" in err


def test_an_unmigrated_ledger_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "jobs", "list")
    assert code == 1
    assert "dsimport db upgrade" in err
    assert err.strip().count("\n") == 0


def test_an_invalid_setting_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "amqp://guest@localhost//")
    code, err = run(capsys, "jobs", "list")
    assert code == 1
    assert "broker URL must be a redis:// URL" in err
    assert err.strip().count("\n") == 0


def test_worker_refuses_to_start_on_an_unmigrated_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "worker")
    assert code == 1 and "is not migrated" in err and "dsimport db upgrade" in err


def test_worker_refuses_to_start_without_a_reachable_broker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-test")
    assert run(capsys, "db", "upgrade")[0] == 0
    monkeypatch.setenv("DSIMPORT_BROKER_URL", "redis://127.0.0.1:1/0")
    code, err = run(capsys, "worker")
    assert code == 1 and "is not reachable" in err
    assert "sk-test" not in err


def test_worker_refuses_to_start_without_a_key_for_the_real_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, err = run(capsys, "worker")
    assert code == 1
    assert "no API key for https://api.mistral.ai: set MISTRAL_API_KEY or DSIMPORT_API_KEY_FILE" in err
