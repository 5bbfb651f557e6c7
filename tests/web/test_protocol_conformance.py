"""The server does what docs/protocol.md says, for a client written from that page alone.

Each test here is one place where a client found the server and the page apart:
odd JSON, pings, lone surrogates, the lead-in, presence, the close after a
1013, the snapshot's position, oversized frames and numbers given as text.
Every bad input gets its answer with the socket kept, and leaves the server's
log without a traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from classroom.hub import screens as screens_module
from classroom.hub import wire
from classroom.hub.screens import CLOSE_TRY_AGAIN
from classroom.web.sockets import PING_NEEDS_ID, PING_NEEDS_T
from tests.conftest import DATA, LiveServer, run_server, seed, settings_for
from tests.helpers import Message, command, receive, until
from tests.hub.conftest import server_loop
from tests.hub.test_stalled_client import open_staller, read_until_close
from tests.web.test_protocol import Class, score_rows

# -- the server's log ----------------------------------------------------------------------


class ServerLog(logging.Handler):
    """What the server logs at WARNING and above (its own loggers and uvicorn's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [self.format(record) for record in self.records]

    def tracebacks(self) -> list[str]:
        return [line for line, r in zip(self.lines(), self.records, strict=True) if r.exc_info]

    def check(self, bad_inputs: int) -> None:
        """No traceback, and at most one line for each bad input."""
        assert self.tracebacks() == []
        assert len(self.records) <= bad_inputs, self.lines()


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    handler = ServerLog()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]  # uvicorn's don't propagate
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
async def cls(live_server: LiveServer, client: httpx.AsyncClient) -> AsyncIterator[Class]:
    yield await Class(live_server, client).open()


def console_socket(cls: Class) -> websockets.connect:
    cookie = "; ".join(f"{k}={v}" for k, v in cls.console.cookies.items())
    return websockets.connect(cls.url(), additional_headers={"Cookie": cookie})


