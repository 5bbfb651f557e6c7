"""Each live class's owner: a lease with a fencing token, and the class's epoch

With several processes, one of them owns each live class: it runs the class's
clock and is the only one that writes its events and scores. The owner is named
on the class's row with a fencing token that goes up at every change of owner;
every write of the owner names its token, so one that was deposed can't write.
A process is alive while its heartbeat is fresh; the heartbeat also carries a
digest of the process's secret key, so a process started with another key is
refused. The epoch names the class's
event history: screens resume within one epoch, on any process.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:50:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("classes") as batch:
        batch.add_column(sa.Column("owner_node", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("owner_token", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("released_at_ms", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("epoch", sa.String(length=16), nullable=False, server_default="")
        )
    with op.batch_alter_table("heartbeats") as batch:
        batch.add_column(sa.Column("secret_check", sa.String(length=16), nullable=True))
    classes = sa.table("classes", sa.column("id", sa.Integer), sa.column("epoch", sa.String))
    bind = op.get_bind()
    for (class_id,) in bind.execute(sa.select(classes.c.id)).all():
        bind.execute(
            classes.update().where(classes.c.id == class_id).values(epoch=secrets.token_hex(4))
        )


def downgrade() -> None:
    with op.batch_alter_table("heartbeats") as batch:
        batch.drop_column("secret_check")
    with op.batch_alter_table("classes") as batch:
        batch.drop_column("epoch")
        batch.drop_column("released_at_ms")
        batch.drop_column("owner_token")
        batch.drop_column("owner_node")
