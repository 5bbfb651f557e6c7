"""The heart-rate bridge's end: the strap simulator, the link to the server, the command.

The server's end is stood in for by a small ``websockets`` server on 127.0.0.1
that speaks the bridge protocol (classroom/bridge.py): it says hello, records
what the bridge sends, and refuses, closes or restarts when a test asks it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any, cast

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection as SyncConnection
from websockets.sync.server import serve as sync_serve

from classroom import bridge
from classroom.bridge import (
    NO_BLEAK,
    NO_ENDPOINT,
    REFUSED,
    BleakStraps,
    BridgeError,
    Reading,
    SimulatedStraps,
    StrapSource,
    bridge_url,
    run_bridge,
)
from classroom.cli import main
from classroom.domain.heart import encode_measurement, parse_measurement

TOKEN = "brt_s3cr3t-token-for-tests"
FAST = 0.05  # the interval and the pause before reconnecting, in these tests
HELLO = {"type": "hello", "room": "Spin Studio", "bridge": "Front desk Pi"}


async def no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


def stream_of(source: StrapSource) -> contextlib.aclosing[AsyncGenerator[Reading, None]]:
    """The source's readings, closed at the end of the block (sources are async generators)."""
    return contextlib.aclosing(cast(AsyncGenerator[Reading, None], source.readings()))


async def take(source: SimulatedStraps, count: int) -> list[Reading]:
    readings: list[Reading] = []
    async with stream_of(source) as stream:
        async for reading in stream:
            readings.append(reading)
            if len(readings) == count:
                break
    return readings


# -- the simulator ---------------------------------------------------------------------


async def test_simulated_readings_parse_and_are_heart_rates_people_have() -> None:
    readings = await take(SimulatedStraps(10, sleep=no_wait), 10 * 600)  # ten minutes
    assert {r.strap for r in readings} == {f"SIM-{n:02d}" for n in range(1, 11)}
    energy: dict[str, int] = {}
    for reading in readings:
        m = parse_measurement(reading.data)
        assert 40 <= m.bpm <= 200
        assert m.contact in (True, None)  # supported and detected, or not supported
        for rr in m.rr_ms:  # consistent with the heart rate
            assert 0.85 < rr / (60_000 / m.bpm) < 1.15
        if m.energy_kj is not None:
            assert m.energy_kj >= energy.get(reading.strap, 0)
            energy[reading.strap] = m.energy_kj
    assert energy and all(kj > 0 for kj in energy.values())


async def test_hearts_warm_up_then_swing_through_intervals() -> None:
    count = 8
    readings = await take(SimulatedStraps(count, seed=3, sleep=no_wait), count * 900)
    by_strap: dict[str, list[int]] = {}
    for reading in readings:
        by_strap.setdefault(reading.strap, []).append(parse_measurement(reading.data).bpm)
    for bpm in by_strap.values():
        assert all(55 <= b <= 85 for b in bpm[:10]), "a class starts at rest"
        worked = bpm[360:]  # from the sixth minute
        assert max(worked) >= 125
        assert max(worked) - min(worked) >= 12, "work and recovery"
        assert all(abs(a - b) <= 6 for a, b in itertools.pairwise(bpm)), "no jumps"
    peaks = [max(bpm) for bpm in by_strap.values()]
    assert max(peaks) - min(peaks) >= 10, "each person works at a level of their own"


async def test_the_straps_are_of_several_kinds() -> None:
    readings = await take(SimulatedStraps(5, sleep=no_wait), 5 * 5)
    kinds = set()
    for reading in readings:
        m = parse_measurement(reading.data)
        kinds.add((reading.data[0] & 1, m.contact, m.energy_kj is not None, bool(m.rr_ms)))
    assert {wide for wide, *_ in kinds} == {0, 1}  # 8-bit and 16-bit heart rates
    assert {contact for _, contact, *_ in kinds} == {True, None}
    assert any(energy for *_, energy, _ in kinds)
    assert any(rr for *_, rr in kinds)
    assert len(kinds) >= 4


async def test_a_seed_gives_the_same_class_every_time() -> None:
    first = await take(SimulatedStraps(4, seed=7, sleep=no_wait), 400)
    again = await take(SimulatedStraps(4, seed=7, sleep=no_wait), 400)
    other = await take(SimulatedStraps(4, seed=8, sleep=no_wait), 400)
    assert first == again
    assert first != other