def strict_json(text: str | bytes) -> Any:
    """Parse as JSON proper: NaN, Infinity and -Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"the server sent {constant}, which is not JSON: {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


async def answer(ws: websockets.ClientConnection, sent: str) -> Message:
    """Send ``sent`` as it is, and read the reply (skipping broadcasts), checking it is JSON."""
    await ws.send(sent)
    async with asyncio.timeout(8):
        while True:
            message: Message = strict_json(await ws.recv())
            if message["type"] in ("pong", "ack", "error"):  # not a broadcast or a class event
                return message


async def still_answers(ws: websockets.ClientConnection) -> None:
    reply = await answer(ws, json.dumps({"type": "ping", "id": "alive", "t": 1}))
    assert reply == {"type": "pong", "id": "alive", "t": 1, "server_now": reply["server_now"]}


# -- 11: deeply nested JSON -----------------------------------------------------------------


async def test_deeply_nested_json_is_bad_json_and_the_socket_stays_open(
    cls: Class, server_log: ServerLog
) -> None:
    deep = "[" * 1500 + "]" * 1500  # 3,000 bytes: under the size limit
    assert len(deep.encode()) < 4096
    in_a_ping = '{"type":"ping","id":"p","t":' + "[" * 1200 + "]" * 1200 + "}"
    in_a_score = '{"type":"score","id":"a","segment":0,"kind":"reps","value":' + "[" * 40
    in_a_score += "]" * 40 + "}"  # short: the path that takes scores as they arrive
    await command(cls.console, cls.id, "start")
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        for sent in (deep, "{" * 1500, in_a_ping, in_a_score):
            reply = await answer(ws, sent)
            assert reply["type"] == "error" and reply["code"] == "bad_json", (sent[:40], reply)
            assert "id" not in reply
        await still_answers(ws)
    assert score_rows(cls.server) == []
    server_log.check(bad_inputs=4)


# -- 12: NaN and Infinity are not JSON, in either direction ---------------------------------


@pytest.mark.parametrize("t", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
async def test_a_non_finite_number_is_refused_and_no_frame_carries_one(
    cls: Class, server_log: ServerLog, t: str
) -> None:
    async with cls.display() as ws:
        strict_json(await ws.recv())  # the snapshot
        reply = await answer(ws, '{"type":"ping","id":"p1","t":' + t + "}")
        assert reply["type"] == "error" and reply["code"] == "bad_json", reply
        reply = await answer(ws, '{"type":"ping","id":' + t + ',"t":1}')
        assert reply["type"] == "error" and reply["code"] == "bad_json", reply
        await still_answers(ws)
    with pytest.raises(ValueError, match="JSON"):
        wire.encode({"type": "pong", "id": "p1", "t": math.inf})
    server_log.check(bad_inputs=2)


# -- 13: a ping's fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ping",
    [
        {"id": "p1"},
        {"id": "p1", "t": "1764120000000"},
        {"id": "p1", "t": [1]},
        {"id": "p1", "t": None},
        {"id": "p1", "t": True},
        {"id": {}, "t": 1},
        {"id": [1], "t": 1},
        {"id": True, "t": 1},
        {"id": None, "t": 1},
        {"t": 1},
    ],
)
async def test_a_malformed_ping_gets_bad_field(
    cls: Class, server_log: ServerLog, ping: dict[str, Any]
) -> None:
    async with cls.display() as ws:
        await until(ws, "snapshot")
        reply = await answer(ws, json.dumps({"type": "ping", **ping}))
        assert reply["type"] == "error" and reply["code"] == "bad_field", reply
        assert reply["message"] in (PING_NEEDS_ID, PING_NEEDS_T)
        good_id = isinstance(ping.get("id"), str)
        assert reply.get("id") == (ping["id"] if good_id else None)
        assert ("id" in reply) == good_id
        await still_answers(ws)
    server_log.check(bad_inputs=1)


@pytest.mark.parametrize("ident", [6.5, -3, 0, 2**53, "", "p-1", "ü"])
async def test_a_pings_id_is_any_string_or_number_and_comes_back_as_sent(
    cls: Class, ident: str | float
) -> None:
    async with cls.display() as ws:
        await until(ws, "snapshot")
        reply = await answer(ws, json.dumps({"type": "ping", "id": ident, "t": 1.5}))
    assert reply["type"] == "pong" and reply["id"] == ident and reply["t"] == 1.5


# -- 14: a lone surrogate --------------------------------------------------------------------


async def test_a_lone_surrogate_is_refused_without_breaking_the_socket(
    cls: Class, server_log: ServerLog
) -> None:
    score = '{"type":"score","id":"\\ud800","segment":0,"kind":"reps","value":1}'
    in_the_value = '{"type":"score","id":"ok1","segment":0,"kind":"reps","undo":"\\udfff"}'
    paired = '{"type":"ping","id":"\\ud83d\\udcaa","t":1}'  # 💪, a proper pair
    async with cls.phone() as ws:
        await until(ws, "snapshot")
        in_the_lobby = await answer(ws, score)  # through the receive loop
        assert in_the_lobby["type"] == "error" and in_the_lobby["code"] == "bad_json"
        await command(cls.console, cls.id, "start")
        await until(ws, "segment")
        for sent in (score, in_the_value):  # taken as they arrive, while the class runs
            reply = await answer(ws, sent)
            assert reply["type"] == "error" and reply["code"] == "bad_json", reply
            assert "id" not in reply
        pong = await answer(ws, paired)
        assert pong["type"] == "pong" and pong["id"] == "💪"
        tap = {"type": "score", "id": "t1", "segment": 0, "kind": "reps", "value": 1}
        assert (await answer(ws, json.dumps(tap)))["type"] == "ack"
    async with console_socket(cls) as console:
        await until(console, "snapshot")
        shout = '{"type":"command","id":"s1","name":"shout","text":"go \\ud800"}'
        reply = await answer(console, shout)
        assert reply["type"] == "error" and reply["code"] == "bad_json", reply
        await still_answers(console)
    assert [row[1] for row in score_rows(cls.server)] == ["t1"]
    server_log.check(bad_inputs=4)


# -- 15: next during the lead-in -------------------------------------------------------------

LEAD_IN = (
    (DATA / "quick.yaml")
    .read_text()
    .replace("lead_in: 0", "lead_in: 10")
    .replace("lead_in: false", "lead_in: true")  # a lead-in counts down only with its cues
)


@pytest.fixture
def lead_in_server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(seed(migrated_url, [RoutineSource("lead-in", "Lead-in", "yaml", LEAD_IN)]))
    yield from run_server(settings_for(migrated_url, tmp_path))


async def test_next_during_the_lead_in_is_the_instructors_doing(lead_in_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=lead_in_server.base_url) as console:
        cls = await Class(lead_in_server, console).open()
        async with console_socket(cls) as ws:
            await until(ws, "snapshot")
            await ws.send(json.dumps({"type": "command", "id": "c1", "name": "start"}))
            counting = await until(ws, "phase")
            assert counting["phase"] == "countdown" and counting["reason"] == "instructor"
            await ws.send(json.dumps({"type": "command", "id": "c2", "name": "next"}))
            running = await until(ws, "phase")
            segment = await until(ws, "segment")
    assert running["phase"] == "running" and running["previous"] == "countdown"
    assert running["reason"] == "instructor"
    assert segment["segment"]["index"] == 0 and segment["reason"] == "next"
    assert running["at"] < counting["at"] + 10_000  # it did not wait for the lead-in to end


# -- 16: presence, at most once a second -----------------------------------------------------


async def test_presence_comes_at_most_once_a_second_from_the_moment_a_console_connects(
    cls: Class,
) -> None:
    async with cls.display() as wall:
        await until(wall, "snapshot")
        await asyncio.sleep(0.05)  # the update for the wall has gone out (to no console)
        phone = await cls.phone()
        await until(phone, "snapshot")  # the update for the phone waits its second
        await asyncio.sleep(0.3)
        connected = time.monotonic()
        async with phone, console_socket(cls) as console:
            arrivals: list[tuple[float, Message]] = []
            deadline = connected + 2.5
            while (left := deadline - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(left):
                        message = await receive(console)
                except TimeoutError:
                    break
                if message["type"] == "presence":
                    arrivals.append((time.monotonic(), message))
            async with cls.display():  # one more comes: the update waits its second
                while len(arrivals) < 2:
                    message = await until(console, "presence")
                    arrivals.append((time.monotonic(), message))
    assert arrivals[0][0] - connected < 1.2  # it hears at once, or within the second
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrivals)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert [m["displays"] for _, m in arrivals] == [1, 2]
    assert all(len(m["participants"]) == 1 for _, m in arrivals)


# -- 17: after a 1013 close ---------------------------------------------------------------------


async def on_server(server: LiveServer, function: Any) -> Any:
    """Run ``function()`` on the live server's loop; its result."""

    async def call() -> Any:
        return function()

    future = asyncio.run_coroutine_threadsafe(call(), server_loop(server))
    return await asyncio.wait_for(asyncio.wrap_future(future), 5)


