"""The server's log keeps screen links' tokens out: they open a class's wall or a phone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import SECRET
from tests.helpers import open_class, sign_in
from tests.processes import Server, prepared


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Server]:
    server = prepared(tmp_path)
    server.log = tmp_path / "server.log"
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_display_and_participant_tokens_never_reach_the_log(logged: Server) -> None:
    async with httpx.AsyncClient(base_url=logged.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        page = (await console.get(f"/console/classes/{class_id}")).text
        token = page.split("?token=", 1)[1].split('"', 1)[0]
        assert len(token) > 20
        assert (await console.get(f"/display/{class_id}?token={token}")).status_code == 200
        wrong = await console.get(f"/display/{class_id}?sound=on&token={token}x&lang=en")
        assert wrong.status_code == 403
        async with websockets.connect(
            f"ws://127.0.0.1:{logged.port}/ws/classes/{class_id}?token={token}"
        ) as ws:
            await ws.recv()
    await asyncio.sleep(0.3)
    assert logged.log is not None
    log = logged.log.read_text()
    assert token not in log and token[:20] not in log and SECRET not in log
    assert "Traceback" not in log and "Logging error" not in log
    assert f"GET /display/{class_id}?token=*** HTTP/1.1" in log
    assert f"GET /display/{class_id}?sound=on&token=***&lang=en HTTP/1.1" in log


async def test_a_request_abandoned_mid_body_leaves_no_traceback(logged: Server) -> None:
    # htmx drops a builder check that a newer one supersedes: the browser closes the
    # request while its body is on the way. Nobody waits for an answer; the log has
    # nothing to say about it.
    async with httpx.AsyncClient(base_url=logged.base_url) as console:
        await sign_in(console)
        token = (await console.get("/console/routines/new")).text
        csrf = token.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        cookies = "; ".join(f"{k}={v}" for k, v in console.cookies.items())
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", logged.port)
        body = f"csrf_token={csrf}&title=Half".encode()
        writer.write(
            b"POST /console/routines/check HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{logged.port}\r\nOrigin: {logged.base_url}\r\n".encode()
            + f"Cookie: {cookies}\r\nHX-Request: true\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body) + 500}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()  # gone before the rest of the body
        await writer.wait_closed()
    await asyncio.sleep(0.5)
    assert (await asyncio.to_thread(httpx.get, f"{logged.base_url}/healthz")).status_code == 200
    assert logged.log is not None
    log = logged.log.read_text()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log
