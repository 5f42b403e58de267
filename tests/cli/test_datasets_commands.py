"""`dsimport datasets` against the emulator over a real socket: every page followed, tables and JSON, clear errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_client import DatasetsClient
from cli.main import main
from emulator.testing import EmulatorServer

DATASET = "5b0f2a1e-3c1d-4e55-9a77-0c6f3f0f6a10"
SLUG = "many-records"
# More than one page of the client's walks (100 a page), so that following the pages is what is tested.
RECORDS = 230
DATASETS = 104


def _user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def _world() -> dict[str, object]:
    others = [{"id": str(uuid.uuid4()), "name": f"Other {n:03d}"} for n in range(DATASETS - 1)]
    records = [
        {"id": str(uuid.UUID(int=n + 1)), "dataset_id": DATASET, "payload": {"messages": [_user(f"q{n}")]}}
        for n in range(RECORDS)
    ]
    return {"datasets": [{"id": DATASET, "name": "Many records", "slug": SLUG}, *others], "records": records}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=_world(), task_duration_s=0.2) as emu:
        yield emu


@pytest.fixture
def api_env(emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_API_BASE_URL", emulator.url)
    monkeypatch.setenv("MISTRAL_API_KEY", emulator.api_key)
    monkeypatch.delenv("DSIMPORT_API_KEY_FILE", raising=False)
    return emulator


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["datasets", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_follows_every_page_and_filters(api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert len(listed) >= DATASETS  # the emulator's default world may hold more
    assert {d["id"] for d in listed} >= {DATASET}
    code, out, _ = _run(capsys, "list", "--q", "Many rec")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SLUG", "NAME", "CREATED"]
    assert len(lines) == 2 and lines[1].startswith(f"{DATASET}  {SLUG}")


def test_show_by_id_and_by_slug(api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", SLUG, "--json")
    assert code == 0 and json.loads(out)["id"] == DATASET
    code, out, _ = _run(capsys, "show", DATASET.upper())
    assert code == 0
    assert f"slug         {SLUG}" in out.splitlines()


def test_records_with_and_without_a_limit(api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "records", SLUG, "--json")
    assert code == 0
    assert len(json.loads(out)) == RECORDS
    code, out, _ = _run(capsys, "records", DATASET, "--limit", "120")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 + 120
    assert lines[1].startswith(str(uuid.UUID(int=1))) and '"q0"' in lines[1]


def test_export_writes_every_record_as_one_json_line(
    api_env: EmulatorServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "export.jsonl"
    code, _, err = _run(capsys, "export", SLUG, "-o", str(target))
    assert code == 0
    assert err.strip() == f"exported {RECORDS} records of {SLUG} to {target}"
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == RECORDS and len({r["id"] for r in rows}) == RECORDS
    assert rows[5]["payload"] == {"messages": [{"role": "user", "content": "q5"}]}
    code, out, _ = _run(capsys, "export", DATASET)
    assert code == 0 and len(out.splitlines()) == RECORDS


def test_create_then_tasks_show_the_import(api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "create", "Fresh set", "--description", "made by a test", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["name"] == "Fresh set" and created["description"] == "made by a test"
    code, out, _ = _run(capsys, "tasks", created["id"])
    assert code == 0 and out.splitlines()[1:] == []
    with DatasetsClient(api_env.api_key, base_url=api_env.url) as client:
        task = client.import_from_dataset_records(created["id"], [str(uuid.UUID(int=1))])
    code, out, _ = _run(capsys, "tasks", created["slug"], "--json")
    assert code == 0
    assert [t["id"] for t in json.loads(out)] == [task.id]


@pytest.mark.parametrize("command", ["show", "records", "tasks", "export"])
def test_an_unknown_dataset_is_one_line_and_exit_1(
    command: str, api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(uuid.uuid4())
    code, out, err = _run(capsys, command, missing)
    assert code == 1
    assert out == ""
    assert err == f"dsimport: error: no dataset {missing} at {api_env.url}\n"


def test_an_unreachable_api_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_API_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("MISTRAL_API_KEY", "any")
    code, out, err = _run(capsys, "list")
    assert code == 1 and out == ""
    assert err.startswith("dsimport: error: cannot reach the API at http://127.0.0.1:1: ")
    assert len(err.splitlines()) == 1


def test_a_malformed_reference_is_a_usage_error(api_env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "show", "Not A Slug")
    assert code == 2
    assert "is not a dataset UUID or slug" in err