def connections(server: LiveServer) -> int:
    return len(server.server.server_state.connections)


async def flood_until_closed(cls: Class, staller: socket.socket) -> float:
    """Broadcast to the class until the hub closes the staller; when it did (monotonic)."""
    hub = cls.server.state.hub
    port = staller.getsockname()[1]
    big = {"type": "shout", "text": "x" * 1000}

    def staller_screen() -> Any:
        for screen in hub.screens(cls.id):
            peer = screen._transport.get_extra_info("peername")
            if peer is not None and peer[1] == port:
                return screen
        return None

    screen = await on_server(cls.server, staller_screen)
    assert screen is not None, "the staller is not a screen of the class"
    for _ in range(400):
        await on_server(cls.server, lambda: hub.broadcast(cls.id, [big] * 4, roles=["display"]))
        if screen.closed:
            closed = time.monotonic()
            await asyncio.sleep(0.2)
            assert screen not in await on_server(cls.server, lambda: hub.screens(cls.id))
            return closed
        await asyncio.sleep(0.01)
    raise AssertionError("the staller was never closed")


async def test_a_screen_closed_with_1013_leaves_presence_at_once_and_its_connection_soon(
    cls: Class, monkeypatch: pytest.MonkeyPatch, server_log: ServerLog
) -> None:
    monkeypatch.setattr(screens_module, "MAX_BUFFERED_BYTES", 4096)
    path = f"/ws/classes/{cls.id}?token={cls.server.state.tokens.display(cls.id)}"
    async with console_socket(cls) as console:
        await until(console, "snapshot")
        baseline = connections(cls.server)
        # A display that reads again after its close, and answers it.
        answering = await asyncio.to_thread(open_staller, cls.server.port, path)
        present = await until(console, "presence")
        while present["displays"] != 1:
            present = await until(console, "presence")
        await flood_until_closed(cls, answering)
        gone = await until(console, "presence")
        while gone["displays"] != 0:
            gone = await until(console, "presence")
        code, _, _ = await asyncio.to_thread(read_until_close, answering, 10)
        assert code == CLOSE_TRY_AGAIN
        close = (CLOSE_TRY_AGAIN ^ 0x6162).to_bytes(2, "big")  # masked with "ab" (of "abcd")
        answering.sendall(b"\x88\x82abcd" + close)
        answered = time.monotonic()
        answering.settimeout(3)
        assert answering.recv(65536) == b""  # the server closed the connection
        assert time.monotonic() - answered < 2
        answering.close()
        # A display that never reads again: its connection goes a few seconds after the close.
        silent = await asyncio.to_thread(open_staller, cls.server.port, path)
        closed = await flood_until_closed(cls, silent)
        for _ in range(int(screens_module.CLOSE_TIMEOUT_S + 3) * 10):
            if connections(cls.server) <= baseline:
                break
            await asyncio.sleep(0.1)
        assert time.monotonic() - closed < screens_module.CLOSE_TIMEOUT_S + 2
        silent.close()
        await still_answers(console)
    server_log.check(bad_inputs=2)


