"""The job ledger: import jobs and their status events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("remote_task_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("remote_status", sa.String(64), nullable=True),
        _ts("remote_status_since"),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("requested_count", sa.Integer(), nullable=True),
        sa.Column("imported_count", sa.Integer(), nullable=True),
        sa.Column("skipped_count", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("poll_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("next_poll_at"),
        sa.Column("poll_interval_s", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _ts("lease_expires_at"),
        _ts("deadline_at"),
        _ts("created_at", nullable=False),
        _ts("submit_started_at"),
        _ts("submitted_at"),
        _ts("finished_at"),
        _ts("updated_at", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_import_jobs_idempotency_key")),
        sa.UniqueConstraint("remote_task_id", name=op.f("uq_import_jobs_remote_task_id")),
    )
    op.create_index(op.f("ix_import_jobs_dataset_id"), "import_jobs", ["dataset_id"])
    op.create_index(op.f("ix_import_jobs_status"), "import_jobs", ["status"])
    op.create_index(op.f("ix_import_jobs_created_at"), "import_jobs", ["created_at"])
    # Serves the poller's "RUNNING and due" query.
    op.create_index("ix_import_jobs_status_next_poll_at", "import_jobs", ["status", "next_poll_at"])

    op.create_table(
        "job_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("job_id", sa.String(36), nullable=False),
        _ts("at", nullable=False),
        sa.Column("old_status", sa.String(32), nullable=True),
        sa.Column("new_status", sa.String(32), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name=op.f("fk_job_events_job_id_import_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_job_events_job_id"), table_name="job_events")
    op.drop_table("job_events")
    op.drop_index("ix_import_jobs_status_next_poll_at", table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_created_at"), table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_status"), table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_dataset_id"), table_name="import_jobs")
    op.drop_table("import_jobs")
