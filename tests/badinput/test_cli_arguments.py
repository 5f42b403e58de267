"""Every `dsimport` command given missing, malformed or contradictory arguments: exit 2, one line, no traceback.

The commands are found by walking the click group, so a command added later is tested without anyone listing it:
for every group, no subcommand and an unknown one; for every command, an unknown option, each required parameter
left out, each option given without its value, and each typed parameter (UUID, dataset, number, range, choice,
file, time) given a malformed value. A table then adds what types cannot express: cron and period syntax, filter JSON, contradictory
options, ids out of range. tests/cli/test_cli_errors.py, tests/schedules/test_cli_schedules.py and
tests/messages/test_cli_messages.py hold the first such cases; this file is the exhaustive sweep.

Nothing here reaches a server: the environment has an unmigrated ledger and a dead broker, and every way a command
starts a long-running process is replaced by a guard that fails the test.
"""

# The tables read better one case per line.
# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cli.main import cli, main

UUID_A = "306b5f31-e31c-4e06-9220-e3008c61bf1b"
UUID_B = "71a2e42d-7414-4fe6-89cb-44a2122b6f6b"
# Commands whose unknown options belong to the program they start (Celery's worker and beat, Flower): see
# test_cli_passthrough.py.
PASSTHROUGH = {("worker",), ("beat",), ("flower",)}
# Arguments a group needs before its subcommand's name, so the subcommand is reached.
GROUP_ARGS: dict[tuple[str, ...], list[str]] = {("schedules", "add"): ["n1", "--every", "1h"]}


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


def prefix(path: tuple[str, ...]) -> list[str]:
    """The argv that reaches ``path``: each level's name, plus what its group needs first."""
    argv: list[str] = []
    for depth in range(1, len(path) + 1):
        argv.append(path[depth - 1])
        if depth < len(path):
            argv += GROUP_ARGS.get(path[:depth], [])
    return argv


def valid_value(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.IntRange | click.FloatRange):
        return str(kind.min if kind.min is not None else 1)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    if kind.name == "UUID":
        return UUID_A
    if kind.name == "DATASET":
        return "my-dataset"
    return "x1"


def required_args(command: click.Command, *, leave_out: str | None = None) -> list[str]:
    options: list[str] = []
    arguments: list[str] = []
    for param in command.params:
        if not param.required or param.name == leave_out:
            continue
        if isinstance(param, click.Argument):
            arguments.append(valid_value(param))
        else:
            options += [param.opts[0], valid_value(param)]
    return options + arguments


def malformed_values(param: click.Parameter) -> list[str]:
    kind = param.type
    if kind.name == "UUID":
        return ["not-a-uuid", "306b5f31e31c4e069220e3008c61bf1bXX", "'; DROP TABLE import_jobs; --"]
    if kind.name == "DATASET":
        # A UUID or a slug (api_client.dataset_refs); "not-a-uuid" is a slug, so it is no malformed value here.
        return ["306b5f31e31c4e069220e3008c61bf1bXX", "'; DROP TABLE import_jobs; --", "My Dataset", "a/b", "s" * 65, ""]
    if kind.name == "TIME":
        return ["yesterday", "2026-13-01T00:00:00", ""]
    if isinstance(kind, click.Choice):
        return ["no-such-choice", ""]
    if isinstance(kind, click.IntRange | click.FloatRange):
        numeric = isinstance(kind, click.IntRange)
        values = ["abc", "1.5"] if numeric else ["abc", "1,5"]
        if kind.min is not None:
            values.append(str(int(kind.min) - 1) if numeric else str(kind.min - 0.5))
        if kind.max is not None:
            values += ["99999999999999999999999"] if numeric else ["1e999", "nan"]
        return values
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return ["abc", "1.5"] if isinstance(kind, click.types.IntParamType) else ["abc"]
    return []


def display_name(param: click.Parameter) -> str:
    return param.opts[0] if isinstance(param, click.Option) else (param.name or "").upper()


