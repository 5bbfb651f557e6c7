"""The live class engine on the real server: concurrent consoles, crashes, history."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.classes import ClassStore
from classroom.live import collector
from tests.conftest import LiveServer
from tests.helpers import command, csrf, join, join_code, open_class, sign_in


def cookie_header(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}


async def next_of(ws: websockets.ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(8):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] in types:
                return message


async def post_command(
    client: httpx.AsyncClient, class_id: int, token: str, **fields: str
) -> httpx.Response:
    return await client.post(
        f"/console/classes/{class_id}/commands",
        data={"csrf_token": token, **fields},
        headers={"HX-Request": "true"},
    )


async def test_two_consoles_pressing_next_on_the_same_segment_advance_it_once(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    async with httpx.AsyncClient(base_url=live_server.base_url) as tablet:
        await sign_in(tablet)
        await command(client, class_id, "start")
        tokens = [await csrf(c, f"/console/classes/{class_id}") for c in (client, tablet)]
        answers = await asyncio.gather(
            post_command(client, class_id, tokens[0], command="next", from_segment="0"),
            post_command(tablet, class_id, tokens[1], command="next", from_segment="0"),
        )
    assert sorted(a.status_code for a in answers) == [200, 409]
    refused = next(a for a in answers if a.status_code == 409)
    assert "already moved on to segment 2" in refused.text
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers=cookie_header(client)
    ) as ws:
        snapshot = await next_of(ws, "snapshot")
    assert snapshot["segment"]["index"] == 1


async def test_every_control_reaches_the_screens(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers=cookie_header(client)
    ) as ws:
        await next_of(ws, "snapshot")
        token = await csrf(client, f"/console/classes/{class_id}")
        assert (await post_command(client, class_id, token, command="start")).status_code == 200
        assert (await next_of(ws, "segment"))["segment"]["index"] == 0
        assert (await post_command(client, class_id, token, command="pause")).status_code == 200
        assert (await next_of(ws, "phase"))["phase"] == "paused"
        await post_command(client, class_id, token, command="extend", seconds="30")
        extended = await next_of(ws, "segment")
        assert extended["reason"] == "extend" and 30_000 < extended["remaining_ms"] <= 34_000
        await post_command(client, class_id, token, command="resume")
        assert (await next_of(ws, "phase"))["phase"] == "running"
        assert (await next_of(ws, "segment"))["reason"] == "resume"
        await post_command(client, class_id, token, command="next", from_segment="0")
        assert (await next_of(ws, "segment"))["segment"]["name"] == "Rest"
        await post_command(client, class_id, token, command="previous", from_segment="1")
        assert (await next_of(ws, "segment"))["segment"]["name"] == "Squats"
        await post_command(client, class_id, token, command="shout", text="Blue team, push!")
        assert (await next_of(ws, "shout"))["text"] == "Blue team, push!"
        for bad, message in (
            ({"command": "extend", "seconds": "lots"}, "seconds must be a whole number"),
            ({"command": "extend"}, "seconds is missing"),
            ({"command": "shout", "text": "   "}, "a shout-out needs some text"),
            ({"command": "mark_finished"}, "unknown command"),
        ):
            answer = await post_command(client, class_id, token, **bad)
            assert answer.status_code == 400 and message in answer.text
        await post_command(client, class_id, token, command="finish")
        assert (await next_of(ws, "phase"))["phase"] == "finished"

    history = await client.get("/console/history")
    row = re.search(rf'<tr data-class="{class_id}">(.*?)</tr>', history.text, re.S)
    assert row is not None and "finished" in row.group(1)
    ran = re.search(r"<td data-ran>(\d+):(\d\d)</td>", row.group(1))
    assert ran is not None and int(ran.group(1)) * 60 + int(ran.group(2)) < 10


async def test_a_socket_command_from_the_console_is_acknowledged(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers=cookie_header(client)
    ) as ws:
        await next_of(ws, "snapshot")
        await ws.send(json.dumps({"type": "command", "id": "c1", "name": "start"}))
        assert (await next_of(ws, "ack"))["id"] == "c1"
        await ws.send(json.dumps({"type": "command", "id": "c2", "name": "jump", "index": 9}))
        refused = await next_of(ws, "error")
        assert refused["code"] == "rejected" and "there is no segment 10" in refused["message"]


async def test_a_crashed_class_restarts_from_its_last_saved_state_and_says_so(
    live_server: LiveServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(client)
    registry = live_server.server.config.app.state.registry  # type: ignore[attr-defined]
    store: ClassStore = registry.store
    real_persist = store.persist
    failures = []

    async def persist_failing_once(*args: Any) -> list[int]:  # same signature as persist
        if not failures:
            failures.append(args)
            raise RuntimeError("disk full")
        return await real_persist(*args)

    # Before the class opens: its actor starts as it opens (its first write is Start's).
    monkeypatch.setattr(store, "persist", persist_failing_once)
    class_id = await open_class(client)
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers=cookie_header(client)
    ) as ws:
        await next_of(ws, "snapshot")
        first = await command(client, class_id, "start")
        assert first.status_code == 503 and "restarting from its last saved state" in first.text
        notice = await next_of(ws, "notice")
        assert notice["code"] == "class_restarted"
        snapshot = await next_of(ws, "snapshot")
        assert snapshot["phase"] == "lobby"  # the failed start was never saved, so never sent
        assert (await command(client, class_id, "start")).status_code == 200
        assert (await next_of(ws, "segment"))["segment"]["name"] == "Squats"
    assert len(failures) == 1


async def test_the_console_sees_joins_live(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    code = await join_code(client, class_id)
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers=cookie_header(client)
    ) as ws:
        await next_of(ws, "snapshot")
        async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
            await join(phone, code, "Kim")
        assert (await next_of(ws, "roster"))["count"] == 1


async def test_the_collector_hears_when_a_class_starts_and_when_it_ends(
    live_server: LiveServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[str | int] = []
    ended = asyncio.Event()
    here = asyncio.get_running_loop()

    def class_ended(live: Callable[[], int]) -> None:  # on the server's thread
        heard.append(live())
        here.call_soon_threadsafe(ended.set)

    monkeypatch.setattr(collector, "class_started", lambda: heard.append("started"))
    monkeypatch.setattr(collector, "class_ended", class_ended)
    await sign_in(client)
    class_id = await open_class(client)
    assert heard == []  # a class in its lobby has not started
    await command(client, class_id, "start")
    assert heard == ["started"]
    await command(client, class_id, "pause")
    await command(client, class_id, "resume")
    assert heard == ["started"]  # once per class, not per phase
    await command(client, class_id, "finish")
    await asyncio.wait_for(ended.wait(), 5)
    assert heard == ["started", 0]  # ended, and no class is live any more
