"""Teams, participants and scores for leaderboards: looks, rejoin, undo, flags, corrections

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 04:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("classes") as batch:
        batch.add_column(
            sa.Column("join_locked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("team_mode", sa.String(16), server_default="total", nullable=False)
        )
        batch.add_column(sa.Column("best_n", sa.Integer(), server_default="3", nullable=False))
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("letter", sa.String(1), server_default="", nullable=False))
        batch.add_column(sa.Column("pattern", sa.String(16), server_default="", nullable=False))
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("device_id", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("removed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_index("ix_participants_device_id", ["device_id"])
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("rounds", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("division", sa.String(16), server_default="rx", nullable=False))
        batch.add_column(
            sa.Column("elapsed_ms", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("undoes", sa.String(64), server_default="", nullable=False))
        batch.add_column(
            sa.Column("withdrawn", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "team_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instructor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instructor_id"],
            ["instructors.id"],
            name=op.f("fk_team_templates_instructor_id_instructors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_templates")),
        sa.UniqueConstraint(
            "instructor_id", "name", name=op.f("uq_team_templates_instructor_id_name")
        ),
    )
    op.create_table(
        "score_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("previous", sa.String(40), nullable=False),
        sa.Column("instructor_id", sa.Integer(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_score_corrections_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_score_corrections_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instructor_id"],
            ["instructors.id"],
            name=op.f("fk_score_corrections_instructor_id_instructors"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_corrections")),
    )
    op.create_index("ix_score_corrections_class_id", "score_corrections", ["class_id"])


def downgrade() -> None:
    op.drop_index("ix_score_corrections_class_id", table_name="score_corrections")
    op.drop_table("score_corrections")
    op.drop_table("team_templates")
    with op.batch_alter_table("scores") as batch:
        for name in ("flagged", "withdrawn", "undoes", "elapsed_ms", "division", "rounds"):
            batch.drop_column(name)
    with op.batch_alter_table("participants") as batch:
        batch.drop_index("ix_participants_device_id")
        for name in ("removed", "hidden", "device_id", "number"):
            batch.drop_column(name)
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("pattern")
        batch.drop_column("letter")
    with op.batch_alter_table("classes") as batch:
        for name in ("best_n", "team_mode", "join_locked"):
            batch.drop_column(name)
