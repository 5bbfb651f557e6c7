"""A first live class over the real server: console, phone and display."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets

from tests.conftest import LiveServer
from tests.helpers import command, join, join_code, open_class, sign_in


async def recv_until(ws: websockets.ClientConnection, type_: str) -> dict[str, Any]:
    """The next message of ``type_``, skipping others; gives up after 5 s."""
    async with asyncio.timeout(5):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == type_:
                return message


async def test_console_opens_a_class_a_phone_joins_and_start_reaches_every_screen(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    assert (await sign_in(client)).status_code == 303
    class_id = await open_class(client)
    code = await join_code(client, class_id)

    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        joined = await join(phone, code, "Alex")
        assert joined.status_code == 303
        assert joined.headers["location"] == f"/play/{class_id}"
        play = await phone.get(f"/play/{class_id}")
        assert play.status_code == 200 and "Alex" in play.text
        cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())

    url = f"{live_server.ws_url}/ws/classes/{class_id}"
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
        snapshot = await recv_until(ws, "snapshot")
        assert snapshot["phase"] == "lobby" and snapshot["seq"] == 0
        assert (await command(client, class_id, "start")).status_code == 200
        segment = await recv_until(ws, "segment")
        assert segment["segment"]["name"] == "Squats"
        assert segment["ends_at"] - segment["at"] == 4000
        cue = await recv_until(ws, "cue")
        assert cue["text"] == "one"
        assert cue["seq"] > segment["seq"]
