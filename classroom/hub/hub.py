"""Connected screens, grouped by class, and the fan-out of messages to them.

A message is encoded once and offered to every screen of the class. Each screen
has its own bounded queue and writer task, so a slow phone only ever fills its
own queue; when that overflows the screen is closed with 1013 ("try again
later"), which makes the browser reconnect and resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from classroom.hub.wire import Message, encode

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013
QUEUE_SIZE = 256


@dataclass(eq=False)
class Screen:
    """One connected WebSocket: a console, a phone or a display."""

    websocket: WebSocket
    class_id: int
    role: str
    identity: int | None = None
    queue: asyncio.Queue[str | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    closing: bool = False

    def offer(self, text: str) -> bool:
        """Queue ``text`` for sending; False (and the screen is closing) if it is full."""
        if self.closing:
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.closing = True
            return False
        return True

    def send(self, message: Message) -> None:
        self.offer(encode(message))

    async def write_until_closed(self) -> None:
        """Drain the queue into the socket; ends when told to stop or on overflow."""
        while True:
            if self.closing:
                with contextlib.suppress(Exception):
                    await self.websocket.close(CLOSE_TRY_AGAIN, "too far behind, reconnect")
                return
            text = await self.queue.get()
            if text is None:
                return
            await self.websocket.send_text(text)

    def stop(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class Hub:
    def __init__(self) -> None:
        self._screens: dict[int, set[Screen]] = {}

    def add(self, screen: Screen) -> None:
        self._screens.setdefault(screen.class_id, set()).add(screen)

    def remove(self, screen: Screen) -> None:
        screens = self._screens.get(screen.class_id)
        if screens is not None:
            screens.discard(screen)
            if not screens:
                del self._screens[screen.class_id]

    def screens(self, class_id: int) -> frozenset[Screen]:
        return frozenset(self._screens.get(class_id, ()))

    def broadcast(self, class_id: int, messages: Iterable[Message]) -> None:
        screens = self._screens.get(class_id)
        if not screens:
            return
        for message in messages:
            text = encode(message)
            for screen in screens:
                # A full queue marks the screen closing; its writer, which is busy with
                # the backlog, sees that after its current send and closes the socket.
                screen.offer(text)
