"""Keep each class's frozen timeline apart from the row rewritten on every cue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:05:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _planned_ms(timeline: object) -> int:
    data = json.loads(timeline) if isinstance(timeline, str) else timeline
    if not isinstance(data, dict) or not data.get("segments"):
        return 0
    last = data["segments"][-1]
    return int(data.get("lead_in_ms", 0)) + int(last["start_ms"]) + int(last["duration_ms"])


def upgrade() -> None:
    op.create_table(
        "class_timelines",
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("timeline", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_class_timelines_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("class_id", name=op.f("pk_class_timelines")),
    )
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_ms", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    classes = sa.table(
        "classes",
        sa.column("id", sa.Integer),
        sa.column("timeline", sa.JSON),
        sa.column("planned_ms", sa.BigInteger),
    )
    timelines = sa.table(
        "class_timelines", sa.column("class_id", sa.Integer), sa.column("timeline", sa.JSON)
    )
    for class_id, timeline in connection.execute(sa.select(classes.c.id, classes.c.timeline)):
        connection.execute(sa.insert(timelines).values(class_id=class_id, timeline=timeline))
        connection.execute(
            sa.update(classes)
            .where(classes.c.id == class_id)
            .values(planned_ms=_planned_ms(timeline))
        )
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.alter_column("planned_ms", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("timeline")


def downgrade() -> None:
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timeline", sa.JSON(), nullable=True))
    connection = op.get_bind()
    classes = sa.table("classes", sa.column("id", sa.Integer), sa.column("timeline", sa.JSON))
    timelines = sa.table(
        "class_timelines", sa.column("class_id", sa.Integer), sa.column("timeline", sa.JSON)
    )
    for class_id, timeline in connection.execute(
        sa.select(timelines.c.class_id, timelines.c.timeline)
    ):
        connection.execute(
            sa.update(classes).where(classes.c.id == class_id).values(timeline=timeline)
        )
    with op.batch_alter_table("classes", schema=None) as batch_op:
        batch_op.alter_column("timeline", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("planned_ms")
    op.drop_table("class_timelines")
