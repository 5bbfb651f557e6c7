"""Rooms belong to an instructor; classes may be scheduled; wall displays pair to rooms

Rooms were named but unused. Each now belongs to an instructor, with a name
unique among that instructor's rooms. A room that existed goes to the
instructor of a class held in it, else to the first instructor; with no
instructor at all it can't be kept. A class gets an optional scheduled start
(``scheduled_at``), and ``displays`` holds the wall screens waiting to be
paired or paired to a room. Going back, a room name used by several
instructors gets its id appended to stay unique.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("instructor_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE rooms SET instructor_id = COALESCE("
        " (SELECT MIN(classes.instructor_id) FROM classes WHERE classes.room_id = rooms.id),"
        " (SELECT MIN(instructors.id) FROM instructors))"
    )
    op.execute(
        "UPDATE classes SET room_id = NULL WHERE room_id IN"
        " (SELECT id FROM rooms WHERE instructor_id IS NULL)"
    )
    op.execute("DELETE FROM rooms WHERE instructor_id IS NULL")
    with op.batch_alter_table("rooms") as batch:
        batch.alter_column("instructor_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint(op.f("uq_rooms_name"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_rooms_instructor_id_name"), ["instructor_id", "name"]
        )
        batch.create_foreign_key(
            op.f("fk_rooms_instructor_id_instructors"),
            "instructors",
            ["instructor_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_rooms_instructor_id"), ["instructor_id"])
    with op.batch_alter_table("classes") as batch:
        batch.add_column(sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_classes_room_id"), ["room_id"])
    op.create_table(
        "displays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("pairing_code", sa.String(length=12), nullable=False),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_displays_room_id_rooms"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_displays")),
        sa.UniqueConstraint("pairing_code", name=op.f("uq_displays_pairing_code")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_displays_secret_hash")),
    )
    op.create_index(op.f("ix_displays_room_id"), "displays", ["room_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_displays_room_id"), table_name="displays")
    op.drop_table("displays")
    with op.batch_alter_table("classes") as batch:
        batch.drop_index(op.f("ix_classes_room_id"))
        batch.drop_column("scheduled_at")
    # One name per room again: a name several instructors use gets the room's id.
    op.execute(
        "UPDATE rooms SET name = SUBSTR(name, 1, 66) || ' (room ' || CAST(id AS VARCHAR(12)) || ')'"
        " WHERE EXISTS (SELECT 1 FROM rooms AS other"
        " WHERE other.name = rooms.name AND other.id < rooms.id)"
    )
    with op.batch_alter_table("rooms") as batch:
        batch.drop_index(op.f("ix_rooms_instructor_id"))
        batch.drop_constraint(op.f("fk_rooms_instructor_id_instructors"), type_="foreignkey")
        batch.drop_constraint(op.f("uq_rooms_instructor_id_name"), type_="unique")
        batch.create_unique_constraint(op.f("uq_rooms_name"), ["name"])
        batch.drop_column("instructor_id")
