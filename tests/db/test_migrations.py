"""Migrations: they run both ways on SQLite and PostgreSQL, and agree with the models.

``upgrade``/``downgrade`` are blocking and start their own event loop, so the
tests that call them are plain functions; database reads go through the same
async engine the server uses (``make_engine``) with ``run_sync``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from classroom.cli import main
from classroom.db.engine import make_engine
from classroom.db.migrate import downgrade, head_revision, upgrade
from classroom.db.models import NAMING, Base

T = TypeVar("T")

TABLES = set(Base.metadata.tables)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database: a SQLite file in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


def with_connection(url: str, fn: Callable[[Connection], T]) -> T:
    """Run ``fn`` on a sync view of a connection from the app's own async engine."""

    async def run() -> T:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def differences(metadata: MetaData) -> Callable[[Connection], list[Any]]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    return compare


def leftover_postgres_objects(connection: Connection) -> list[str]:
    """Relations (tables, indexes, sequences, views) and types left in ``public``."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' "
            "UNION ALL "
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0"
        )
    )
    return sorted(str(name) for (name,) in rows)


# -- upgrade and downgrade ------------------------------------------------------------


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    head = head_revision()
    assert head is not None

    upgrade(database_url)
    assert with_connection(database_url, table_names) == TABLES | {"alembic_version"}
    assert with_connection(database_url, current_revision) == head

    downgrade(database_url)
    assert with_connection(database_url, table_names) == {"alembic_version"}
    assert with_connection(database_url, current_revision) is None
    if database_url.startswith("postgresql"):
        # No index, sequence or type outlives its table: only the version table is left.
        left = with_connection(database_url, leftover_postgres_objects)
        assert left == ["alembic_version", "alembic_version_pkc"]

    upgrade(database_url)
    assert with_connection(database_url, table_names) == TABLES | {"alembic_version"}
    assert with_connection(database_url, current_revision) == head
    assert with_connection(database_url, differences(Base.metadata)) == []


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    assert with_connection(sqlite_url, current_revision) == head_revision()


# -- models and migrations agree ----------------------------------------------------


def test_models_match_migrations(database_url: str) -> None:
    upgrade(database_url)
    assert with_connection(database_url, differences(Base.metadata)) == []


def drifted_metadata() -> MetaData:
    """The models plus a new table, a new column and a longer string, as a model edit would."""
    metadata = MetaData(naming_convention=NAMING)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("badges", metadata, Column("id", Integer, primary_key=True))
    metadata.tables["participants"].append_column(Column("avatar", String(32), nullable=True))
    metadata.tables["teams"].c.colour.type = String(32)
    return metadata


def test_the_comparison_reports_drift(database_url: str) -> None:
    """The models-match test can fail: a model change without a migration shows up."""
    upgrade(database_url)
    diffs = with_connection(database_url, differences(drifted_metadata()))

    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    kinds = {(d[0], getattr(d[1], "name", None) or d[2]) for d in flat}
    assert ("add_table", "badges") in kinds
    assert ("add_column", "participants") in kinds
    changed_types = [d for d in flat if d[0] == "modify_type"]
    assert [(d[2], d[3], d[6].length) for d in changed_types] == [("teams", "colour", 32)]
    assert len(flat) == 3, flat

    # And a table the models drop but the database still has.
    fewer = MetaData(naming_convention=NAMING)
    for name, table in Base.metadata.tables.items():
        if name != "scores":
            table.to_metadata(fewer)
    removed = with_connection(database_url, differences(fewer))
    assert {(d[0], d[1].name) for d in removed} == {
        ("remove_table", "scores"),
        ("remove_index", "ix_scores_class_id"),
    }


# -- the SQLite engine ------------------------------------------------------------------


async def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        # Two connections at once: the pragmas are set on every new connection.
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
                assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                assert (await connection.exec_driver_sql("PRAGMA synchronous")).scalar() == 1
                assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 15000
    finally:
        await engine.dispose()


async def test_sqlite_enforces_foreign_keys(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                await connection.execute(
                    text(
                        "INSERT INTO class_events (class_id, seq, type, at_ms, payload) "
                        "VALUES (4242, 1, 'start', 0, '{}')"
                    )
                )
    finally:
        await engine.dispose()


# -- classroom migrate ------------------------------------------------------------------


def test_classroom_migrate_brings_a_fresh_database_to_head(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLASSROOM_SECRET_KEY", raising=False)

    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out

    head = head_revision()
    assert head is not None
    assert with_connection(sqlite_url, current_revision) == head
    assert with_connection(sqlite_url, table_names) == TABLES | {"alembic_version"}

    # Running it again on an up-to-date database changes nothing.
    assert main(["migrate"]) == 0
    assert with_connection(sqlite_url, current_revision) == head
