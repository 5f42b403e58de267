"""Outcomes that say what happened: our own counts beside the API's, and whether a completed import was partial.

- ``duplicates_skipped``: items left out before submitting because the target already held them.
- ``sampled_out``: items a schedule's sample rate left out.
- ``partial``: the job ended COMPLETED having imported fewer records than it requested (the API's ``result``
  counts); written when the ending is observed, so /metrics and the jobs page count it without reading counts.

The API's own counts (requested, imported, skipped) have been columns since 0001; it reports no failed count.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("duplicates_skipped", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sampled_out", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("partial", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("partial")
        batch.drop_column("sampled_out")
        batch.drop_column("duplicates_skipped")