def generated_cases() -> Iterator[tuple[str, list[str], str]]:
    for path, command in COMMANDS:
        name = " ".join(path) or "dsimport"
        base = prefix(path)
        if isinstance(command, click.Group):
            if not command.params or not any(p.required for p in command.params):
                yield f"{name}: nothing", base, "missing command"
            yield f"{name}: unknown command", [*base, *GROUP_ARGS.get(path, []), "no-such-command"], "No such command 'no-such-command'"
            continue
        if path not in PASSTHROUGH:
            yield f"{name}: unknown option", [*base, *required_args(command), "--no-such-option"], "No such option"
        for param in command.params:
            if param.required:
                missing = "Missing option" if isinstance(param, click.Option) else "Missing argument"
                # Positional arguments fill from the left: leaving out NAME of `NAME URL` makes the URL the NAME,
                # so what is reported missing is the last required argument.
                reported = param
                if isinstance(param, click.Argument):
                    reported = [p for p in command.params if isinstance(p, click.Argument) and p.required][-1]
                yield f"{name}: without {display_name(param)}", [*base, *required_args(command, leave_out=param.name)], f"{missing} '{display_name(reported)}'"
            if isinstance(param, click.Option) and not param.is_flag:
                yield f"{name}: {display_name(param)} without its value", [*base, *required_args(command, leave_out=param.name), param.opts[0]], "requires an argument"
            for value in malformed_values(param):
                others = required_args(command, leave_out=param.name)
                given = [param.opts[0], value] if isinstance(param, click.Option) else ["--", value]
                yield f"{name}: {display_name(param)}={value!r}", [*base, *others, *given], f"Invalid value for '{display_name(param)}'"
        # The group's own parameters, malformed, with this subcommand after them.
        for depth in range(1, len(path)):
            group_path = path[:depth]
            if group_path not in GROUP_ARGS:
                continue
            group = dict(COMMANDS)[group_path]
            for param in group.params:
                for value in malformed_values(param):
                    yield f"{name}: group {display_name(param)}={value!r}", [*prefix(group_path), *GROUP_ARGS[group_path], param.opts[0], value, path[-1]], "Invalid value for"


