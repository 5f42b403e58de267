"""Indexes for retention and recovery: finished jobs by end time, a dataset's jobs by submit start.

``ix_import_jobs_finished_at`` lets the prune find finished jobs older than its cutoff without reading every job;
``ix_import_jobs_dataset_id_submit_started_at`` lets recovery read the jobs submitted on a dataset around a time
instead of every job the dataset ever had.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_import_jobs_finished_at"), "import_jobs", ["finished_at"])
    op.create_index(
        "ix_import_jobs_dataset_id_submit_started_at", "import_jobs", ["dataset_id", "submit_started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_import_jobs_dataset_id_submit_started_at", table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_finished_at"), table_name="import_jobs")
