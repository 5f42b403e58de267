"""The jobs page pages through the ledger by (created_at, id) and charts when remote tasks ended.

- ``(created_at, id)``, ``(status, created_at, id)`` and ``(dataset_id, created_at, id)``: the keyset the jobs page
  pages on, alone and under its two common filters, so a deep page is an index range read, not a sort of the
  table. The first replaces the index on ``created_at`` alone, which it covers.
- ``remote_ended_at``: when the API says the remote task ended (its ``updated_at`` when first seen terminal), so
  the detection lag (``finished_at - remote_ended_at``) is a measurement, not a guess. Rows ended before this
  revision have none, and the lag chart leaves them out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("remote_ended_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_import_jobs_created_at", table_name="import_jobs")
    op.create_index("ix_import_jobs_created_at_id", "import_jobs", ["created_at", "id"])
    op.create_index("ix_import_jobs_status_created_at_id", "import_jobs", ["status", "created_at", "id"])
    op.create_index("ix_import_jobs_dataset_id_created_at_id", "import_jobs", ["dataset_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_import_jobs_dataset_id_created_at_id", table_name="import_jobs")
    op.drop_index("ix_import_jobs_status_created_at_id", table_name="import_jobs")
    op.drop_index("ix_import_jobs_created_at_id", table_name="import_jobs")
    op.create_index("ix_import_jobs_created_at", "import_jobs", ["created_at"])
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("remote_ended_at")
