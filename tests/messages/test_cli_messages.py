"""``dsimport messages``: send, dead-letters, show, retry, stats, invoked as the command line, on both backends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from store.dead_letters import require_dead_letter
from store.jobs import get_job
from triggers.messages.intake import Intake, Outcome
from triggers.messages.stream_consumer import StreamConfig, ensure_group, process_entry

from .corpus import CAMPAIGN, DATASET, RECORD, encode, good

STREAM = "cli:requests"
DEAD = "cli:dead-letters"


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str, database_url: str
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    values = {
        "DSIMPORT_HOME": str(tmp_path / "home"),
        "DSIMPORT_DATABASE_URL": database_url,
        "DSIMPORT_BROKER_URL": redis_url,
        "DSIMPORT_STREAM_NAME": STREAM,
        "DSIMPORT_DEAD_LETTER_STREAM": DEAD,
        "MISTRAL_API_KEY": "sk-test",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DSIMPORT_STREAM_REDIS_URL", raising=False)
    return values


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stream_bodies(client: redis.Redis) -> list[dict[str, Any]]:
    entries: Any = client.xrange(STREAM)
    return [json.loads(fields[b"body"]) for _, fields in entries]


@pytest.mark.parametrize(
    ("argv", "source"),
    [
        (["campaign", "--campaign", CAMPAIGN], {"campaign_id": CAMPAIGN}),
        (["explorer", "--event", "evt-1", "--event", "evt-2"], {"completion_event_ids": ["evt-1", "evt-2"]}),
        (["file", "--file-id", "file-abc"], {"file_id": "file-abc"}),
        (["playground", "--conversation", "conv_1"], {"conversation_ids": ["conv_1"]}),
        (["dataset", "--record", RECORD], {"dataset_record_ids": [RECORD]}),
    ],
)
def test_send_publishes_one_valid_message_per_kind(
    env: dict[str, str],
    client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    source: dict[str, Any],
) -> None:
    code, out, err = run(capsys, "messages", "send", argv[0], "--dataset", DATASET, "--id", "op-1", *argv[1:])
    assert code == 0, err
    assert out == "op-1\n"
    assert f"on {STREAM}" in err
    assert stream_bodies(client) == [{"id": "op-1", "kind": argv[0], "dataset_id": DATASET, **source}]


def test_send_takes_a_dataset_slug_and_its_job_keeps_it(
    env: dict[str, str], client: redis.Redis, intake: Intake, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3.x takes a dataset's slug wherever its id goes; the service passes it on as given.
    code, _, err = run(capsys, "messages", "send", "file", "--dataset", "eval-set", "--id", "s-1", "--file-id", "f")
    assert code == 0, err
    [body] = stream_bodies(client)
    assert body["dataset_id"] == "eval-set"
    result = intake.accept_payload(body, source="test", entry_id="1-0")
    assert result.outcome is Outcome.CREATED and result.job_id is not None
    with intake.session_factory() as session:
        job = get_job(session, result.job_id)
        assert job is not None and job.dataset_id == "eval-set"


def test_send_picks_a_fresh_id_by_default(
    env: dict[str, str], client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [run(capsys, "messages", "send", "file", "--dataset", DATASET, "--file-id", "f")[1].strip() for _ in "ab"]
    assert ids[0] != ids[1]
    assert all(uuid.UUID(message_id) for message_id in ids)
    assert [body["id"] for body in stream_bodies(client)] == ids


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["explorer", "--dataset", DATASET, "--id", "a b", "--event", "e"], "schema: id: String should match"),
        (["explorer", "--dataset", DATASET, "--event", " e"], "completion_event_ids[0]: String should match"),
        (["explorer", "--dataset", DATASET, "--event", "e" * 300], "String should have at most 256"),
        (["explorer", "--dataset", "No pe", "--event", "e"], "'No pe' is not a dataset UUID or slug"),
        (["explorer", "--dataset", DATASET], "Missing option '--event'"),
        (["fax", "--dataset", DATASET], "No such command 'fax'"),
        (["file", "--dataset", DATASET], "give exactly one of --path and --file-id"),
        (["dataset", "--dataset", DATASET], "give --record (one or more) or --from-dataset"),
    ],
)
def test_send_refuses_what_the_consumer_would_dead_letter(
    env: dict[str, str], client: redis.Redis, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, _, err = run(capsys, "messages", "send", *argv)
    assert code == 2
    assert expected in err and err.count("\n") == 1
    assert client.exists(STREAM) == 0


def test_send_refuses_a_message_over_the_size_limit(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSIMPORT_MESSAGE_MAX_BYTES", "300")
    events = [arg for n in range(20) for arg in ("--event", f"event-{n:04d}")]
    code, _, err = run(capsys, "messages", "send", "explorer", "--dataset", DATASET, *events)
    assert code == 2
    assert "over the 300 limit: split the ids" in err


def test_send_to_an_unreachable_redis_is_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSIMPORT_STREAM_REDIS_URL", "redis://:secret@127.0.0.1:1/0")
    code, _, err = run(capsys, "messages", "send", "file", "--dataset", DATASET, "--file-id", "f")
    assert code == 1
    assert "cannot publish on cli:requests at redis://:***@127.0.0.1:1/0" in err
    assert "secret" not in err and "Traceback" not in err


@pytest.fixture
def intake(session_factory: sessionmaker[Session]) -> Intake:
    return Intake(session_factory=session_factory, send=lambda _: None, deadline_s=60.0)


def _letter(intake: Intake, body: bytes, entry_id: str) -> int:
    result = intake.accept(body, source=f"stream:{STREAM}", entry_id=entry_id)
    assert result.dead_letter_id is not None
    return result.dead_letter_id


def test_dead_letters_lists_newest_first_as_a_table_or_json(
    env: dict[str, str], intake: Intake, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _letter(intake, b"{broken", "1-0")
    second = _letter(intake, encode(good(message_id="m-2", completion_event_ids=[])), "2-0")
    third = _letter(intake, b"\xff\x00", "3-0")

    code, out, _ = run(capsys, "messages", "dead-letters")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "MESSAGE", "ID", "RETRIED", "AS", "REASON"]
    assert [int(line.split()[0]) for line in lines[1:]] == [third, second, first]
    assert "m-2" in lines[2] and "List should have at least 1 item" in lines[2]

    code, out, _ = run(capsys, "messages", "dead-letters", "--json", "--limit", "2")
    rows = json.loads(out)
    assert [row["id"] for row in rows] == [third, second]
    assert rows[0]["body_base64"] is True and rows[0]["body"] == "/wA="
    assert rows[0]["reason"].startswith("not UTF-8")
    assert rows[1]["message_id"] == "m-2" and rows[1]["entry_id"] == "2-0"
    assert rows[1]["stream"] == f"stream:{STREAM}"


def test_show_prints_the_raw_body(
    env: dict[str, str], intake: Intake, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    letter_id = _letter(intake, b"\xff\x00raw", "1-0")
    assert main(["messages", "show", str(letter_id)]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"\xff\x00raw"
    assert b"not UTF-8" in captured.err


def test_retry_resubmits_a_fixed_message_once(
    env: dict[str, str], intake: Intake, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    letter_id = _letter(intake, encode(good("file", message_id="fix-9", file_id=["f"])), "1-0")

    code, _, err = run(capsys, "messages", "retry", str(letter_id))
    assert code == 1
    assert f"dead letter {letter_id} is still refused: schema: file_id: Input should be a valid string" in err

    code, _, err = run(capsys, "messages", "retry", str(letter_id), "--body", "{not json")
    assert code == 2 and "Invalid value for --body: invalid JSON" in err  # a bad argument, not a failure

    fixed = json.dumps(good("file", message_id="fix-9"))
    code, out, err = run(capsys, "messages", "retry", str(letter_id), "--body", fixed)
    assert code == 0, err
    job_id = out.strip()
    with intake.session_factory() as session:
        job = get_job(session, job_id)
        assert job is not None and job.idempotency_key == "message:fix-9"
        assert require_dead_letter(session, letter_id).retried_job_id == job_id
    # The submit message went to the broker for a worker to pick up.
    assert client.llen("dsimport") == 1

    code, _, err = run(capsys, "messages", "retry", str(letter_id))
    assert code == 1 and f"already retried (job {job_id})" in err
    code, _, err = run(capsys, "messages", "retry", "424242")
    assert code == 1 and "dead letter 424242 not found" in err


def test_stats_sums_the_consumers_counters(
    env: dict[str, str], intake: Intake, client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "messages", "stats", "--json")
    assert code == 0
    assert json.loads(out)["processed"] == 0 and json.loads(out)["pending"] == 0

    config = StreamConfig(stream=STREAM, group="dsimport", consumer="c", dead_letter_stream=DEAD)
    ensure_group(client, config)
    for body in (encode(good(message_id="s-1")), encode(good(message_id="s-1")), b"[]"):
        client.xadd(STREAM, {"body": body})
    client.xadd(STREAM, {"body": b"{}"})
    reply: Any = client.xreadgroup("dsimport", "c", {STREAM: ">"}, count=3)
    outcomes = [process_entry(client, intake, config, eid, fields) for eid, fields in reply[0][1]]
    assert [r.outcome for r in outcomes if r] == [Outcome.CREATED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED]

    code, out, _ = run(capsys, "messages", "stats", "--json")
    assert json.loads(out) == {
        "created": 1,
        "duplicate": 1,
        "dead_lettered": 1,
        "processed": 3,
        "stream_length": 4,
        "pending": 0,
        "dead_letter_stream_length": 1,
    }
    code, out, _ = run(capsys, "messages", "stats")
    assert "processed                  3" in out
