"""The head revision read from the migration files (without Alembic) is Alembic's, or no answer at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import migration_head
from store.db import head_revision
from store.migration_head import shipped_head


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(migration_head, "VERSIONS_DIR", tmp_path)
    shipped_head.cache_clear()
    yield tmp_path
    shipped_head.cache_clear()


def migration(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        f'"""A migration.\n\nRevision ID: {revision}\n"""\n\nrevision: str = {revision}\n'
        f"down_revision: str | None = {down}\n"
    )


def test_the_head_read_from_the_files_is_alembics() -> None:
    shipped_head.cache_clear()
    assert shipped_head() == head_revision()


def test_a_chain_of_files_ends_in_its_last_revision(versions: Path) -> None:
    migration(versions, "0001_a", '"0001"', "None")
    migration(versions, "0002_b", '"0002"', '"0001"')
    migration(versions, "0003_c", "'0003'", "'0002'")
    assert shipped_head() == "0003"


@pytest.fixture
def branched(versions: Path) -> Path:
    migration(versions, "0001_a", '"0001"', "None")
    migration(versions, "0002_b", '"0002"', '"0001"')
    migration(versions, "0002_c", '"0002c"', '"0001"')
    return versions


def test_two_heads_are_no_answer(branched: Path) -> None:
    assert shipped_head() is None


def test_a_merge_revision_revises_both_heads(branched: Path) -> None:
    migration(branched, "0003_merge", '"0003"', '("0002", "0002c")')
    assert shipped_head() == "0003"


def test_a_revision_not_written_plainly_is_no_answer(versions: Path) -> None:
    migration(versions, "0001_a", '"0001"', "None")
    migration(versions, "0002_b", "make_revision()", '"0001"')
    assert shipped_head() is None
