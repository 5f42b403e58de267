"""Schedule snapshots: after a schedule's import completes, its target dataset exported to a JSONL file and recorded
in the ledger (count and SHA-256), so a user can tell which version of a dataset an evaluation ran on.

No Celery: the task layer's ``dsimport.take_snapshots`` calls :func:`take_due`; ``dsimport schedules add --snapshot``
checks its folder with :func:`check_snapshot_dir`.
"""

from snapshots.files import SnapshotDirError, WrittenSnapshot, check_snapshot_dir, snapshot_path, write_atomically
from snapshots.take import SnapshotPolicy, TakeReport, take_due

__all__ = [
    "SnapshotDirError",
    "SnapshotPolicy",
    "TakeReport",
    "WrittenSnapshot",
    "check_snapshot_dir",
    "snapshot_path",
    "take_due",
    "write_atomically",
]
