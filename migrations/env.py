"""Alembic environment: runs migrations over an async engine through ``run_sync``.

The URL comes from the Alembic config (set by ``classroom migrate``), else from
CLASSROOM_DATABASE_URL, else the default SQLite file. A caller may also hand in
an open connection as ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import context
from sqlalchemy.engine import Connection

from classroom.config import default_database_url
from classroom.db.engine import make_engine
from classroom.db.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return os.environ.get("CLASSROOM_DATABASE_URL") or default_database_url(
        Path(os.environ.get("CLASSROOM_DATA_DIR", "data"))
    )


def run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration rebuilds a table (copy, drop, rename); with foreign keys on,
        # the drop would cascade to child rows. The pragma only works outside a
        # transaction, so it is set first, and the keys are checked before committing.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def run_async() -> None:
    engine = make_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
        await connection.commit()
    await engine.dispose()


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    given = config.attributes.get("connection")
    if given is not None:
        run_with(given)
    else:
        asyncio.run(run_async())
