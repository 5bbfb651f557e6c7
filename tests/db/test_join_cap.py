"""A class's participant cap holds when phones join at once, on SQLite and PostgreSQL.

Joins of one class take turns on the class's row, so the count the cap is checked
against is exact: a burst of phones fills the class to the cap and no further.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.migrate import upgrade
from classroom.db.models import Participant
from classroom.web.participants import CLASS_FULL
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import join_code, open_class, sign_in
from tests.web.test_joining import join_as, shown

CAP = 5
PHONES = 12


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def capped_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A server capping classes at :data:`CAP`, on SQLite or a throwaway PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url = str(request.getfixturevalue(fixture))
    upgrade(url)
    asyncio.run(seed(url))
    yield from run_server(settings_for(url, tmp_path, max_participants=CAP))


async def participants(url: str) -> int:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        count = await db.scalar(select(func.count()).select_from(Participant))
    await engine.dispose()
    return int(count or 0)


async def test_a_burst_of_joins_fills_the_class_to_its_cap(capped_server: LiveServer) -> None:
    base = capped_server.base_url
    async with httpx.AsyncClient(base_url=base) as console:
        await sign_in(console)
        code = await join_code(console, await open_class(console))

    async def join(i: int) -> httpx.Response:
        headers = {"X-Forwarded-For": f"10.0.{i}.1"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as phone:
            return await join_as(phone, code, f"Phone {i}")

    answers = await asyncio.gather(*(join(i) for i in range(PHONES)))
    assert sorted(a.status_code for a in answers) == [303] * CAP + [403] * (PHONES - CAP)
    for refused in (a for a in answers if a.status_code == 403):
        assert shown(CLASS_FULL.format(cap=CAP)) in refused.text
    assert await participants(capped_server.settings.database_url) == CAP
