"""Heart rate: profiles, samples, totals, the rooms' bridges, and strap claims

A phone's heart profile (age or max, the raised max, whether walls show the bpm)
is kept by device, with its history. Samples are stored per participant per five
seconds (mean and peak), and the totals (effort points, time per zone) per
participant per class, so samples can be removed after the retention period while
the totals stay. A room's bridge has a token, stored hashed; the straps it heard
lately are listed for phones to claim, one strap per participant per class.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:18:15.542270
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heart_profiles",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.Column("max_hr", sa.Integer(), nullable=True),
        sa.Column("raised_max_hr", sa.Integer(), nullable=True),
        sa.Column("show_bpm", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_heart_profiles")),
    )
    op.create_table(
        "bridge_straps",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("strap", sa.String(length=64), nullable=False),
        sa.Column("bpm", sa.Integer(), nullable=False),
        sa.Column("seen_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_bridge_straps_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_id", "strap", name=op.f("pk_bridge_straps")),
    )
    op.create_table(
        "heart_bridges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_heart_bridges_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heart_bridges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_heart_bridges_token_hash")),
    )
    with op.batch_alter_table("heart_bridges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_heart_bridges_room_id"), ["room_id"], unique=False)

    op.create_table(
        "heart_samples",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("bpm", sa.Integer(), nullable=False),
        sa.Column("peak_bpm", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_heart_samples_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_heart_samples_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", "at_ms", name=op.f("pk_heart_samples")),
    )
    with op.batch_alter_table("heart_samples", schema=None) as batch_op:
        batch_op.create_index("ix_heart_samples_class_id", ["class_id"], unique=False)

    op.create_table(
        "heart_totals",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("zone_ms", sa.JSON(), nullable=False),
        sa.Column("max_hr", sa.Integer(), nullable=False),
        sa.Column("peak_bpm", sa.Integer(), nullable=False),
        sa.Column("mean_bpm", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_heart_totals_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_heart_totals_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_heart_totals")),
    )
    with op.batch_alter_table("heart_totals", schema=None) as batch_op:
        batch_op.create_index("ix_heart_totals_class_id", ["class_id"], unique=False)

    op.create_table(
        "strap_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("strap", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_strap_claims_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_strap_claims_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strap_claims")),
        sa.UniqueConstraint("class_id", "strap", name=op.f("uq_strap_claims_class_id_strap")),
        sa.UniqueConstraint("participant_id", name=op.f("uq_strap_claims_participant_id")),
    )


def downgrade() -> None:
    op.drop_table("strap_claims")
    with op.batch_alter_table("heart_totals", schema=None) as batch_op:
        batch_op.drop_index("ix_heart_totals_class_id")

    op.drop_table("heart_totals")
    with op.batch_alter_table("heart_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_heart_samples_class_id")

    op.drop_table("heart_samples")
    with op.batch_alter_table("heart_bridges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_heart_bridges_room_id"))

    op.drop_table("heart_bridges")
    op.drop_table("bridge_straps")
    op.drop_table("heart_profiles")
