"""Joining without an account has limits: a rate per address, and an optional cap per class.

Each phone sends its address in ``X-Forwarded-For``, which the test server believes
from 127.0.0.1 (see tests/web/test_sign_in_throttle.py for proxies it doesn't trust).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from classroom.web.participants import CLASS_FULL, JOINS_TOO_FAST
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.web.test_joining import Room, join_as, people, shown

GYM_WIFI, NEIGHBOUR = "192.0.2.10", "198.51.100.20"


def phone_at(room: Room, address: str) -> httpx.AsyncClient:
    phone = room.phone()
    phone.headers["X-Forwarded-For"] = address
    return phone


def limited(migrated_url: str, tmp_path: Path, **limits: int) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url))
    yield from run_server(settings_for(migrated_url, tmp_path, **limits))


@pytest.fixture
def rate_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from limited(migrated_url, tmp_path, joins_per_minute=5)


@pytest.fixture
def capped_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    yield from limited(migrated_url, tmp_path, max_participants=3)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LiveServer:
    """The server fixture the test names as its parameter."""
    found: LiveServer = request.getfixturevalue(request.param)
    return found


@pytest.fixture
async def room_on(server: LiveServer) -> AsyncIterator[Room]:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        room = await Room(server, console).open()
        yield room
        await room.close()


@pytest.mark.parametrize("server", ["rate_server"], indirect=True)
async def test_joins_from_one_address_past_the_rate_are_refused(room_on: Room) -> None:
    room = room_on
    for i in range(5):
        joined = await join_as(phone_at(room, GYM_WIFI), room.code, f"Phone {i}")
        assert joined.status_code == 303, joined.text[:300]
    before = people(room.server)
    refused = await join_as(phone_at(room, GYM_WIFI), room.code, "Bot")
    assert refused.status_code == 429
    assert shown(JOINS_TOO_FAST) in refused.text
    assert 'value="Bot"' in refused.text  # the form is filled in again
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert people(room.server) == before
    # Another address is not held back by this one.
    joined = await join_as(phone_at(room, NEIGHBOUR), room.code, "Neighbour")
    assert joined.status_code == 303
    assert [p[2] for p in people(room.server)][-1] == "Neighbour"


@pytest.mark.parametrize("server", ["live_server"], indirect=True)
async def test_the_default_rate_lets_a_full_class_join_from_one_address(room_on: Room) -> None:
    """A gym behind one NAT address, or a proxy not set up to forward it, still fills a
    class of 60 in a minute, with room for retries; the next join past the rate waits."""
    room = room_on
    rate = room.server.settings.joins_per_minute
    assert rate >= 60
    gate = asyncio.Semaphore(10)

    async def join(i: int) -> int:
        async with gate:
            return (await join_as(phone_at(room, GYM_WIFI), room.code, f"Phone {i}")).status_code

    assert await asyncio.gather(*(join(i) for i in range(rate))) == [303] * rate
    assert len(people(room.server)) == rate
    refused = await join_as(phone_at(room, GYM_WIFI), room.code, "One too many")
    assert refused.status_code == 429 and len(people(room.server)) == rate


@pytest.mark.parametrize("server", ["capped_server"], indirect=True)
async def test_a_full_class_refuses_the_next_participant(room_on: Room) -> None:
    room = room_on
    phones = [phone_at(room, f"10.0.0.{i}") for i in range(3)]
    for i, phone in enumerate(phones):
        assert (await join_as(phone, room.code, f"Phone {i}")).status_code == 303
    before = people(room.server)
    refused = await join_as(phone_at(room, "10.0.0.99"), room.code, "Fourth")
    assert refused.status_code == 403
    assert shown(CLASS_FULL.format(cap=3)) in refused.text
    assert people(room.server) == before
    # Someone already in the class gets back in (a reload, a second scan of the QR).
    again = await join_as(phones[0], room.code, "Phone 0")
    assert again.status_code == 303 and people(room.server) == before
    page = await phones[0].get(again.headers["location"])
    assert re.search(r"Phone 0", page.text)
