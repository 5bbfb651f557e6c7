"""PostgreSQL fixtures: a throwaway database per test, dropped afterwards.

The server comes from CLASSROOM_TEST_POSTGRES_URL (default: the local server,
user postgres, database ``test``); that database is only used to create and
drop ``classroom_test_<hex>`` databases. Without CI a missing server skips the
test, saying why; with CI=true it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from classroom.db.migrate import upgrade
from tests.conftest import need_service

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT = 5


def postgres_base_url() -> URL:
    return make_url(os.environ.get("CLASSROOM_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


async def _admin(base: URL, *statements: str) -> None:
    """Run ``statements`` outside any transaction (CREATE/DROP DATABASE need that)."""
    engine = create_async_engine(
        base, isolation_level="AUTOCOMMIT", connect_args={"timeout": CONNECT_TIMEOUT}
    )
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _server_version(base: URL) -> int:
    engine = create_async_engine(base, connect_args={"timeout": CONNECT_TIMEOUT})
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SHOW server_version_num"))
    finally:
        await engine.dispose()
    return int(version)


@pytest.fixture(scope="session")
def postgres_server() -> tuple[URL, int]:
    """The admin URL and server version, checked once per run (skip or fail if unreachable)."""
    base = postgres_base_url()
    try:
        version = asyncio.run(_server_version(base))
    except (OSError, DBAPIError) as exc:
        need_service(f"PostgreSQL at {base.render_as_string(hide_password=True)}", exc)
    return base, version


@pytest.fixture
def postgres_url(postgres_server: tuple[URL, int]) -> Iterator[str]:
    """The URL of a fresh, empty database of its own, dropped after the test."""
    base, version = postgres_server
    name = f"classroom_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if version >= 130000 else ""
        asyncio.run(
            _admin(
                base,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
                f'DROP DATABASE IF EXISTS "{name}"{force}',
            )
        )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, migrated_url: str) -> str:
    """A migrated database, once SQLite and once PostgreSQL."""
    if request.param == "sqlite":
        return migrated_url
    url: str = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url
