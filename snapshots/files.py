"""Where snapshot files go and how they are written: a folder checked when a schedule is added, and each export
written atomically under it as ``<dataset id>/<UTC time>-<job id>.jsonl``.

Atomic: the bytes go to a hidden temporary file in the same folder, are flushed to disk, and the file is renamed into
place; a reader (or a crash) never sees half a snapshot under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = [
    "SnapshotDirError",
    "WrittenSnapshot",
    "check_snapshot_dir",
    "count_records",
    "snapshot_path",
    "write_atomically",
]


class SnapshotDirError(ValueError):
    """Raised when a snapshot folder cannot be created or written to (the message names the folder and why)."""


def check_snapshot_dir(value: str | os.PathLike[str], *, base: Path | None = None) -> Path:
    """The absolute folder ``value`` names (relative to ``base``, else the working directory), created if missing
    and proven writable by writing a file in it.

    A write, not ``os.access``: the permission bits say nothing to root, nor about a read-only mount.
    """
    text = os.fspath(value)
    if not text.strip():
        raise SnapshotDirError("the snapshot folder is empty: give a folder to write the snapshots to")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = Path(os.path.abspath(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".dsimport-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SnapshotDirError(f"cannot write snapshots to {path}: {reason}") from None
    return path


def snapshot_path(root: Path, dataset_id: str, *, at: datetime, job_id: str) -> Path:
    """The file of the snapshot of ``dataset_id`` taken at ``at`` after ``job_id`` (the last job it covers)."""
    if not dataset_id or os.sep in dataset_id or dataset_id in (".", ".."):
        raise ValueError(f"dataset id {dataset_id!r} cannot name a folder")
    return root / dataset_id / f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{job_id}.jsonl"


def count_records(content: bytes) -> int:
    """The records of a JSONL export: its lines (the last one may lack its newline)."""
    if not content:
        return 0
    return content.count(b"\n") + (0 if content.endswith(b"\n") else 1)


@dataclass(frozen=True)
class WrittenSnapshot:
    path: Path
    record_count: int
    sha256: str
    size_bytes: int


def write_atomically(path: Path, content: bytes) -> WrittenSnapshot:
    """Write ``content`` to ``path`` through a temporary file and a rename; the folder is created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)
    return WrittenSnapshot(
        path=path,
        record_count=count_records(content),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
    )


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder's entry is on disk; not every platform lets a folder be opened for it.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