async def test_each_strap_notifies_once_a_period() -> None:
    now = 0.0

    async def clock(seconds: float) -> None:
        nonlocal now
        now += seconds

    heard: dict[str, list[float]] = {}
    period = 2.0
    source = SimulatedStraps(3, period_s=period, ids=["AA:01", "AA:02", "AA:03"], sleep=clock)
    async with stream_of(source) as stream:
        async for reading in stream:
            heard.setdefault(reading.strap, []).append(now)
            if now >= 20 * period:
                break
    assert set(heard) == {"AA:01", "AA:02", "AA:03"}
    for times in heard.values():
        assert len(times) >= 20
        gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
        assert gaps == {period}
    assert len({times[0] for times in heard.values()}) == 3  # not all at the same moment


def test_the_simulator_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        SimulatedStraps(0)
    with pytest.raises(ValueError):
        SimulatedStraps(2, ids=["only one"])
    with pytest.raises(ValueError):
        SimulatedStraps(1, period_s=0)


async def test_real_straps_need_bleak() -> None:
    try:
        import bleak  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("bleak is installed here")
    with pytest.raises(BridgeError) as caught:
        async with stream_of(BleakStraps("hci0")) as stream:
            async for _ in stream:
                break
    assert str(caught.value) == NO_BLEAK


# -- the link to the server ------------------------------------------------------------


class Endpoint:
    """The server's ``/ws/bridge``, as far as the bridge can tell."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse  # None, "403", "404", "1008 before hello", "1008 after hello"
        self.requests: list[Request] = []
        self.sockets: list[ServerConnection] = []
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: list[int | None] = []
        self.answer_readings_with_error = False
        self.port = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, process_request=self._check
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def next(self, within_s: float = 3.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.messages.get(), within_s)

    async def quiet_for(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return self.messages.empty()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if self.refuse == "403":
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        if self.refuse == "404":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, socket: ServerConnection) -> None:
        self.sockets.append(socket)
        if self.refuse == "1008 before hello":
            await socket.close(1008, "unknown bridge token")
            return
        await socket.send(json.dumps(HELLO))
        try:
            async for raw in socket:
                await self.messages.put(json.loads(raw))
                if self.refuse == "1008 after hello":
                    await socket.close(1008, "bridge token revoked")
                elif self.answer_readings_with_error:
                    error = {"type": "error", "code": "bad_data", "message": "Unreadable strap"}
                    await socket.send(json.dumps(error))
        finally:
            self.closed.append(socket.close_code)


class Feed:
    """A source of readings the test pushes; None ends it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Reading | None] = asyncio.Queue()

    def put(self, strap: str, bpm: int) -> bytes:
        data = encode_measurement(bpm, contact=True)
        self.queue.put_nowait(Reading(strap, data))
        return data

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def readings(self) -> AsyncIterator[Reading]:
        while (reading := await self.queue.get()) is not None:
            yield reading


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    server = Endpoint()
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def bridging(
    endpoint: Endpoint, source: StrapSource, **options: Any
) -> AsyncIterator[asyncio.Event]:
    """Run the bridge for the block; then stop it, and check that it stopped."""
    stop = asyncio.Event()
    chosen: dict[str, Any] = {"interval_s": FAST, "backoff": (FAST,), **options}
    task = asyncio.create_task(run_bridge(endpoint.url, TOKEN, source, stop=stop, **chosen))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 3)


def sent(message: dict[str, Any]) -> dict[str, str]:
    """A readings message as {strap: hex}, checking its shape on the way."""
    assert message["type"] == "readings"
    assert set(message) == {"type", "readings"}
    readings = message["readings"]
    assert all(set(r) == {"strap", "data"} for r in readings)
    straps = {r["strap"]: r["data"] for r in readings}
    assert len(straps) == len(readings)  # each strap once
    return straps


def test_the_server_address_becomes_its_bridge_endpoint() -> None:
    assert bridge_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws/bridge"
    assert bridge_url("https://gym.example.com/") == "wss://gym.example.com/ws/bridge"
    assert bridge_url("https://gym.example.com/classroom") == (
        "wss://gym.example.com/classroom/ws/bridge"
    )
    assert bridge_url(" wss://gym.example.com ") == "wss://gym.example.com/ws/bridge"
    for wrong in (
        "gym.example.com",
        "gym.example.com:8000",
        "ftp://gym.example.com",
        "http://gym.example.com/?token=x",
        "http://user:secret@gym.example.com",
        "http://gym.example.com:port",
        "http://",
    ):
        with pytest.raises(BridgeError):
            bridge_url(wrong)


