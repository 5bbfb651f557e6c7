"""Thousands of simulated phones in one process: picows WebSocket clients on one loop.

A load generator is a :class:`Crowd` with its own :meth:`Crowd.receive`, the hot
path: every text frame any of its sockets gets goes there with its receipt time,
read as soon as the frame is handled (on ``Crowd.clock``). The crowd connects its
sockets a number at a time, counts the ones that failed to connect and the ones
the server closed mid-run (with their close codes), and closes them all at the
end. picows costs about 7 µs of Python per received message, against about 18 µs
for the ``websockets`` client: the figures are the server's, not the generator's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE
JOIN_TIMEOUT_S = 30.0


class Socket(WSListener):
    """One simulated phone or display: its transport, whether it has joined, whether
    it has gone. A phone's ``index`` is 0 and up; a display's is negative."""

    def __init__(self, crowd: Crowd, index: int) -> None:
        super().__init__()
        self.crowd = crowd
        self.index = index
        self.receive = crowd.receive
        self.now = crowd.clock
        self.transport: WSTransport | None = None
        loop = asyncio.get_running_loop()
        self.joined: asyncio.Future[float] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.crowd.joined_on_connect:
            self.join(self.now())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        received = self.now()
        if frame.msg_type is TEXT:
            self.receive(self, frame.get_payload_as_bytes(), received)
        elif frame.msg_type is CLOSE:
            code = frame.get_close_code()
            self.crowd.close_codes[int(code.value)] += 1
            transport.send_close(code)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        joined = self.joined
        if (
            not self.crowd.closing
            and joined.done()
            and not joined.cancelled()
            and joined.exception() is None
        ):
            self.crowd.dropped += 1
        if not self.gone.done():
            self.gone.set_result(None)
        if not joined.done():
            joined.set_exception(ConnectionError("closed before joining"))

    def join(self, received: float) -> None:
        """The socket has joined (a classroom socket: its snapshot came)."""
        if not self.joined.done():
            self.joined.set_result(received)

    def send_text(self, text: str | bytes) -> None:
        assert self.transport is not None
        self.transport.send(TEXT, text.encode() if isinstance(text, str) else text)


class Crowd:
    """Sockets connected to one server (or several), and what happened to them."""

    clock = staticmethod(time.perf_counter)  # what a receipt's time is read with
    max_frame_size = 1 << 20  # the largest message a socket takes
    socket_class: type[Socket] = Socket
    joined_on_connect = False  # True: a socket has joined once the upgrade is done

    def __init__(self) -> None:
        self.phones: list[Any] = []
        self.close_codes: Counter[int] = Counter()
        self.dropped = 0  # sockets the server closed after they joined
        self.closing = False
        self.connect_errors = 0
        self.connect_ms: list[float] = []
        self.problems: list[str] = []  # the first few, as lines for a report

    def receive(self, socket: Any, payload: bytes, received: float) -> None:
        """A text frame ``socket`` got at ``received``: the generator's hot path."""
        raise NotImplementedError

    def note(self, problem: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(problem[:300])

    async def connect_one(self, index: int, url: str) -> Any:
        """A socket of ``index`` on ``url``, once it has joined; None if it failed."""
        started = time.perf_counter()
        socket: Any
        try:
            _, socket = await ws_connect(
                lambda: self.socket_class(self, index),
                url,
                websocket_handshake_timeout=JOIN_TIMEOUT_S,
                max_frame_size=self.max_frame_size,
            )
            await asyncio.wait_for(socket.joined, JOIN_TIMEOUT_S)
        except Exception as exc:
            self.connect_errors += 1
            self.note(f"socket {index}: {type(exc).__name__}: {exc}")
            return None
        self.connect_ms.append((time.perf_counter() - started) * 1000)
        return socket

    async def connect(self, urls: Sequence[str], concurrency: int) -> None:
        """Phone ``i`` on ``urls[i]``, ``concurrency`` handshakes at a time; the phones
        that joined, in index order, in ``phones``."""
        gate = asyncio.Semaphore(concurrency)
        slots: list[Any] = [None] * len(urls)

        async def one(index: int) -> None:
            async with gate:
                slots[index] = await self.connect_one(index, urls[index])

        await asyncio.gather(*(one(i) for i in range(len(urls))))
        self.phones = [phone for phone in slots if phone is not None]

    @staticmethod
    async def close(sockets: Sequence[Socket], timeout_s: float = 10.0) -> None:
        """Close ``sockets`` and wait (bounded) until they are gone."""
        for socket in sockets:
            transport = socket.transport
            if transport is not None and not transport.is_disconnected:
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
        waiting = [socket.gone for socket in sockets if not socket.gone.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout_s)
