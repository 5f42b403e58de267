"""Every SQL statement is parameterised: no statement text is built from values, and values with SQL in them are
only ever data.

The first test reads our packages' source (ast) and fails on a ``text()``, ``literal_column()``,
``exec_driver_sql()`` or ``execute()`` whose statement is an f-string, a ``%`` or ``+`` concatenation, a
``.format()`` or a ``.join()``, directly or through a variable assigned one in the same function or module. The
allow-list is empty: migrations hold no hand-written SQL. The scanner is itself tested on examples of each form, so
it cannot pass by seeing nothing.

The second test sends values full of SQL metacharacters (quotes, semicolons, comments, LIKE wildcards) through the
command line and the jobs page, on both ledgers: they come back exactly as sent, lookups by them find nothing, and
every table is still there with the rows it should have.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, inspect, select, table
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from dashboard import DashboardConfig, build_app
from store.models import ImportJob, Schedule
from tests.dashboard.conftest import PASSWORD, USER, auth_header
from tests.dashboard.server import serve
from triggers.messages.intake import Intake

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("api_client", "dashboard", "emulator", "store", "tasks", "worker")
SQL_CALLS = frozenset({"text", "literal_column", "exec_driver_sql", "execute", "executemany", "executescript"})
# (path relative to the repository, line) -> why a built statement is acceptable there. Keep it empty unless a
# migration needs DDL no bind parameter can express.
ALLOWED: dict[tuple[str, int], str] = {}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_built(node: ast.AST, assigned: dict[str, list[ast.AST]], seen: frozenset[str] = frozenset()) -> bool:
    """True when ``node`` builds text at run time (f-string, %, +, .format, .join), even through a variable."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        sides = (node.left, node.right)
        return any(_is_text(side, assigned, seen) for side in sides)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return True
    if isinstance(node, ast.Call) and _called_name(node) in ("text", "literal_column") and node.args:
        return _is_built(node.args[0], assigned, seen)
    if isinstance(node, ast.Name) and node.id in assigned and node.id not in seen:
        return any(_is_built(value, assigned, seen | {node.id}) for value in assigned[node.id])
    if isinstance(node, ast.IfExp):
        return _is_built(node.body, assigned, seen) or _is_built(node.orelse, assigned, seen)
    return False


def _is_text(node: ast.AST, assigned: dict[str, list[ast.AST]], seen: frozenset[str]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.Name):  # a variable that holds text somewhere (q = "SELECT ..."; q += value)
        return any(
            isinstance(value, ast.JoinedStr) or (isinstance(value, ast.Constant) and isinstance(value.value, str))
            for value in assigned.get(node.id, [])
        )
    return isinstance(node, ast.JoinedStr) or _is_built(node, assigned, seen)


def _assignments(scope: ast.AST) -> dict[str, list[ast.AST]]:
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                value = node.value if isinstance(node, ast.AnnAssign) else ast.BinOp(node.target, node.op, node.value)
                found.setdefault(node.target.id, []).append(value)
    return found


def built_statements(source: str) -> tuple[list[int], int]:
    """Lines of SQL calls whose statement is built from values, and how many SQL calls there were in all."""
    tree = ast.parse(source)
    module_names = _assignments(tree)
    # Each node's innermost function: its local assignments explain the names a statement uses.
    owner: dict[int, ast.AST] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                owner[id(node)] = function
    lines: set[int] = set()
    calls = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _called_name(node) not in SQL_CALLS:
            continue
        statement = node.args[0] if node.args else next(
            (kw.value for kw in node.keywords if kw.arg in ("statement", "sql", "text")), None
        )
        if statement is None:
            continue
        calls += 1
        scope = owner.get(id(node))
        names = module_names if scope is None else {**module_names, **_assignments(scope)}
        if _is_built(statement, names):
            lines.add(node.lineno)
    return sorted(lines), calls


@pytest.mark.parametrize(
    ("code", "built"),
    [
        ('conn.execute(text(f"SELECT * FROM jobs WHERE id = {job_id}"))', True),
        ('session.execute(text("SELECT * FROM jobs WHERE id = " + job_id))', True),
        ('cursor.execute("SELECT * FROM jobs WHERE id = \'%s\'" % job_id)', True),
        ('conn.exec_driver_sql("DELETE FROM {} WHERE id = 1".format(table))', True),
        ('q = f"UPDATE jobs SET x = {v}"\nsession.execute(text(q))', True),
        ('def f(v):\n    q = "SELECT " + v\n    return conn.execute(q)', True),
        ('def f(v):\n    q = "SELECT 1"\n    q += v\n    return conn.execute(q)', True),
        ('conn.execute(text(" AND ".join(parts)))', True),
        ('stmt = literal_column(f"x{v}")', True),
        ('conn.execute(text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id})', False),
        ('session.execute(select(Job).where(Job.id == job_id))', False),
        ('cursor.execute("PRAGMA foreign_keys = ON")', False),
        ('conn.exec_driver_sql("BEGIN DEFERRED" if deferred else "BEGIN IMMEDIATE")', False),
    ],
)
def test_the_scanner_sees_each_way_of_building_a_statement(code: str, built: bool) -> None:
    lines, calls = built_statements(code)
    assert calls >= 1
    assert bool(lines) is built


def test_a_call_without_a_statement_is_not_sql() -> None:
    assert built_statements("pipe.execute()") == ([], 0)


def test_no_statement_in_our_packages_is_built_from_values() -> None:
    offenders = []
    total = 0
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert any("migrations" in str(path) for path in files)
    for path in files:
        lines, calls = built_statements(path.read_text(encoding="utf-8"))
        total += calls
        relative = str(path.relative_to(REPO))
        offenders += [f"{relative}:{line}" for line in lines if (relative, line) not in ALLOWED]
    assert total >= 10, "the scan found almost no SQL calls: is it reading the right files?"
    assert not offenders, "statements built from values (use bind parameters or SQLAlchemy constructs):\n" + "\n".join(
        offenders
    )