async def test_the_token_goes_in_the_authorization_header_only(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets' own debug lines included
    feed = Feed()
    feed.put("AA:BB:CC:00:00:01", 72)
    async with bridging(endpoint, feed):
        await endpoint.next()
    (request,) = endpoint.requests
    assert request.path == "/ws/bridge"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    elsewhere = Headers(request.headers)
    del elsewhere["Authorization"]
    assert TOKEN not in str(elsewhere)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("classroom")]
    assert not [line for line in ours if TOKEN in line]
    assert "> Authorization: …" in ours  # websockets' own debug line, with the token hidden
    assert "connected to ws://127.0.0.1" in caplog.text
    assert "'Spin Studio'" in caplog.text


async def test_each_interval_sends_the_latest_reading_of_each_strap_heard(
    endpoint: Endpoint,
) -> None:
    feed = Feed()
    feed.put("A", 70)
    a = feed.put("A", 71)  # A's second reading replaces its first
    b = feed.put("B", 90)
    async with bridging(endpoint, feed):
        assert sent(await endpoint.next()) == {"A": a.hex(), "B": b.hex()}
        assert await endpoint.quiet_for(4 * FAST), "nothing heard, nothing sent"
        b = feed.put("B", 91)
        assert sent(await endpoint.next()) == {"B": b.hex()}  # only the straps heard
        assert await endpoint.quiet_for(3 * FAST)
    assert endpoint.closed == [1000]  # stopping closes the connection cleanly


async def test_a_message_carries_at_most_200_straps(endpoint: Endpoint) -> None:
    feed = Feed()
    data = {f"S{n:03d}": feed.put(f"S{n:03d}", 60 + n % 100) for n in range(450)}
    async with bridging(endpoint, feed):
        messages = [sent(await endpoint.next()) for _ in range(3)]
    assert [len(m) for m in messages] == [200, 200, 50]
    assert {k: v for m in messages for k, v in m.items()} == {k: v.hex() for k, v in data.items()}


