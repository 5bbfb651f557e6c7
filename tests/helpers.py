"""Small steps the web tests share: sign in, open a class, join it, read a socket."""

from __future__ import annotations

import asyncio
import html
import json
import re
from typing import Any

import httpx
import websockets

from classroom.db.routines import library_sources
from tests.conftest import INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    match = CSRF.search(page.text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient,
    email: str = INSTRUCTOR_EMAIL,
    password: str = INSTRUCTOR_PASSWORD,
) -> httpx.Response:
    token = await csrf(client, "/login")
    return await client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password, "next": "/console"},
    )


LIBRARY_TITLES = frozenset(source.title for source in library_sources())
"""The built-in routines every server started with ``classroom serve`` has."""
ROUTINE = re.compile(r'name="routine_id" value="(\d+)">\s*<span class="routine-title">([^<]*)<')


def routine_to_open(console_page: str) -> str:
    """The id of the test's routine on the console's page: the first not from the library."""
    routines = [(id, html.unescape(title)) for id, title in ROUTINE.findall(console_page)]
    routine_id = next((id for id, title in routines if title not in LIBRARY_TITLES), None)
    assert routine_id, f"no routine of the test's to open among {routines}"
    return routine_id


async def open_class(client: httpx.AsyncClient) -> int:
    """Open a class of the test's routine (the first not from the library); returns its id."""
    page = await client.get("/console")
    routine_id = routine_to_open(page.text)
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await client.post(
        "/console/classes", data={"csrf_token": token, "routine_id": routine_id}
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def join_code(client: httpx.AsyncClient, class_id: int) -> str:
    page = await client.get(f"/console/classes/{class_id}")
    match = re.search(r"data-join-code>([A-Z0-9]+)<", page.text)
    assert match
    return match.group(1)


async def command(client: httpx.AsyncClient, class_id: int, name: str) -> httpx.Response:
    token = await csrf(client, f"/console/classes/{class_id}")
    return await client.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": token, "command": name},
        headers={"HX-Request": "true"},
    )


async def join(
    client: httpx.AsyncClient, code: str, nickname: str, level: str = "standard"
) -> httpx.Response:
    token = await csrf(client, "/join")
    return await client.post(
        "/join", data={"csrf_token": token, "code": code, "nickname": nickname, "level": level}
    )


Message = dict[str, Any]


async def receive(ws: websockets.ClientConnection) -> Message:
    """The next message on ``ws`` (within 8 s)."""
    async with asyncio.timeout(8):
        message: Message = json.loads(await ws.recv())
        return message


async def until(ws: websockets.ClientConnection, *types: str) -> Message:
    """The next message on ``ws`` of one of ``types``, skipping others."""
    while True:
        message = await receive(ws)
        if message["type"] in types:
            return message
