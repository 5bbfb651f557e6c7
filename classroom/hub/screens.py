"""A connected screen, and the two ways the hub writes to it.

:class:`DirectScreen` writes pre-encoded frames straight to the connection's
transport. It is used when the server is uvicorn with its ``websockets-sansio``
protocol (what ``classroom serve`` runs), and makes a fan-out cost one
``transport.write`` per screen. The transport's write buffer is the screen's
bounded send queue: when a phone stops reading and its buffer passes
:data:`MAX_BUFFERED_BYTES`, the screen is closed with 1013 ("try again later"),
which browsers' clients answer by reconnecting and resuming. It leaves its class
at once, and its connection within :data:`CLOSE_TIMEOUT_S`.

:class:`QueuedScreen` is the portable path for any other ASGI server: a bounded
queue of messages and a writer task that sends them through ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import Any, Protocol

from starlette.websockets import WebSocket

from classroom.hub.frames import Outgoing, text_frame
from classroom.hub.protocol import (
    ClassroomProtocol,
    Reader,
    close_behind,
    writes_frames_directly,
)
from classroom.hub.wire import Message, encode

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013
CLOSE_REVOKED = 1008  # the screen's link was revoked: don't try again
MAX_BUFFERED_BYTES = 256 * 1024
CLOSE_TIMEOUT_S = 5.0
"""How long a screen closed for falling behind has to answer the close frame.

It leaves the class (and the console's presence) at once; its connection goes
when it answers, or after this long if it doesn't (a stalled phone never reads
the close frame behind its backlog: it sees the connection drop, and reconnects
as after a 1013)."""
QUEUE_SIZE = 512


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...


class Screen:
    """One connected WebSocket: a console, a phone or a display."""

    def __init__(
        self, websocket: WebSocket, class_id: int, role: str, identity: int | None = None
    ) -> None:
        self.websocket = websocket
        self.class_id = class_id
        self.role = role
        self.identity = identity
        self.last_seq = 0  # the last class event this screen has (or was given in a snapshot)
        self.closed = False
        self.source: Hashable = None  # a display's link or wall: revoking it closes the screen

    def deliver(self, outgoing: Outgoing) -> bool:
        """Send ``outgoing`` now or queue it; False when the screen is closed or too far behind."""
        raise NotImplementedError

    def send(self, message: Message) -> bool:
        return self.deliver(Outgoing.of(encode(message), message.get("seq")))

    def send_text(self, text: str) -> bool:
        """Send a message already encoded (not a class event: no ``seq``)."""
        return self.deliver(Outgoing.of(text))

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket from the server's side, without waiting."""
        if self.closed:
            return
        self.closed = True
        task = asyncio.get_running_loop().create_task(self._close(code, reason))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code, reason)

    async def run_writer(self) -> None:
        """Whatever must run beside the receive loop while the screen is open."""

    def read_with(self, reader: Reader) -> bool:
        """Have ``reader`` take messages as they arrive, if the connection allows it.

        See :mod:`classroom.hub.protocol`. False: every message comes through
        the ASGI receive loop.
        """
        return False

    def stop(self) -> None:
        self.closed = True


_closing: set[asyncio.Task[None]] = set()


class DirectScreen(Screen):
    def __init__(self, websocket: WebSocket, protocol: Any, *args: Any) -> None:
        super().__init__(websocket, *args)
        self._protocol = protocol
        self._transport: Transport = protocol.transport

    def deliver(self, outgoing: Outgoing) -> bool:
        return self._write(outgoing.frame)

    def send_text(self, text: str) -> bool:
        return self._write(text_frame(text.encode()))

    def _write(self, frame: bytes) -> bool:
        if self.closed:
            return False
        if self._protocol.close_sent or self._transport.is_closing():
            self.closed = True
            return False
        if self._transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            self._close_behind()
            return False
        self._transport.write(frame)
        return True

    def read_with(self, reader: Reader) -> bool:
        if not isinstance(self._protocol, ClassroomProtocol):
            return False
        self._protocol.reader = reader
        return True

    def stop(self) -> None:
        super().stop()
        if isinstance(self._protocol, ClassroomProtocol):
            self._protocol.reader = None

    def _close_behind(self) -> None:
        """Close a screen that stopped reading, without waiting for it to read.

        The close frame is written straight after its backlog (an ASGI close would
        wait for the transport to drain, which a stalled phone never lets happen),
        and the receive loop hears of the close at once, so the screen leaves its
        class now. The connection is closed when the phone answers the close
        frame, or dropped after :data:`CLOSE_TIMEOUT_S`, so its buffers are freed
        either way (:func:`classroom.hub.protocol.close_behind`).
        """
        self.closed = True
        close_behind(self._protocol, CLOSE_TRY_AGAIN, "too far behind, reconnect", CLOSE_TIMEOUT_S)


class QueuedScreen(Screen):
    def __init__(self, websocket: WebSocket, *args: Any) -> None:
        super().__init__(websocket, *args)
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._overflowed = False

    def deliver(self, outgoing: Outgoing) -> bool:
        if self.closed or self._overflowed:
            return False
        try:
            self._queue.put_nowait(outgoing)
        except asyncio.QueueFull:
            self._overflowed = True  # the writer closes the socket once it gets a turn
            return False
        return True

    async def run_writer(self) -> None:
        while True:
            if self._overflowed:
                self.closed = True
                await self._close(CLOSE_TRY_AGAIN, "too far behind, reconnect")
                return
            outgoing = await self._queue.get()
            if outgoing is None:
                return
            await self.websocket.send_text(outgoing.text)

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)


def screen_for(websocket: WebSocket, class_id: int, role: str, identity: int | None) -> Screen:
    """The fastest kind of screen this server's connection allows."""
    protocol = _server_protocol(getattr(websocket, "_send", None))
    if protocol is not None:
        return DirectScreen(websocket, protocol, class_id, role, identity)
    return QueuedScreen(websocket, class_id, role, identity)


def _server_protocol(send: Any, depth: int = 0) -> Any:
    """The uvicorn protocol behind an ASGI ``send``, looking through middleware wrappers."""
    owner = getattr(send, "__self__", None)
    if writes_frames_directly(owner):
        return owner
    if depth < 4:
        for cell in getattr(send, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                if callable(cell.cell_contents):
                    found = _server_protocol(cell.cell_contents, depth + 1)
                    if found is not None:
                        return found
    return None
