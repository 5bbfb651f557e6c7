"""The console's "Wall sound on/off": a `sound` message relayed to the class's displays.

It is a setting of the wall displays, not a class event: it has no ``seq``, only
displays hear it, and a bad value or a screen other than the instructor's is
refused with an error code and relays nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from classroom.web.sockets import FORBIDDEN, SOUND_NEEDS_ON
from tests.conftest import LiveServer
from tests.helpers import until
from tests.web.test_protocol import Class


@pytest.fixture
async def cls(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Class]:
    yield await Class(live_server, client).open()


def instructor(cls: Class) -> websockets.connect:
    cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    return websockets.connect(cls.url(), additional_headers={"Cookie": cookie})


async def ask(ws: websockets.ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message`` and return the answer to it (an ack or an error)."""
    await ws.send(json.dumps(message))
    return await until(ws, "ack", "error")


async def next_after_ping(ws: websockets.ClientConnection) -> dict[str, Any]:
    """The next message that is not a heartbeat: a `sound`, or our own ping's pong."""
    await ws.send(json.dumps({"type": "ping", "id": "check", "t": 0}))
    return await until(ws, "sound", "pong")


async def test_the_instructor_switches_the_walls_sound_and_only_displays_hear_it(
    cls: Class,
) -> None:
    async with instructor(cls) as console, cls.display() as wall, cls.phone() as phone:
        for ws in (console, wall, phone):
            await until(ws, "snapshot")
        for on in (True, False):
            answer = await ask(console, {"type": "sound", "id": f"s-{on}", "on": on})
            assert answer == {"type": "ack", "id": f"s-{on}", "displays": 1}
            relayed = await until(wall, "sound")
            assert relayed == {"type": "sound", "on": on}  # no seq: not a class event
        assert (await next_after_ping(phone))["type"] == "pong"
        assert (await next_after_ping(console))["type"] == "pong"
    async with instructor(cls) as console:
        await until(console, "snapshot")
        assert (await ask(console, {"type": "sound", "on": True}))["displays"] == 0


@pytest.mark.parametrize("value", ["on", 1, 0, None, [], {"on": True}])
async def test_a_sound_message_with_a_bad_value_is_refused_and_relays_nothing(
    cls: Class, value: object
) -> None:
    async with instructor(cls) as console, cls.display() as wall:
        await until(console, "snapshot")
        await until(wall, "snapshot")
        answer = await ask(console, {"type": "sound", "id": "bad", "on": value})
        assert answer == {
            "type": "error",
            "code": "bad_field",
            "message": SOUND_NEEDS_ON,
            "id": "bad",
        }
        missing = await ask(console, {"type": "sound", "id": "none"})
        assert missing["code"] == "bad_field" and missing["id"] == "none"
        assert (await next_after_ping(wall))["type"] == "pong"
        # The socket is still good.
        assert (await ask(console, {"type": "sound", "id": "ok", "on": True}))["type"] == "ack"


async def test_only_the_instructor_may_switch_the_walls_sound(cls: Class) -> None:
    async with cls.phone() as phone, cls.display() as wall:
        await until(phone, "snapshot")
        await until(wall, "snapshot")
        for ws in (phone, wall):
            answer = await ask(ws, {"type": "sound", "id": "x", "on": True})
            assert answer == {
                "type": "error",
                "code": "forbidden",
                "message": FORBIDDEN["sound"],
                "id": "x",
            }
        assert (await next_after_ping(wall))["type"] == "pong"
