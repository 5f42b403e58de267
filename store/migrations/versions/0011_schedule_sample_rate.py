"""Window schedules sample their items at a rate, and each run says how many items it was offered and left out.

- ``schedules.sample_rate``: the share of the items found that a window schedule imports (None: all of them).
- ``schedule_runs.offered_count`` and ``schedule_runs.sampled_out_count``: the distinct items a fire's search or
  listing offered, and how many of them the sample rate left out. Runs before this revision have neither.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("sample_rate", sa.Float(), nullable=True))
    with op.batch_alter_table("schedule_runs") as batch:
        batch.add_column(sa.Column("offered_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sampled_out_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule_runs") as batch:
        batch.drop_column("sampled_out_count")
        batch.drop_column("offered_count")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("sample_rate")