# --- behaviour: SQL in the values ----------------------------------------------------------------------------------

DATASET = "7c1f0d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
SOURCE = "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
NASTY = [
    "x'; DROP TABLE import_jobs; --",
    "' OR '1'='1",
    'e"); DELETE FROM schedules; --',
    "%",
    "_",
    "\\'; SELECT pg_sleep(5); --",
    "1; UPDATE import_jobs SET status='COMPLETED'",
    "/* */ UNION SELECT * FROM dead_letters --",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row_counts(engine: Engine) -> dict[str, int]:
    """Every table of the ledger and its number of rows."""
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one()) for name in names}


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MISTRAL_API_KEY", "DSIMPORT_API_KEY_FILE", "DSIMPORT_SCHEDULES_FILE", "DSIMPORT_UI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DSIMPORT_DATABASE_URL", database_url)
    monkeypatch.setenv("DSIMPORT_BROKER_URL", redis_url)
    monkeypatch.setenv("DSIMPORT_STREAM_NAME", "security:requests")


def test_sql_in_values_round_trips_through_the_cli_and_the_jobs_page(
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    engine: Engine,
    session_factory: sessionmaker[Session],
    database_url: str,
) -> None:
    # Jobs whose idempotency key, event ids and file id are SQL.
    job_ids = []
    for n, value in enumerate(NASTY):
        code, out, err = run(capsys, "import", "explorer", "--dataset", DATASET, "--event", value, "--key", value)
        assert code == 0, err
        job_ids.append(out.strip())
        key = f"f{n}{value}"
        code, out, err = run(capsys, "import", "file", "--dataset", DATASET, "--file-id", value, "--key", key)
        assert code == 0, err
        job_ids.append(out.strip())
    # The same key again is the same job: the key is compared as data.
    code, out, err = run(capsys, "import", "explorer", "--dataset", DATASET, "--event", "other", "--key", NASTY[1])
    assert code == 0 and out.strip() == job_ids[2] and "exists already" in err
    # A message whose id is SQL, and a dead letter whose body and id are.
    intake = Intake(session_factory=session_factory, send=lambda _: None, deadline_s=60.0)
    message_id = "m';DROP_TABLE_dead_letters;--"
    created = intake.accept(
        json.dumps({"id": message_id, "kind": "file", "dataset_id": DATASET, "file_id": NASTY[0]}).encode(),
        source="stream:security", entry_id="1-0",
    )  # fmt: skip
    assert created.job_id is not None
    letter = intake.accept(json.dumps({"id": message_id, "kind": NASTY[1]}).encode(), source="stream:s", entry_id="2-0")
    assert letter.dead_letter_id is not None
    # A schedule whose params are SQL; names cannot be, and looking one up by SQL finds nothing.
    code, _, err = run(capsys, "schedules", "add", "sql-values", "--every", "1h", "explorer", "--dataset", DATASET,
                       *[arg for value in NASTY for arg in ("--event", value)])  # fmt: skip
    assert code == 0, err
    before = row_counts(engine)
    for value in NASTY:
        for command in ("show", "pause", "resume", "remove", "run-now"):
            code, _, err = run(capsys, "schedules", command, value)
            assert code in (1, 2) and ("no schedule named" in err or "must be 1-100 letters" in err), err
        code, _, err = run(capsys, "jobs", "show", value)
        assert code == 2 and "is not a valid UUID" in err
        code, _, err = run(capsys, "jobs", "list", "--status", value)
        assert code == 2
    assert row_counts(engine) == before, "a lookup by SQL changed the ledger"

    # What went in comes back exactly.
    code, out, _ = run(capsys, "jobs", "list", "--json", "--limit", "100")
    listed = {row["id"]: row for row in json.loads(out)}
    assert set(job_ids) | {created.job_id} == set(listed)
    for n, value in enumerate(NASTY):
        explorer, file = listed[job_ids[2 * n]], listed[job_ids[2 * n + 1]]
        assert explorer["params"] == {"completion_event_ids": [value]} and explorer["idempotency_key"] == value
        assert file["params"] == {"file_id": value} and file["idempotency_key"] == f"f{n}{value}"
        assert explorer["status"] == file["status"] == "PENDING"
    code, out, _ = run(capsys, "schedules", "show", "sql-values", "--json")
    assert code == 0 and json.loads(out)["params"] == {"completion_event_ids": NASTY}
    code, out, _ = run(capsys, "messages", "dead-letters", "--json")
    assert code == 0 and json.loads(out)[0]["message_id"] == message_id
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == len(job_ids) + 1
        assert session.scalar(select(func.count()).select_from(Schedule)) == 1

    # The jobs page: filters of SQL are refused, ids of SQL are not found, values of SQL are shown.
    app = build_app(DashboardConfig(database_url=database_url, username=USER, password=PASSWORD))
    with serve(app) as client:
        for value in NASTY:
            assert client.get("/", params={"status": value}, headers=auth_header()).status_code == 400
            assert client.get("/", params={"kind": value}, headers=auth_header()).status_code == 400
            by_id = client.get("/jobs/" + httpx.URL(path=value).raw_path.decode().lstrip("/"), headers=auth_header())
            assert by_id.status_code == 404
        page = client.get(f"/jobs/{job_ids[0]}", headers=auth_header())
        assert page.status_code == 200 and "DROP TABLE import_jobs" in page.text
        assert client.get("/", headers=auth_header()).status_code == 200
    assert row_counts(engine) == before
