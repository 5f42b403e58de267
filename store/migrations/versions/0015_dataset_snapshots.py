"""Schedule snapshots: a schedule's snapshot folder, the snapshots taken, and the completed jobs each covers.

- ``schedules.snapshot_dir``: the absolute folder a schedule exports its target dataset to after each completed
  import (null: no snapshots).
- ``dataset_snapshots``: one row per JSONL file written, with its record count, SHA-256 and size.
- ``snapshot_jobs``: one row per completed job of a schedule with a snapshot folder, written with the job's ending;
  pending until a snapshot covers it (the job id is the key: one snapshot per job at most).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("snapshot_dir", sa.Text(), nullable=True))
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("job_ids", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_snapshots"),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name="fk_dataset_snapshots_schedule_id_schedules", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_dataset_snapshots_schedule_id_created_at", "dataset_snapshots", ["schedule_id", "created_at"])
    op.create_table(
        "snapshot_jobs",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("snapshot_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_snapshot_jobs"),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name="fk_snapshot_jobs_schedule_id_schedules", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["dataset_snapshots.id"],
            name="fk_snapshot_jobs_snapshot_id_dataset_snapshots",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_snapshot_jobs_schedule_id", "snapshot_jobs", ["schedule_id"])
    op.create_index("ix_snapshot_jobs_snapshot_id", "snapshot_jobs", ["snapshot_id"])
    op.create_index("ix_snapshot_jobs_status_next_attempt_at", "snapshot_jobs", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("snapshot_jobs")
    op.drop_table("dataset_snapshots")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("snapshot_dir")
