"""Key the class event log by class and seq; on SQLite, store it without a rowid

Every cue inserts one row here. Keyed by an id with a unique (class_id, seq)
beside it, that insert wrote two b-trees, the table and the index; keyed by
(class_id, seq) itself, and on SQLite as a WITHOUT ROWID table, it writes one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "class_id, seq, type, at_ms, payload"


def _event_columns(*, with_id: bool) -> list[sa.Column[object]]:
    ids = [sa.Column("id", sa.Integer(), nullable=False)] if with_id else []
    return [
        *ids,
        sa.Column("class_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
    ]


def _foreign_key() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["class_id"],
        ["classes.id"],
        name=op.f("fk_class_events_class_id_classes"),
        ondelete="CASCADE",
    )


def _sqlite_swap() -> None:
    """SQLite can't change a primary key in place: copy into a new table, swap names."""
    op.execute(
        f"INSERT INTO _class_events_new ({_COLUMNS})"
        f" SELECT {_COLUMNS} FROM class_events ORDER BY class_id, seq"
    )
    op.drop_table("class_events")
    op.rename_table("_class_events_new", "class_events")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "_class_events_new",
            *_event_columns(with_id=False),
            _foreign_key(),
            sa.PrimaryKeyConstraint("class_id", "seq", name=op.f("pk_class_events")),
            sqlite_with_rowid=False,
        )
        _sqlite_swap()
        return
    op.drop_constraint(op.f("uq_class_events_class_id_seq"), "class_events", type_="unique")
    op.drop_constraint(op.f("pk_class_events"), "class_events", type_="primary")
    op.drop_column("class_events", "id")  # and its sequence with it
    op.create_primary_key(op.f("pk_class_events"), "class_events", ["class_id", "seq"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "_class_events_new",
            *_event_columns(with_id=True),
            _foreign_key(),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_class_events")),
            sa.UniqueConstraint("class_id", "seq", name=op.f("uq_class_events_class_id_seq")),
        )
        _sqlite_swap()
        return
    op.drop_constraint(op.f("pk_class_events"), "class_events", type_="primary")
    op.execute("ALTER TABLE class_events ADD COLUMN id SERIAL NOT NULL")
    op.create_primary_key(op.f("pk_class_events"), "class_events", ["id"])
    op.create_unique_constraint(
        op.f("uq_class_events_class_id_seq"), "class_events", ["class_id", "seq"]
    )
