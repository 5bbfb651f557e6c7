"""Socket floods: one token's thousand sockets, an address's, and a process near its file limit.

Sockets over a limit are refused before they are accepted (HTTP 429, or 503 near
the process's file-descriptor limit), and everyone else carries on: another
phone's scores are acknowledged, the instructor's commands are applied, the
class keeps its clock and its database.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import websockets

from classroom.hub.admission import SocketLimits, socket_budget
from tests.conftest import LiveServer, run_server, seed, settings_for
from tests.helpers import join, join_code, open_class, sign_in, until
from tests.processes import Server, prepared

FLOOD = 1_000


DROPPED = 0  # the connection ended before any HTTP answer (an overloaded server may do that)


async def try_socket(url: str, **kwargs: Any) -> websockets.ClientConnection | int:
    """An open socket, or the HTTP status its handshake was refused with (0: dropped)."""
    try:
        return await websockets.connect(url, open_timeout=10, **kwargs)
    except websockets.InvalidStatus as refused:
        return refused.response.status_code
    except (websockets.InvalidMessage, OSError, TimeoutError):
        return DROPPED


async def flood(
    url: str, count: int, *, at_once: int = 100, **kwargs: Any
) -> list[websockets.ClientConnection | int]:
    gate = asyncio.Semaphore(at_once)

    async def one() -> websockets.ClientConnection | int:
        async with gate:
            return await try_socket(url, **kwargs)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def cookie_of(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}


async def joined(server: LiveServer | Server, code: str, nickname: str) -> httpx.AsyncClient:
    phone = httpx.AsyncClient(base_url=server.base_url)
    assert (await join(phone, code, nickname)).status_code == 303
    return phone


async def test_a_thousand_sockets_from_one_token_are_refused_past_the_limit(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    await sign_in(client)
    class_id = await open_class(client)
    code = await join_code(client, class_id)
    url = f"{live_server.ws_url}/ws/classes/{class_id}"
    attacker, phone = (
        await joined(live_server, code, "Mallory"),
        await joined(live_server, code, "Robin"),
    )
    limit = live_server.settings.socket_limits.per_participant
    async with (
        websockets.connect(url, additional_headers=cookie_of(client)) as console,
        websockets.connect(url, additional_headers=cookie_of(phone)) as ws,
    ):
        await until(console, "snapshot")
        await until(ws, "snapshot")
        outcomes = await flood(url, FLOOD, additional_headers=cookie_of(attacker))
        opened = [o for o in outcomes if not isinstance(o, int)]
        assert len(opened) == limit
        assert sorted({o for o in outcomes if isinstance(o, int)}) == [429]
        # Everyone else carries on, while the attacker's sockets are still open.
        await console.send(json.dumps({"type": "command", "id": "c1", "name": "start"}))
        assert (await until(console, "ack"))["id"] == "c1"
        await until(ws, "segment")
        await ws.send(
            json.dumps({"type": "score", "id": "r1", "segment": 0, "kind": "reps", "value": 1})
        )
        assert await until(ws, "ack") == {"type": "ack", "id": "r1", "duplicate": False}
        for socket in opened:
            await socket.close()
        # Closed sockets are given back: the token may connect again.
        again = await try_socket(url, additional_headers=cookie_of(attacker))
        assert not isinstance(again, int)
        await again.close()
    await attacker.aclose()
    await phone.aclose()


@pytest.fixture
def few_per_address(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url))
    limits = SocketLimits(per_address=3)
    yield from run_server(settings_for(migrated_url, tmp_path, socket_limits=limits))


async def test_an_address_gets_its_limit_of_sockets(few_per_address: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=few_per_address.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        url = f"{few_per_address.ws_url}/ws/classes/{class_id}"
        outcomes = await flood(url, 5, additional_headers=cookie_of(console))
    opened = [o for o in outcomes if not isinstance(o, int)]
    assert len(opened) == 3 and sorted(o for o in outcomes if isinstance(o, int)) == [429, 429]
    for socket in opened:
        await socket.close()


DESCRIPTORS = 200


@pytest.fixture
def starved(tmp_path: Path) -> Iterator[Server]:
    """``classroom serve`` in a process that may open only 200 files."""
    server = prepared(tmp_path)
    server.env["CLASSROOM_MAX_SOCKETS_PER_DISPLAY"] = "0"
    server.env["CLASSROOM_MAX_SOCKETS_PER_ADDRESS"] = "0"
    server.log = tmp_path / "server.log"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))

    server.start(before_exec=low_limit)
    try:
        yield server
    finally:
        server.stop()


async def test_near_the_file_limit_new_sockets_get_503_and_the_class_runs_on(
    starved: Server, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=starved.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        code = await join_code(console, class_id)
        phone = await joined(starved, code, "Robin")
        url = f"ws://127.0.0.1:{starved.port}/ws/classes/{class_id}"
        async with (
            websockets.connect(url, additional_headers=cookie_of(console)) as ws_console,
            websockets.connect(url, additional_headers=cookie_of(phone)) as ws,
        ):
            await until(ws_console, "snapshot")
            await until(ws, "snapshot")
            await ws_console.send(json.dumps({"type": "command", "id": "go", "name": "start"}))
            await until(ws_console, "ack")
            token_page = await console.get(f"/console/classes/{class_id}")
            token = token_page.text.split("token=", 1)[1].split('"', 1)[0]
            # A few at a time, as sockets pile up in a real flood: each handshake in
            # progress holds a descriptor too, beyond what the reserve is for.
            outcomes = await flood(f"{url}?token={token}", 2 * DESCRIPTORS, at_once=10)
            opened = [o for o in outcomes if not isinstance(o, int)]
            refused = [o for o in outcomes if isinstance(o, int)]
            assert refused and set(refused) <= {503, DROPPED} and 503 in refused
            # Two sockets were open already: the rest of the budget went to the flood.
            assert len(opened) == socket_budget(DESCRIPTORS) - 2
            # The class and its database carry on: a cue is saved and sent, a score stored.
            await until(ws, "cue")
            await ws.send(
                json.dumps({"type": "score", "id": "r1", "segment": 0, "kind": "reps", "value": 1})
            )
            assert (await until(ws, "ack"))["id"] == "r1"
            await ws_console.send(json.dumps({"type": "command", "id": "p", "name": "pause"}))
            assert (await until(ws_console, "ack"))["id"] == "p"
            for socket in opened:
                await socket.close()
        await phone.aclose()
    await asyncio.sleep(0.5)
    async with websockets.connect(url, additional_headers=cookie_of(console)) as again:
        assert (await until(again, "snapshot"))["phase"] == "paused"
    assert starved.process is not None and starved.process.poll() is None
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "unable to open database file" not in log


def test_serve_raises_its_soft_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    server = prepared(tmp_path)

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024))

    server.start(before_exec=low_soft_limit)
    try:
        assert server.process is not None
        limits = psutil.Process(server.process.pid).rlimit(psutil.RLIMIT_NOFILE)
        assert tuple(limits) == (1024, 1024)
    finally:
        server.stop()