SEMANTIC: list[tuple[str, list[str], str]] = [
    # schedules: timing
    ("cron with 6 fields", ["schedules", "add", "s", "--cron", "* * * * * *", "file", "--dataset", UUID_A, "--file-id", "f"], "needs 5 fields"),
    ("cron minute 61", ["schedules", "add", "s", "--cron", "61 * * * *", "file", "--dataset", UUID_A, "--file-id", "f"], "minute 61 is out of range 0-59"),
    ("cron of words", ["schedules", "add", "s", "--cron", "every day at noon", "file", "--dataset", UUID_A, "--file-id", "f"], "cron"),
    ("cron empty", ["schedules", "add", "s", "--cron", "", "file", "--dataset", UUID_A, "--file-id", "f"], "cron"),
    ("every 0s", ["schedules", "add", "s", "--every", "0s", "file", "--dataset", UUID_A, "--file-id", "f"], "must be between 1 second and 366 days"),
    ("every -5m", ["schedules", "add", "s", "--every", "-5m", "file", "--dataset", UUID_A, "--file-id", "f"], "period"),
    ("every 1x", ["schedules", "add", "s", "--every", "1x", "file", "--dataset", UUID_A, "--file-id", "f"], "cannot read period"),
    ("every 400d", ["schedules", "add", "s", "--every", "400d", "file", "--dataset", UUID_A, "--file-id", "f"], "must be between 1 second and 366 days"),
    ("every empty", ["schedules", "add", "s", "--every", "", "file", "--dataset", UUID_A, "--file-id", "f"], "period"),
    ("both cron and every", ["schedules", "add", "s", "--every", "1h", "--cron", "0 * * * *", "file", "--dataset", UUID_A, "--file-id", "f"], "give exactly one of --cron and --every"),
    ("neither cron nor every", ["schedules", "add", "s", "file", "--dataset", UUID_A, "--file-id", "f"], "give exactly one of --cron and --every"),
    # schedules: names and kinds
    ("empty name", ["schedules", "add", "", "--every", "1h", "file", "--dataset", UUID_A, "--file-id", "f"], "schedule name ''"),
    ("name of 101 characters", ["schedules", "add", "n" * 101, "--every", "1h", "file", "--dataset", UUID_A, "--file-id", "f"], "must be 1-100 letters"),
    ("name with SQL", ["schedules", "add", "x'; DROP TABLE schedules; --", "--every", "1h", "file", "--dataset", UUID_A, "--file-id", "f"], "must be 1-100 letters"),
    ("name with a slash", ["schedules", "add", "a/b", "--every", "1h", "file", "--dataset", UUID_A, "--file-id", "f"], "must be 1-100 letters"),
    ("unknown kind", ["schedules", "add", "s", "--every", "1h", "teleport", "--dataset", UUID_A], "No such command 'teleport'"),
    # schedules: the filter
    ("filter not JSON", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", "{field: a}"], "not valid JSON"),
    ("filter a list", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", "[1]"], "filter must be an object"),
    ("filter unknown op", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", '{"field": "a", "op": "like", "value": 1}'], "filter.op 'like' is not one of"),
    ("filter group not a list", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", '{"AND": {"field": "a"}}'], "filter.AND must be a list"),
    ("filter NaN", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", '{"field": "a", "op": "eq", "value": NaN}'], "filter values must be JSON"),
    ("filter 1e999", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", '{"field": "a", "op": "eq", "value": 1e999}'], "filter values must be JSON"),
    ("filter nested 100,000 deep", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", "[" * 100_000], "not valid JSON: nested too deeply"),
    ("filter with a 5,000-digit number", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--filter", '{"field": "a", "op": "eq", "value": ' + "9" * 5000 + "}"], "not valid JSON: Exceeds the limit"),
    ("since not a time", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--since", "yesterday"], "since 'yesterday'"),
    # schedules: backfill
    ("backfill since not a time", ["schedules", "backfill", "s", "--since", "yesterday", "--until", "1h ago"], "Invalid value for --since: cannot read 'yesterday'"),
    ("backfill until a bad period", ["schedules", "backfill", "s", "--since", "2h ago", "--until", "1x ago"], "Invalid value for --until"),
    ("backfill step 0s", ["schedules", "backfill", "s", "--since", "2h ago", "--until", "1h ago", "--step", "0s"], "must be between 1 second and 366 days"),
    ("backfill since after until", ["schedules", "backfill", "s", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"], "must be before --until"),
    ("backfill since equals until", ["schedules", "backfill", "s", "--since", "1h ago", "--until", "1h ago"], "must be before --until"),
    ("snapshot folder under a file", ["schedules", "add", "s", "--every", "1h", "--snapshot", "a.jsonl/snaps", "file", "--dataset", UUID_A, "--file-id", "f"], "snapshot: cannot write snapshots to"),
    ("snapshot folder that is read-only", ["schedules", "add", "s", "--every", "1h", "explorer-window", "--dataset", UUID_A, "--snapshot", "/proc/snaps"], "snapshot: cannot write snapshots to /proc/snaps"),
    ("snapshot folder empty", ["schedules", "add", "s", "--every", "1h", "--snapshot", "", "campaign", "--dataset", UUID_A, "--campaign", UUID_B], "the snapshot folder is empty"),
    ("dataset kind with both record and source", ["schedules", "add", "s", "--every", "1h", "dataset", "--dataset", UUID_A, "--record", UUID_B, "--from-dataset", UUID_B], "use kind dataset-copy"),
    # import and messages send: contradictions and limits
    ("file import with both path and id", ["import", "file", "--dataset", UUID_A, "--path", "a.jsonl", "--file-id", "f"], "give exactly one of --path and --file-id"),
    ("file import from a folder", ["import", "file", "--dataset", UUID_A, "--path", "."], "is a directory"),
    ("dataset import with both records and source", ["import", "dataset", "--dataset", UUID_A, "--record", UUID_B, "--from-dataset", UUID_B], "not both"),
    ("idempotency key over 255 characters", ["import", "campaign", "--dataset", UUID_A, "--campaign", UUID_B, "--key", "k" * 256], "the idempotency key is 256 characters long, the limit is 255"),
    # import explorer|spans --filter: the search and its options
    ("explorer import with both events and a filter", ["import", "explorer", "--dataset", UUID_A, "--event", "e1", "--filter", '{"field": "a", "op": "eq", "value": 1}'], "give --event (one or more) or --filter, not both"),
    ("explorer import with neither events nor a filter", ["import", "explorer", "--dataset", UUID_A], "give --event (one or more) or --filter, not both"),
    ("spans import with both spans and a filter", ["import", "spans", "--dataset", UUID_A, "--span", "t:s", "--filter", "service_name = x", "--map", "i=span_attributes:k"], "give --span (one or more) or --filter, not both"),
    ("explorer import with a dry run but no filter", ["import", "explorer", "--dataset", UUID_A, "--event", "e1", "--dry-run"], "--dry-run goes with --filter"),
    ("explorer import with a window and a sample but no filter", ["import", "explorer", "--dataset", UUID_A, "--event", "e1", "--since", "2026-01-01", "--sample", "0.5"], "--since and --sample go with --filter"),
    ("explorer import with a filter not JSON", ["import", "explorer", "--dataset", UUID_A, "--filter", "{field: a}"], "Invalid value for --filter: not valid JSON"),
    ("explorer import with a filter of an unknown op", ["import", "explorer", "--dataset", UUID_A, "--filter", '{"field": "a", "op": "like", "value": 1}'], "filter.op 'like' is not one of"),
    ("explorer import with a filter nested 100,000 deep", ["import", "explorer", "--dataset", UUID_A, "--filter", "[" * 100_000], "not valid JSON: nested too deeply"),
    ("spans import with a blank search", ["import", "spans", "--dataset", UUID_A, "--filter", "  ", "--map", "i=span_attributes:k"], "Invalid value for --filter: the search expression is empty"),
    ("explorer import since not a time", ["import", "explorer", "--dataset", UUID_A, "--filter", "{}", "--since", "yesterday"], "'yesterday' is not an ISO-8601 date and time"),
    ("explorer import until before since", ["import", "explorer", "--dataset", UUID_A, "--filter", '{"AND": []}', "--since", "2026-02-01", "--until", "2026-01-01"], "--since and --until: the window is empty"),
    ("explorer import with a sample of 0", ["import", "explorer", "--dataset", UUID_A, "--filter", "{}", "--sample", "0"], "Invalid value for '--sample'"),
    ("explorer import with a dry run and wait", ["import", "explorer", "--dataset", UUID_A, "--filter", '{"AND": []}', "--dry-run", "--wait"], "--dry-run makes none"),
    ("explorer import with --json but no dry run", ["import", "explorer", "--dataset", UUID_A, "--filter", '{"AND": []}', "--json"], "--json goes with --dry-run"),
    ("explorer import with a chunk of 1,001", ["import", "explorer", "--dataset", UUID_A, "--filter", '{"AND": []}', "--chunk-size", "1001"], "is not in the range 1<=x<=1000"),
    ("explorer schedule with a filter", ["schedules", "add", "s", "--every", "1h", "explorer", "--dataset", UUID_A, "--filter", "{}"], "use kind explorer-window"),
    ("spans schedule with a filter", ["schedules", "add", "s", "--every", "1h", "spans", "--dataset", UUID_A, "--filter", "x = 1", "--map", "i=span_attributes:k"], "use kind spans-window"),
    ("explorer message with a filter", ["messages", "send", "explorer", "--dataset", UUID_A, "--filter", "{}"], "No such option '--filter'"),
    ("explorer import with a blank event", ["import", "explorer", "--dataset", UUID_A, "--event", ""], "completion_event_ids must hold non-empty strings"),
    ("message id with a space", ["messages", "send", "file", "--dataset", UUID_A, "--file-id", "f", "--id", "a b"], "schema: id: String should match"),
    ("message id of 201 characters", ["messages", "send", "file", "--dataset", UUID_A, "--file-id", "f", "--id", "i" * 201], "schema: id: String should have at most 200"),
    ("message with 1,001 events", ["messages", "send", "explorer", "--dataset", UUID_A, *[a for n in range(1001) for a in ("--event", f"e{n}")]], "List should have at most 1000 items"),
    ("message file send with both", ["messages", "send", "file", "--dataset", UUID_A, "--path", "a.jsonl", "--file-id", "f"], "give exactly one of --path and --file-id"),
    ("spans import of a span that is not TRACE:SPAN", ["import", "spans", "--dataset", UUID_A, "--span", "abc", "--map", "i=span_attributes:k"], "Invalid value for --span: expected TRACE_ID:SPAN_ID, got 'abc'"),
    ("spans import with a mapping without its key", ["import", "spans", "--dataset", UUID_A, "--span", "t:s", "--map", "i=span_attributes"], "Invalid value for --map: expected TARGET=NAMESPACE:KEY"),
    ("spans import from an unknown namespace", ["import", "spans", "--dataset", UUID_A, "--span", "t:s", "--map", "i=attributes:k"], "mapping_contract.mappings[0].source_field.namespace: Input should be 'span_attributes' or 'resource_attributes'"),
    ("spans message with a blank span id", ["messages", "send", "spans", "--dataset", UUID_A, "--span", "t: ", "--map", "i=span_attributes:k"], "Invalid value for --span: expected TRACE_ID:SPAN_ID"),
    ("spans schedule of a span that is not TRACE:SPAN", ["schedules", "add", "s", "--every", "1h", "spans", "--dataset", UUID_A, "--span", "abc", "--map", "i=span_attributes:k"], "expected TRACE_ID:SPAN_ID, got 'abc'"),
    # messages: dead-letter ids and corrected bodies
    ("dead letter id 0", ["messages", "show", "0"], "0 is not in the range"),
    ("dead letter id beyond 64 bits", ["messages", "retry", "99999999999999999999999"], "is not in the range"),
    ("dead letter id negative", ["messages", "show", "--", "-3"], "is not in the range"),
    ("retry with a body that is not JSON", ["messages", "retry", "1", "--body", "{not json"], "Invalid value for --body: invalid JSON"),
    ("retry with a body that is not UTF-8", ["messages", "retry", "1", "--body", b"\xff\xfe".decode("utf-8", "surrogateescape")], "Invalid value for --body: not UTF-8"),
    ("retry with a body of the wrong shape", ["messages", "retry", "1", "--body", '{"id": "a"}'], "Invalid value for --body: schema: kind: field required"),
    ("retry with a body nested deeply", ["messages", "retry", "1", "--body", "[" * 5_000], "Invalid value for --body: invalid JSON: nested too deeply"),
    ("retry with a body over the size limit", ["messages", "retry", "1", "--body", " " * 70_000], "Invalid value for --body: too large: 70000 bytes"),
    # jobs
    ("job id not a uuid", ["jobs", "show", "x' OR '1'='1"], "is not a valid UUID"),
    ("cancel a job id not a uuid", ["jobs", "cancel", "12"], "is not a valid UUID"),
    ("jobs status of SQL", ["jobs", "list", "--status", "RUNNING' OR 1=1 --"], "is not one of"),
    ("jobs limit of 10,001", ["jobs", "list", "--limit", "10001"], "is not in the range"),
    # the processes
    ("emulator port 70000", ["emulator", "--port", "70000"], "70000 is not in the range 0<=x<=65535"),
    ("emulator port of words", ["emulator", "--port", "http"], "'http' is not a valid integer range"),
    ("emulator task duration of words", ["emulator", "--task-duration", "slow"], "task duration 'slow' is not N or LOW-HIGH seconds"),
    ("emulator task duration reversed", ["emulator", "--task-duration", "5-1"], "must satisfy 0 <= low <= high"),
    ("emulator task duration NaN", ["emulator", "--task-duration", "nan"], "must satisfy 0 <= low <= high"),
    ("emulator failure rate 2", ["emulator", "--failure-rate", "2"], "is not in the range 0.0<=x<=1.0"),
    ("emulator negative latency", ["emulator", "--latency-ms", "-1"], "is not in the range x>=0.0"),
    ("flower port -1", ["flower", "--port", "-1"], "is not in the range 0<=x<=65535"),
    # Flower's own options, which `dsimport flower` checks before passing them on (Flower would drop an unknown one
    # silently and die on a malformed one with a traceback)
    ("flower passes unknown option", ["flower", "--bogus"], "'--bogus' is not a Flower option"),
    ("flower passes a Celery option after flower", ["flower", "--broker=redis://127.0.0.1:1/0"], "is not a Flower option"),
    ("flower passes stray argument", ["flower", "now"], "'now' is not a Flower option"),
    ("flower passes max tasks of words", ["flower", "--max_tasks=many"], "bad Flower option: invalid literal for int()"),
    ("flower passes option without its value", ["flower", "--max_tasks"], "Option 'max-tasks' requires a value"),
    ("dashboard port 65536", ["dashboard", "--port", "65536"], "is not in the range 0<=x<=65535"),
    ("up with no worker process", ["up", "--concurrency", "0"], "0 is not in the range 1<=x<=64"),
    ("up with a stray argument", ["up", "now"], "Got unexpected extra argument (now)"),
    # checks
    ("check url that is not a URL", ["check", "url", "not a url"], "Invalid value for 'URL': not an http(s):// URL"),
    ("check url of another scheme", ["check", "url", "ftp://127.0.0.1/"], "not an http(s):// URL"),
    ("check worker timeout 0", ["check", "worker", "--timeout", "0"], "is not in the range 0.1<=x<=60.0"),
    ("check beat max age 0", ["check", "beat", "--max-age", "0"], "is not in the range x>=1.0"),
]

CASES = list(generated_cases()) + SEMANTIC


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    for expected in ("emulator", "import campaign", "jobs cancel", "messages send dataset", "messages retry",
                     "schedules add explorer-window", "schedules run-now", "worker", "beat", "db upgrade", "up",
                     "flower", "dashboard", "check url"):  # fmt: skip
        assert expected in names
    assert len(CASES) > 250


@pytest.mark.parametrize(("argv", "expected"), [pytest.param(argv, expected, id=name) for name, argv, expected in CASES])
def test_bad_arguments_exit_2_with_one_clear_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    (cli_env / "a.jsonl").write_text('{"messages": []}\n')
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code}: {err}{captured.out}"
    assert expected in err, err
    assert err.startswith("dsimport: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err + captured.out
    assert captured.out == ""


UNKNOWN: list[tuple[list[str], str]] = [
    (["jobs", "show", UUID_B], f"no job {UUID_B}"),
    (["jobs", "cancel", UUID_B], f"job {UUID_B} not found"),
    (["messages", "show", "4242"], "dead letter 4242 not found"),
    (["messages", "retry", "4242"], "dead letter 4242 not found"),
    (["schedules", "show", "nope"], "no schedule named 'nope'"),
    (["schedules", "pause", "nope"], "no schedule named 'nope'"),
    (["schedules", "resume", "nope"], "no schedule named 'nope'"),
    (["schedules", "remove", "nope"], "no schedule named 'nope'"),
    (["schedules", "run-now", "nope"], "no schedule named 'nope'"),
]


@pytest.mark.parametrize(("argv", "expected"), UNKNOWN, ids=[" ".join(argv) for argv, _ in UNKNOWN])
def test_an_id_that_names_nothing_is_one_line_and_exit_1(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    # Well-formed but unknown: not a usage mistake but an answer from the ledger, as for any lookup that finds nothing.
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and expected in err and err.count("\n") == 1, err
