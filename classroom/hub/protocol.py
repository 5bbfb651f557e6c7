"""uvicorn's WebSocket protocol, with a way to read a message the moment it arrives.

uvicorn hands every message to the app through a queue: the socket's task wakes
for each one, and reading from the socket is paused until the app has taken it
(two more system calls a message). That is the right default, and the app still
reads that way. But a class of 5,000 phones sends 10,000 score inputs a second,
and for those the hop is most of the cost. :class:`ClassroomProtocol` lets the
app install a *reader* on a connection: it is called with each text message in
the callback that parsed it, and says whether it has taken the message. What
it doesn't take goes through the queue as before. The reader is only asked
while nothing is queued, so messages are never taken out of their order.

``classroom serve`` and the test servers run this protocol (:data:`SERVER_OPTIONS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

#: Takes a text message if it can (True), or leaves it to the app's queue (False).
Reader = Callable[[str], bool]


class ClassroomProtocol(WebSocketsSansIOProtocol):
    reader: Reader | None = None

    def send_receive_event_to_app(self) -> None:
        reader = self.reader
        if (
            reader is not None
            and self.curr_msg_data_type == "text"
            and not self.close_sent
            and self.queue.empty()
        ):
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                text = data.decode()
            except UnicodeDecodeError:
                pass  # uvicorn closes the connection with 1007
            else:
                try:
                    taken = reader(text)
                except Exception:  # a bug in the reader must not break the connection
                    self.logger.exception("a WebSocket reader failed")
                    taken = True
                if taken:
                    self.frames = []
                    return
        super().send_receive_event_to_app()


#: How every classroom server runs uvicorn's WebSockets.
SERVER_OPTIONS: dict[str, Any] = {
    "ws": ClassroomProtocol,
    "ws_per_message_deflate": False,
    "ws_max_size": 64 * 1024,
}
