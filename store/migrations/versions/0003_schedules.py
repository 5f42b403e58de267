"""Beat schedules: the schedules, one row per fire (unique per fire time), and the items each one imported.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("import_kind", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(255), nullable=True),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        _ts("fires_after", nullable=False),
        _ts("watermark"),
        _ts("last_fire_at"),
        _ts("finished_at"),
        sa.Column("finished_reason", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )

    op.create_table(
        "schedule_runs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        _ts("fire_time", nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("lease_expires_at"),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("job_ids", sa.JSON(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=True),
        _ts("window_start"),
        _ts("window_end"),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_runs_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        # The exactly-once guard: one run per fire, whoever sent it. Also serves "history, newest first".
        sa.UniqueConstraint("schedule_id", "fire_time", name=op.f("uq_schedule_runs_schedule_id")),
    )

    op.create_table(
        "schedule_items",
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        _ts("added_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_items_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "item_id", name=op.f("pk_schedule_items")),
    )


def downgrade() -> None:
    op.drop_table("schedule_items")
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
