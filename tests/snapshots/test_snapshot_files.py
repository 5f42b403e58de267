"""Where snapshot files go: a folder checked (made absolute) when a schedule is defined, files written atomically."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapshots.files import SnapshotDirError, check_snapshot_dir, count_records, snapshot_path, write_atomically


def test_a_relative_folder_is_made_absolute_and_created(tmp_path: Path) -> None:
    folder = check_snapshot_dir("snaps/nightly", base=tmp_path)
    assert folder == tmp_path / "snaps" / "nightly" and folder.is_dir()
    assert list(folder.iterdir()) == []  # the write check leaves nothing behind


def test_a_folder_under_a_file_cannot_hold_snapshots(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{}\n")
    with pytest.raises(SnapshotDirError, match=r"cannot write snapshots to .*a\.jsonl/snaps: Not a directory"):
        check_snapshot_dir(tmp_path / "a.jsonl" / "snaps")


def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    # A write, not the permission bits, is the check: /proc refuses every new file, even root's.
    with pytest.raises(SnapshotDirError, match="cannot write snapshots to /proc"):
        check_snapshot_dir("/proc")


def test_an_empty_folder_name_is_refused() -> None:
    with pytest.raises(SnapshotDirError, match="the snapshot folder is empty"):
        check_snapshot_dir("  ")


def test_a_snapshot_is_named_by_dataset_time_and_job(tmp_path: Path) -> None:
    at = datetime(2026, 12, 1, 5, 24, 44, 123456, tzinfo=UTC)
    path = snapshot_path(tmp_path, "ds-1", at=at, job_id="j-1")
    assert path == tmp_path / "ds-1" / "20261201T052444123456Z-j-1.jsonl"
    with pytest.raises(ValueError, match="cannot name a folder"):
        snapshot_path(tmp_path, "../x", at=at, job_id="j-1")


def test_written_atomically_with_its_count_and_hash(tmp_path: Path) -> None:
    content = b'{"payload": 1}\n{"payload": 2}\n'
    written = write_atomically(tmp_path / "ds" / "s.jsonl", content)
    assert written.path.read_bytes() == content
    assert (written.record_count, written.size_bytes) == (2, len(content))
    assert written.sha256 == hashlib.sha256(content).hexdigest()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["s.jsonl"]  # no temporary file left


def test_records_are_lines() -> None:
    assert [count_records(b""), count_records(b"{}\n"), count_records(b"{}\n{}"), count_records(b"{}\n{}\n")] == [
        0,
        1,
        2,
        2,
    ]
