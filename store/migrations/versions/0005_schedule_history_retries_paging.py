"""Schedules keep their history when removed, remember the file that defined them, retry failed chunks, and page
a dataset-copy source across fires.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("source_file", sa.Text(), nullable=True))
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("copy_page", sa.Integer(), nullable=True))
    with op.batch_alter_table("schedule_items") as batch:
        batch.add_column(sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_schedule_items_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("schedule_items") as batch:
        batch.drop_index(batch.f("ix_schedule_items_job_id"))
        batch.drop_column("given_up_at")
        batch.drop_column("retries")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("copy_page")
        batch.drop_column("removed_at")
        batch.drop_column("source_file")
