"""Display links of a class, each revocable on its own

A class's wall display link used to be a token naming only the class, so the
only way to take one back was to change the server's secret, which took back
every link of every class. Each link now has a row, named by its token.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "display_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name=op.f("fk_display_links_class_id_classes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_display_links")),
    )
    op.create_index(op.f("ix_display_links_class_id"), "display_links", ["class_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_display_links_class_id"), table_name="display_links")
    op.drop_table("display_links")
