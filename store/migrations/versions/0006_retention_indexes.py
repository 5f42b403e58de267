"""Indexes for retention and recovery, so neither reads a whole table.

The prune finds finished jobs by ``finished_at``, resolved dead letters by ``retried_at`` and a schedule's old
items by ``(schedule_id, added_at)``; recovery reads the jobs submitted on a dataset around a time by
``(dataset_id, submit_started_at)`` instead of every job the dataset ever had.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_import_jobs_finished_at"), "import_jobs", ["finished_at"])
    op.create_index(
        "ix_import_jobs_dataset_id_submit_started_at", "import_jobs", ["dataset_id", "submit_started_at"]
    )
    op.create_index(op.f("ix_dead_letters_retried_at"), "dead_letters", ["retried_at"])
    op.create_index("ix_schedule_items_schedule_id_added_at", "schedule_items", ["schedule_id", "added_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_items_schedule_id_added_at", table_name="schedule_items")
    op.drop_index(op.f("ix_dead_letters_retried_at"), table_name="dead_letters")
    op.drop_index("ix_import_jobs_dataset_id_submit_started_at", table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_finished_at"), table_name="import_jobs")