async def test_the_servers_errors_are_logged_and_the_bridge_carries_on(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.answer_readings_with_error = True
    feed = Feed()
    feed.put("A", 70)
    async with bridging(endpoint, feed):
        await endpoint.next()
        for _ in range(100):
            if "Unreadable strap" in caplog.text:
                break
            await asyncio.sleep(0.01)
        b = feed.put("B", 80)
        assert sent(await endpoint.next()) == {"B": b.hex()}
    warnings = [r for r in caplog.records if "Unreadable strap" in r.getMessage()]
    assert warnings  # one for each readings message
    assert all(w.levelno == logging.WARNING for w in warnings)
    assert warnings[0].getMessage() == "the server says: Unreadable strap (bad_data)"
    assert len(endpoint.sockets) == 1


@pytest.mark.parametrize("refuse", ["403", "1008 before hello", "1008 after hello"])
async def test_a_refused_token_ends_the_bridge_without_retrying(
    endpoint: Endpoint, refuse: str
) -> None:
    endpoint.refuse = refuse
    feed = Feed()
    feed.put("A", 70)
    with pytest.raises(BridgeError) as caught:
        await asyncio.wait_for(
            run_bridge(endpoint.url, TOKEN, feed, interval_s=FAST, backoff=(FAST,)), 3
        )
    assert str(caught.value) == REFUSED
    assert len(endpoint.requests) == 1


async def test_a_server_without_the_endpoint_ends_the_bridge(endpoint: Endpoint) -> None:
    endpoint.refuse = "404"
    with pytest.raises(BridgeError) as caught:
        await asyncio.wait_for(run_bridge(endpoint.url, TOKEN, Feed(), interval_s=FAST), 3)
    assert str(caught.value) == NO_ENDPOINT


async def test_after_a_drop_the_bridge_connects_again_and_carries_on(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed()
    feed.put("A", 70)
    async with bridging(endpoint, feed):
        await endpoint.next()
        await endpoint.sockets[0].close(1011, "restarting")
        for _ in range(300):
            if len(endpoint.sockets) == 2:
                break
            await asyncio.sleep(0.01)
        b = feed.put("B", 80)
        assert sent(await endpoint.next()) == {"B": b.hex()}
    assert len(endpoint.sockets) == 2
    assert "The server closed the connection (code 1011); connecting again in 0.05 s" in (
        caplog.text
    )


async def test_while_the_server_restarts_readings_are_kept_the_latest_per_strap(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed()
    feed.put("A", 70)
    async with bridging(endpoint, feed, backoff=(FAST, 2 * FAST)):
        await endpoint.next()
        await endpoint.stop()  # the server goes away (1001)...
        feed.put("A", 71)
        a = feed.put("A", 72)
        b = feed.put("B", 90)
        await asyncio.sleep(6 * FAST)  # ...for a few tries...
        await endpoint.start()  # ...and comes back on the same port
        assert sent(await endpoint.next()) == {"A": a.hex(), "B": b.hex()}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines[0] == "The server closed the connection (code 1001); connecting again in 0.05 s"
    assert any(line.startswith("The server is unreachable") for line in lines[1:])
    assert lines[-1].endswith("connecting again in 0.1 s")  # the last pause repeats


async def test_stop_ends_the_bridge_even_while_the_server_is_away(
    endpoint: Endpoint,
) -> None:
    await endpoint.stop()  # nobody listens on the port
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_bridge(endpoint.url, TOKEN, Feed(), stop=stop, interval_s=FAST, backoff=(10.0,))
    )
    await asyncio.sleep(0.2)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 1)
    await endpoint.start()  # for the fixture to stop


async def test_when_the_source_ends_what_it_gave_is_sent(endpoint: Endpoint) -> None:
    feed = Feed()
    a = feed.put("A", 70)
    feed.end()
    await asyncio.wait_for(run_bridge(endpoint.url, TOKEN, feed, interval_s=FAST), 3)
    assert sent(await endpoint.next()) == {"A": a.hex()}


async def test_a_source_that_fails_ends_the_bridge(endpoint: Endpoint) -> None:
    class Broken:
        async def readings(self) -> AsyncIterator[Reading]:
            await asyncio.sleep(FAST)
            raise BridgeError("Bluetooth scanning could not start: no adapter")
            yield Reading("never", b"")

    with pytest.raises(BridgeError, match="no adapter"):
        await asyncio.wait_for(run_bridge(endpoint.url, TOKEN, Broken(), interval_s=FAST), 3)


async def test_simulated_straps_through_the_bridge(endpoint: Endpoint) -> None:
    async with bridging(endpoint, SimulatedStraps(6, period_s=FAST)):
        straps = sent(await endpoint.next()) | sent(await endpoint.next())
        straps |= sent(await endpoint.next())
    assert set(straps) <= {f"SIM-{n:02d}" for n in range(1, 7)}
    assert len(straps) >= 5
    for data in straps.values():
        assert data == data.lower()
        assert 40 <= parse_measurement(bytes.fromhex(data)).bpm <= 200


# -- the command -----------------------------------------------------------------------


@pytest.fixture
def refusing_server() -> Iterator[tuple[str, list[str]]]:
    """A server, in a thread, that refuses every bridge token; and the headers it got."""
    authorizations: list[str] = []

    def check(connection: SyncConnection, request: Request) -> Response:
        authorizations.append(request.headers.get("Authorization", ""))
        return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")

    def handle(_socket: SyncConnection) -> None:
        raise AssertionError("the upgrade is refused")

    with sync_serve(handle, "127.0.0.1", 0, process_request=check) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", authorizations
        server.shutdown()
        thread.join(5)


def test_the_command_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLASSROOM_BRIDGE_TOKEN", raising=False)
    assert main(["hr-bridge", "--server", "http://127.0.0.1:9", "--simulate", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "CLASSROOM_BRIDGE_TOKEN" in err


def test_the_command_says_in_one_line_that_the_token_was_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    refusing_server: tuple[str, list[str]],
) -> None:
    url, authorizations = refusing_server
    monkeypatch.setenv("CLASSROOM_BRIDGE_TOKEN", "wrong-token")
    assert main(["hr-bridge", "--server", url, "--simulate", "2"]) == 1
    assert capsys.readouterr().err == f"classroom: {REFUSED}\n"
    assert authorizations == ["Bearer wrong-token"]


def test_the_command_as_a_process(refusing_server: tuple[str, list[str]]) -> None:
    url, authorizations = refusing_server
    env = {**os.environ, "CLASSROOM_BRIDGE_TOKEN": ""}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "classroom.cli", "hr-bridge", "--server", url),
            *("--token", "another-wrong-one", "--simulate", "3"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr == f"classroom: {REFUSED}\n"  # one line, no traceback
    assert authorizations == ["Bearer another-wrong-one"]


def test_the_help_prefers_the_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["hr-bridge", "--help"])
    out = capsys.readouterr().out
    assert "CLASSROOM_BRIDGE_TOKEN (preferred" in " ".join(out.split())
    assert bridge.MAX_STRAPS_PER_MESSAGE == 200
