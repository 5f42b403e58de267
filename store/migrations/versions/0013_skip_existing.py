"""Skip what the target already holds: a per-dataset index of item keys, and the switch on jobs and schedules.

- ``dataset_item_keys``: the keys (payload hash, or origin: event, conversation, span) of the items a dataset
  holds, read from its record list or written by our own jobs before their POST.
- ``dataset_index_state``: when a dataset's record list was last read; its row is locked while a job picks what
  is new, so two jobs never both take one item.
- ``import_jobs.skip_existing``/``deduped_at``; ``schedules.skip_existing`` (on by default: a schedule that fires
  again and again is where doubles come from).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_item_keys",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("item_key", sa.String(255), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dataset_item_keys_job_id", "dataset_item_keys", ["job_id"])
    op.create_table(
        "dataset_index_state",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=True),
    )
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("skip_existing", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("deduped_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("original_request", sa.JSON(), nullable=True))
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("skip_existing", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("skip_existing")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("original_request")
        batch.drop_column("deduped_at")
        batch.drop_column("skip_existing")
    op.drop_table("dataset_index_state")
    op.drop_index("ix_dataset_item_keys_job_id", table_name="dataset_item_keys")
    op.drop_table("dataset_item_keys")
