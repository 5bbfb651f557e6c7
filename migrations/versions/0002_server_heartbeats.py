"""server heartbeats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:08:45.596657
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("alive_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
