"""Backfills: a window schedule imports a past range in chunks, each chunk a run of its own.

- ``schedule_backfills``: one row per backfill, its range, step and the start of the next chunk (``cursor``).
- ``schedule_runs.backfill_id``: the backfill a run is a chunk of. The one-run-per-fire guard becomes two partial
  unique indexes, (schedule, fire time) for fires and (backfill, fire time) for chunks, so a chunk starting at the
  same second as a fire is a run of its own.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedule_backfills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        _ts("since", nullable=False),
        _ts("until", nullable=False),
        sa.Column("step_s", sa.Integer(), nullable=False),
        _ts("cursor", nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("finished_at"),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_backfills_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_backfills")),
    )
    op.create_index(op.f("ix_schedule_backfills_schedule_id"), "schedule_backfills", ["schedule_id"])
    with op.batch_alter_table("schedule_runs") as batch:
        batch.add_column(sa.Column("backfill_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_schedule_runs_backfill_id_schedule_backfills"),
            "schedule_backfills",
            ["backfill_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.drop_constraint(batch.f("uq_schedule_runs_schedule_id"), type_="unique")
    for name, columns, where in (
        ("uq_schedule_runs_fire", ["schedule_id", "fire_time"], "backfill_id IS NULL"),
        ("uq_schedule_runs_backfill_chunk", ["backfill_id", "fire_time"], "backfill_id IS NOT NULL"),
    ):
        op.create_index(
            op.f(name),
            "schedule_runs",
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    op.execute("DELETE FROM schedule_runs WHERE backfill_id IS NOT NULL")
    op.drop_index(op.f("uq_schedule_runs_backfill_chunk"), table_name="schedule_runs")
    op.drop_index(op.f("uq_schedule_runs_fire"), table_name="schedule_runs")
    with op.batch_alter_table("schedule_runs") as batch:
        batch.create_unique_constraint(batch.f("uq_schedule_runs_schedule_id"), ["schedule_id", "fire_time"])
        batch.drop_constraint(batch.f("fk_schedule_runs_backfill_id_schedule_backfills"), type_="foreignkey")
        batch.drop_column("backfill_id")
    op.drop_index(op.f("ix_schedule_backfills_schedule_id"), table_name="schedule_backfills")
    op.drop_table("schedule_backfills")