# -- 18: where a class in the lobby is -------------------------------------------------------


async def test_a_snapshot_in_the_lobby_is_at_position_0(cls: Class) -> None:
    async with cls.display() as ws:
        snapshot = await until(ws, "snapshot")
    assert snapshot["phase"] == "lobby" and snapshot["segment"] is None
    assert snapshot["position_ms"] == 0 and snapshot["elapsed_ms"] == 0


# -- 19: a frame over 64 KiB -----------------------------------------------------------------


def send_slowly(port: int, path: str, size: int) -> tuple[str | None, int | None]:
    """Send one masked text frame of ``size`` bytes in pieces, as a slow uplink does; then read.

    What the client saw: the error its sending met (None: none), and the close code it read.
    """
    sock = open_staller(port, path)
    mask = os.urandom(4)
    frame = bytes((0x81, 0xFF)) + size.to_bytes(8, "big") + mask
    frame += bytes(byte ^ mask[i % 4] for i, byte in enumerate(b"x" * size))
    sent_error = None
    try:
        for start in range(0, len(frame), 8192):
            sock.sendall(frame[start : start + 8192])
            time.sleep(0.005)
    except OSError as error:
        sent_error = type(error).__name__
    try:
        code, _, _ = read_until_close(sock, 5)
    finally:
        sock.close()
    return sent_error, code


async def test_a_frame_over_64_kib_closes_the_socket_with_1009_every_time(
    cls: Class, server_log: ServerLog
) -> None:
    path = f"/ws/classes/{cls.id}?token={cls.server.state.tokens.display(cls.id)}"
    outcomes = [
        await asyncio.to_thread(send_slowly, cls.server.port, path, 100 * 1024) for _ in range(6)
    ]
    assert outcomes == [(None, 1009)] * 6, outcomes
    big = json.dumps({"type": "ping", "id": "p", "t": 1, "pad": "x" * 100 * 1024})
    for _ in range(3):  # a client that sends at once, and reads
        async with cls.display() as ws:
            await until(ws, "snapshot")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.send(big)
                async with asyncio.timeout(8):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with cls.display() as ws:
        await until(ws, "snapshot")
        await still_answers(ws)
    server_log.check(bad_inputs=9)


# -- 20: numbers are JSON numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"name": "jump", "index": "2"}, "index"),
        ({"name": "jump", "index": 2.0}, "index"),
        ({"name": "extend", "seconds": "30"}, "seconds"),
        ({"name": "next", "from_segment": "0"}, "from_segment"),
    ],
)
async def test_a_number_given_as_text_is_refused_in_commands_as_in_scores(
    cls: Class, server_log: ServerLog, fields: dict[str, Any], word: str
) -> None:
    await command(cls.console, cls.id, "start")
    async with console_socket(cls) as console:
        before = await until(console, "snapshot")
        reply = await answer(console, json.dumps({"type": "command", "id": "c1", **fields}))
        assert reply["type"] == "error" and reply["code"] == "rejected", reply
        assert reply["message"] == f"{word} must be a whole number" and reply["id"] == "c1"
        number = {k: int(v) if k != "name" else v for k, v in fields.items()}
        taken = await answer(console, json.dumps({"type": "command", "id": "c2", **number}))
        assert taken == {"type": "ack", "id": "c2"}  # the same command, with a number
        assert before["phase"] == "running"
    server_log.check(bad_inputs=1)
