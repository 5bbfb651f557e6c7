"""One screen that stops reading must not slow down, or bloat, the class's other screens.

500 wall displays hear a class's cues (one a second) and a steady stream of
shout-outs from three instructor sockets (each socket has a rate bucket of its
own). Displays and instructors live in a process of their own, so that this
process holds little but the server. A client completes
its WebSocket handshake and stops reading at the TCP level (a small receive
buffer, and no ``recv`` at all) for 30 s, between two 15 s baseline windows
without it. The others' delivery latency must not suffer, the hub's buffered bytes must stay
bounded, and the staller must find its connection closed (a close with 1013 behind its
backlog, which it never reaches: the server drops the connection a few seconds after it).

``MAX_BUFFERED_BYTES`` is lowered to 16 KiB, so that the staller's buffers
fill within seconds at this traffic; the server runs in a thread of this
process, so the module global is the server's.

Run as ``python -m tests.hub.test_stalled_client`` (arguments in
:func:`load_main`) it is that process: picows clients, each display stamping
every class event with its arrival time (``time.time()``). It answers lines on
stdin: ``shout`` starts the shout-outs, ``stop`` ends them, ``dump`` writes the
stamps to a file and reports.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import psutil
import pytest

from classroom.hub import screens as screens_module
from classroom.hub.screens import CLOSE_TRY_AGAIN, DirectScreen
from tests.conftest import LiveServer
from tests.hub.conftest import RunningClass, server_loop, start_class

ROOT = Path(__file__).resolve().parents[2]
SCREENS = 500
INSTRUCTORS = 3  # each socket has a rate bucket of its own (20 messages a second)
SHOUTS_PER_S = 4  # per instructor socket: 12 shout-outs a second in all, plus a cue a second
BASELINE_S = 15.0  # before the stall, and again after it
SAMPLE_EVERY_S = 0.1  # the hub is read as often in both windows
STALL_S = 30.0
MAX_BUFFERED = 16 * 1024
# Each screen's buffer passes the limit by at most one frame (the check comes before the write),
# plus the close frame; every screen but the staller keeps up.
BUFFER_BOUND = 2 * MAX_BUFFERED + 64 * 1024
# A shout-out as big as the protocol allows: 140 characters, 4 bytes each in UTF-8.
SHOUT = "💪" * 140


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.5), 1),
        "p99": round(percentile(ordered, 0.99), 1),
        "max": round(ordered[-1], 1),
    }


# -- the load process --------------------------------------------------------------------


def load_main(display_url: str, count: int, console_url: str, cookie: str, out: Path) -> None:
    """``count`` displays of ``display_url`` and INSTRUCTORS consoles, driven from stdin."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    arrived_at = array("d")  # the event's "at" (server ms)
    latency = array("d")  # arrival (this machine's wall clock, ms) minus "at"
    now = time.time
    loads = json.loads
    head = re.compile(rb'\{"type":"[a-z_]+","seq":(\d+),"at":(\d+)')

    class Screen(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.events = 0
            self.last_seq = 0
            self.gaps = 0  # events missed or repeated: each must arrive once, in order
            self.replies: dict[str, int] = {}
            self.close_code: int | None = None
            self.disconnected = False
            self.snapshot: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                t = now() * 1000
                payload = frame.get_payload_as_bytes()
                # Class events start {"type":…,"seq":…,"at":…: read just those.
                found = head.match(payload)
                if found is not None:
                    seq, at = int(found[1]), int(found[2])
                    self.events += 1
                    self.gaps += seq != self.last_seq + 1
                    self.last_seq = seq
                    arrived_at.append(at)
                    latency.append(t - at)
                    return
                message = loads(payload)
                kind = message["type"] if message["type"] != "error" else message["code"]
                self.replies[kind] = self.replies.get(kind, 0) + 1
                if kind == "snapshot" and not self.snapshot.done():
                    self.last_seq = message["seq"]
                    self.snapshot.set_result(None)
            elif frame.msg_type == WSMsgType.CLOSE:
                self.close_code = int(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            self.disconnected = True

    async def connect(url: str, headers: dict[str, str] | None = None) -> tuple[Any, Screen]:
        transport, screen = await ws_connect(Screen, url, extra_headers=headers)
        await asyncio.wait_for(screen.snapshot, 20)
        return transport, screen

    async def shout(transport: WSTransport, stop: asyncio.Event, sent: list[int]) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            sent.append(1)
            message = {"type": "command", "id": f"s{len(sent)}", "name": "shout", "text": SHOUT}
            transport.send(WSMsgType.TEXT, json.dumps(message).encode())
            next_at += 1 / SHOUTS_PER_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

    async def main() -> None:
        displays: list[Screen] = []
        for start in range(0, count, 50):
            batch = [connect(display_url) for _ in range(min(50, count - start))]
            displays += [screen for _, screen in await asyncio.gather(*batch)]
        consoles = [await connect(console_url, {"Cookie": cookie}) for _ in range(INSTRUCTORS)]
        print(json.dumps({"ready": len(displays)}), flush=True)
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        stop = asyncio.Event()
        sent: list[int] = []
        shouting: list[asyncio.Task[None]] = []
        while line := (await reader.readline()).strip():
            if line == b"shout":
                shouting = [asyncio.create_task(shout(t, stop, sent)) for t, _ in consoles]
            elif line == b"stop":
                stop.set()
                await asyncio.gather(*shouting)
                await asyncio.sleep(0.5)  # the last acknowledgements
                replies: dict[str, int] = {}
                for _, console in consoles:
                    for kind, n in console.replies.items():
                        replies[kind] = replies.get(kind, 0) + n
                print(json.dumps({"shouts": len(sent), "replies": replies}), flush=True)
            elif line == b"dump":
                with out.open("wb") as f:
                    arrived_at.tofile(f)
                    latency.tofile(f)
                last = [d.last_seq for d in displays]
                report = {
                    "events": sum(d.events for d in displays),
                    "gaps": sum(d.gaps for d in displays),
                    "last_seq": [min(last), max(last)],
                    "disconnected": sum(d.disconnected for d in displays),
                    "close_codes": sorted({d.close_code for d in displays if d.close_code}),
                }
                print(json.dumps(report), flush=True)
                return

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# -- the staller -------------------------------------------------------------------------


def open_staller(port: int, path: str) -> socket.socket:
    """A WebSocket handshake on a raw socket with a tiny receive buffer; then no more reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Both before connect: a small window, and segments of a real network's size rather than
    # loopback's 64 KiB (the server's kernel sizes its send buffer by them). Then the kernel holds
    # about 40 KB of what the server sends; the rest stays in the server's own write buffer.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # one byte at a time: not one byte of a frame is read
        byte = sock.recv(1)
        assert byte, f"the server closed the handshake: {head!r}"
        head += byte
        assert len(head) < 4096
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


#: What a client reports when the connection ends without a close frame (RFC 6455 §7.1.5).
ABNORMAL_CLOSURE = 1006


def read_until_close(sock: socket.socket, timeout: float) -> tuple[int | None, int, int]:
    """Read the staller's backlog: (the close code, text frames before it, bytes read).

    The code is :data:`ABNORMAL_CLOSURE` if the connection ended without a close
    frame, None if nothing ended it within ``timeout``.
    """
    sock.settimeout(1)
    data = bytearray()
    deadline = time.monotonic() + timeout
    texts = 0
    offset = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return ABNORMAL_CLOSURE, texts, len(data)
        data += chunk
        while True:  # parse every complete (unmasked, server-sent) frame
            if len(data) - offset < 2:
                break
            opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
            header = 2
            if length == 126:
                header, length = 4, int.from_bytes(data[offset + 2 : offset + 4], "big")
            elif length == 127:
                header, length = 10, int.from_bytes(data[offset + 2 : offset + 10], "big")
            if len(data) - offset < header + length:
                break
            payload = data[offset + header : offset + header + length]
            offset += header + length
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                return code, texts, len(data)
            if opcode == 0x1:
                texts += 1
    return None, texts, len(data)


# -- the test ----------------------------------------------------------------------------


def peer_port(screen: DirectScreen) -> int | None:
    peer = screen._transport.get_extra_info("peername")
    return None if peer is None else int(peer[1])


async def hub_sample(server: LiveServer, class_id: int, staller_port: int) -> dict[str, Any]:
    """Read the hub's screens on the server's own loop: their buffers, and the staller's state."""
    hub = server.server.config.app.state.hub  # type: ignore[attr-defined]

    async def sample() -> dict[str, Any]:
        screens = hub.screens(class_id)
        assert all(isinstance(s, DirectScreen) for s in screens), "not the direct write path"
        sizes = [s._transport.get_write_buffer_size() for s in screens]
        staller = [s for s in screens if peer_port(s) == staller_port]
        return {
            "screens": len(screens),
            "buffered": sum(sizes),
            "largest": max(sizes, default=0),
            "staller_attached": bool(staller),
            "staller_closed": bool(staller) and staller[0].closed,
            "staller_buffered": staller[0]._transport.get_write_buffer_size() if staller else 0,
        }

    future = asyncio.run_coroutine_threadsafe(sample(), server_loop(server))
    return await asyncio.wait_for(asyncio.wrap_future(future), 5)


async def test_a_stalled_client_is_dropped_without_slowing_the_others(
    steady_server: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = steady_server
    monkeypatch.setattr(screens_module, "MAX_BUFFERED_BYTES", MAX_BUFFERED)
    running: RunningClass = await start_class(server)
    class_id = running.class_id
    tokens = server.server.config.app.state.tokens  # type: ignore[attr-defined]
    display_path = f"/ws/classes/{class_id}?token={tokens.display(class_id)}"
    clock = server.server.config.app.state.registry.clock  # type: ignore[attr-defined]
    out = tmp_path / "latencies.bin"

    load = subprocess.Popen(  # noqa: ASYNC220 (it starts, and is then spoken to through pipes)
        [
            *(sys.executable, "-m", "tests.hub.test_stalled_client"),
            *(server.ws_url + display_path, str(SCREENS)),
            *(running.ws_url(server), running.console_cookie, str(out)),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdin is not None and load.stdout is not None

    async def ask(line: str | None, wait_s: float = 30) -> dict[str, Any]:
        """Say ``line`` to the load process; its one-line answer."""
        pipe_in, pipe_out = load.stdin, load.stdout
        assert pipe_in is not None and pipe_out is not None
        if line is not None:
            pipe_in.write(line + "\n")
            pipe_in.flush()
        answer = await asyncio.wait_for(asyncio.to_thread(pipe_out.readline), wait_s)
        assert answer, "the load process ended"
        return json.loads(answer)  # type: ignore[no-any-return]

    staller: socket.socket | None = None
    try:
        assert await ask(None, 60) == {"ready": SCREENS}
        process = psutil.Process()
        load.stdin.write("shout\n")  # it answers only when told to stop
        load.stdin.flush()
        await asyncio.sleep(1)  # let the pace settle
        offset_ms = clock.now_ms() - time.time() * 1000  # the server's clock against this one
        rss_before = process.memory_info().rss

        async def watch(seconds: float, staller_port: int = -1) -> dict[str, Any]:
            """Read the hub and this process's memory every SAMPLE_EVERY_S for ``seconds``."""
            start = clock.now_ms()
            seen: dict[str, Any] = {
                "window": (start, start + seconds * 1000),
                "buffered": 0,
                "staller_buffered": 0,
                "rss": 0,
                "attached": False,
                "closed_after_ms": None,
            }
            while clock.now_ms() < seen["window"][1]:
                sample = await hub_sample(server, class_id, staller_port)
                assert sample["buffered"] < BUFFER_BOUND, sample
                seen["buffered"] = max(seen["buffered"], sample["buffered"])
                seen["staller_buffered"] = max(seen["staller_buffered"], sample["staller_buffered"])
                seen["rss"] = max(seen["rss"], process.memory_info().rss)
                seen["attached"] |= sample["staller_attached"]
                gone = sample["staller_closed"] or not sample["staller_attached"]
                if seen["attached"] and gone and seen["closed_after_ms"] is None:
                    seen["closed_after_ms"] = clock.now_ms() - start
                await asyncio.sleep(SAMPLE_EVERY_S)
            return seen

        before = await watch(BASELINE_S)
        staller = await asyncio.to_thread(open_staller, server.port, display_path)
        stalled = await watch(STALL_S, staller.getsockname()[1])
        # The staller reads again: what it finds ends in the server's close frame.
        code, backlog, backlog_bytes = await asyncio.to_thread(read_until_close, staller, 15)
        staller.close()
        after = await watch(BASELINE_S)
        shouted = await ask("stop")
        report = await ask("dump")
    finally:
        if staller is not None:
            staller.close()
        with contextlib.suppress(Exception):
            load.stdin.close()
        try:
            load.wait(10)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait(5)
        load.stdout.close()

    raw = out.read_bytes()
    half = len(raw) // 2
    arrived_at, latency = array("d"), array("d")
    arrived_at.frombytes(raw[:half])
    latency.frombytes(raw[half:])
    # The baseline: the windows before and after the stall (so that a change in this
    # machine's other load over the minute weighs on both sides alike).
    windows = (
        ("before", before["window"]),
        ("stall", stalled["window"]),
        ("after", after["window"]),
    )
    in_window: dict[str, list[float]] = {"before": [], "stall": [], "after": []}
    for at, ms in zip(arrived_at, latency, strict=True):
        for name, (start, end) in windows:
            if start <= at < end:
                in_window[name].append(ms + offset_ms)
    base, during = in_window["before"] + in_window["after"], in_window["stall"]
    figures = {
        "baseline": summary(base),
        "before": summary(in_window["before"]),
        "after": summary(in_window["after"]),
        "stall": summary(during),
        "instructors": shouted,
        "hub_buffered_peak": {
            "baseline": max(before["buffered"], after["buffered"]),
            "stall": stalled["buffered"],
        },
        "staller_buffered_peak": stalled["staller_buffered"],
        "staller_closed_after_ms": stalled["closed_after_ms"],
        "staller_backlog": {"frames": backlog, "bytes": backlog_bytes, "close_code": code},
        "rss_mb": {
            "before": rss_before / 2**20,
            "baseline_peak": max(before["rss"], after["rss"]) / 2**20,
            "stall_peak": stalled["rss"] / 2**20,
        },
        "clock_offset_ms": offset_ms,
        "receivers": report,
    }
    print(json.dumps(figures, indent=1))

    # Every shout-out was taken (none refused, none over the rate limit).
    assert shouted["replies"].get("ack") == shouted["shouts"], shouted
    # Every healthy display heard every event, and none was dropped.
    assert report["disconnected"] == 0 and not report["close_codes"], report
    assert report["gaps"] == 0, report
    assert report["last_seq"][1] - report["last_seq"][0] <= 1, report  # a cue may be in flight
    # (a) the others' latency did not suffer.
    rate = INSTRUCTORS * SHOUTS_PER_S * 0.9
    assert len(base) > SCREENS * 2 * BASELINE_S * rate and len(during) > SCREENS * STALL_S * rate
    # "Normal" is the worse of the two baselines: this machine's other load moves p99
    # by more than 10 ms over a minute, and the stall must not add to that.
    normal = max(figures["before"]["p99"], figures["after"]["p99"])
    assert figures["stall"]["p99"] <= normal + 10, figures
    # (b) memory stayed bounded.
    assert stalled["buffered"] < BUFFER_BOUND, figures
    assert stalled["rss"] - rss_before < 64 * 2**20, figures
    # (c) the staller was closed by the server, with 1013, while it was stalled; stalled
    # for longer than CLOSE_TIMEOUT_S, it never read that far, and finds its connection dropped.
    assert stalled["closed_after_ms"] is not None, figures
    assert STALL_S > screens_module.CLOSE_TIMEOUT_S
    assert code in (CLOSE_TRY_AGAIN, ABNORMAL_CLOSURE), figures


if __name__ == "__main__":
    load_main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
