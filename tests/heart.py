"""A heart-rate test's class: a ten-minute climb, its console, one phone and a wall."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import httpx
import websockets

from classroom.domain.heart import encode_measurement
from tests.conftest import LiveServer
from tests.helpers import Message, command, join, join_code, open_class, sign_in

LONG = """\
title: Long ride
lead_in: 0
auto_cues: {countdown: false, halfway: false, next: false, last_round: false, lead_in: false}
blocks:
  - type: work
    name: Climb
    duration: 600
    exercise: {name: Climb}
    score: reps
"""


def database(server: LiveServer) -> str:
    return server.settings.database_url.removeprefix("sqlite+aiosqlite:///")


def rows(server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database(server)) as db:
        return list(db.execute(sql))


class Ride:
    """A started class with one phone (Robin) and a wall."""

    def __init__(self, server: LiveServer, console: httpx.AsyncClient) -> None:
        self.server = server
        self.console = console
        self.id = 0
        self.cookie = ""

    async def open(self, *, start: bool = True) -> Ride:
        await sign_in(self.console)
        self.id = await open_class(self.console)
        code = await join_code(self.console, self.id)
        async with httpx.AsyncClient(base_url=self.server.base_url) as phone:
            assert (await join(phone, code, "Robin")).status_code == 303
            self.cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
        if start:
            assert (await command(self.console, self.id, "start")).status_code == 200
        return self

    def url(self, query: str = "") -> str:
        return f"{self.server.ws_url}/ws/classes/{self.id}" + (f"?{query}" if query else "")

    def phone(self) -> websockets.connect:
        return websockets.connect(self.url(), additional_headers={"Cookie": self.cookie})

    def wall(self) -> websockets.connect:
        tokens = self.server.server.config.app.state.tokens  # type: ignore[attr-defined]
        return websockets.connect(self.url(f"token={tokens.display(self.id)}"))


async def ask(ws: websockets.ClientConnection, message: Message) -> Message:
    """Send ``message`` and return the reply that echoes its id."""
    await ws.send(json.dumps(message))
    async with asyncio.timeout(5):
        while True:
            reply: Message = json.loads(await ws.recv())
            if reply.get("id") == message["id"]:
                return reply


def hr(n: int, bpm: int, **layout: Any) -> Message:
    return {"type": "hr", "id": n, "data": encode_measurement(bpm, **layout).hex()}
