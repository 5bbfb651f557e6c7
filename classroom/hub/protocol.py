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

While a reader is installed, whole text frames at the start of a chunk of bytes
(a phone's message almost always arrives as one whole frame; a phone that was
held up sends several at once) are read here, without going through the
websockets parser, which costs more than the rest of a score. The rest of the
chunk (part of a frame, a control frame, a fragment, bad UTF-8, anything after a
message the reader left) goes through the parser as before, which also answers
every protocol error.

When the parser fails a connection (a frame over :data:`MAX_FRAME_BYTES`, bad
UTF-8, a protocol error), uvicorn would write the close frame and close the
socket at once, while the client may still be sending the frame: the client's
kernel then gets a reset, and usually the client never reads the close frame.
This protocol writes the close frame, reads on and discards what comes (nothing
is buffered), and closes the socket once the client has been quiet for
:data:`QUIET_S`, or after :data:`LINGER_S` at most. So a client sees the close
frame and its code (1009 for a frame that is too large).

``classroom serve`` and the test servers run this protocol (:data:`SERVER_OPTIONS`).

This is the one module that reaches into uvicorn's internals (the protocol's
private attributes, which uvicorn changes in minor releases). So it only
imports with the uvicorn versions it has been tested with
(:data:`UVICORN_RANGE`, the range ``pyproject.toml`` declares); with any other
it raises :class:`ImportError` saying which version is installed and which are
supported (:func:`uvicorn_problem`), and ``classroom serve`` prints that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

from websockets.protocol import State

#: The lowest uvicorn this module has been tested with (``.ci/run``'s lowest-versions job).
UVICORN_LOWEST = (0, 52, 1)
#: The first uvicorn it has not been tested with (``.ci/run``'s main job runs the newest below).
UVICORN_BELOW = (0, 56)
#: The supported range, as ``pyproject.toml`` declares it.
UVICORN_RANGE = f">={'.'.join(map(str, UVICORN_LOWEST))},<{'.'.join(map(str, UVICORN_BELOW))}"

#: A PEP 440 version: release numbers, then a pre-release, post-release, dev release, local part.
_VERSION = re.compile(
    r"(?P<release>\d+(?:\.\d+)*)"
    r"(?P<pre>[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)\d*)?"
    r"(?:[-_.]?(?:post|rev|r)\d*)?"
    r"(?P<dev>[-_.]?dev\d*)?"
    r"(?:\+[a-z0-9.]+)?",
    re.IGNORECASE,
)


def uvicorn_problem(installed: str | None = None) -> str | None:
    """Why the installed uvicorn (or ``installed``) is outside :data:`UVICORN_RANGE`, in one line.

    None when it is inside. Only the release numbers are compared (``0.53.0``);
    a pre-release of the lowest version is below it (``0.52.1rc1``), a
    post-release or local version is its release (``0.53.0.post1``), and a
    version that can't be read as one (PEP 440) is outside.
    """
    try:
        version = metadata.version("uvicorn") if installed is None else installed
    except metadata.PackageNotFoundError:
        return f"uvicorn is not installed; {_needed()}"
    match = _VERSION.fullmatch(version)
    if match is None:
        return f"uvicorn {version!r} is installed, a version that can't be read; {_needed()}"
    release = _padded(tuple(int(part) for part in match["release"].split(".")))
    pre = match["pre"] is not None or match["dev"] is not None
    below = release < UVICORN_LOWEST or (release == UVICORN_LOWEST and pre)
    if below or release >= _padded(UVICORN_BELOW):
        return f"uvicorn {version} is installed; {_needed()}"
    return None


def _padded(release: tuple[int, ...]) -> tuple[int, ...]:
    """``release`` with zeros up to three numbers, so that 0.56 and 0.56.0 compare equal."""
    return release + (0,) * (3 - len(release))


def _needed() -> str:
    install = f"pip install 'uvicorn[standard]{UVICORN_RANGE}'"
    return f"classroom needs uvicorn {UVICORN_RANGE} ({install})"


if (_problem := uvicorn_problem()) is not None:
    raise ImportError(_problem, name="uvicorn")

from uvicorn.protocols.websockets.websockets_sansio_impl import (  # noqa: E402
    WebSocketsSansIOProtocol,
)

#: Takes a text message if it can (True), or leaves it to the app's queue (False).
Reader = Callable[[str], bool]


#: The largest frame a client may send; a larger one closes the connection with 1009.
MAX_FRAME_BYTES = 64 * 1024
#: After failing a connection, how long the client must be quiet before the socket closes.
QUIET_S = 0.25
#: After failing a connection, how long at most the server reads on before closing it.
LINGER_S = 5.0


class ClassroomProtocol(WebSocketsSansIOProtocol):
    reader: Reader | None = None
    _failed_at: float | None = None  # when the parser failed the connection
    _heard_at = 0.0  # when the client last sent something

    def data_received(self, data: bytes) -> None:
        if self._failed_at is not None:
            self._heard_at = self.loop.time()
            self.conn.receive_data(data)
            self.conn.events_received()  # discarded: the connection has failed
            return
        read = 0 if self.reader is None else self._read_frames(data)
        if read < len(data):
            super().data_received(data[read:] if read else data)

    def handle_parser_exception(self) -> None:
        """Send the close frame the parser chose, and close the socket once the client is quiet.

        See the module's docstring: closing at once would meet the rest of the
        client's frame with a reset, which hides the close frame from it.
        """
        if self._failed_at is not None:
            return
        close = self.conn.close_sent
        if close is None:  # no close frame to send: nothing to wait for
            self.transport.close()
            return
        if self.close_sent:  # the server had closed first: nothing more to say
            super().handle_parser_exception()
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": close.code})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self._failed_at = self._heard_at = self.loop.time()
        if self.read_paused:  # read on, to discard
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(QUIET_S, self._close_when_quiet)

    def _close_when_quiet(self) -> None:
        assert self._failed_at is not None
        now = self.loop.time()
        quiet_since = self._heard_at + QUIET_S
        if now >= quiet_since or now >= self._failed_at + LINGER_S:
            self.transport.close()
            # A client that doesn't read either never lets the close finish: drop it.
            self.close_timer = self.loop.call_later(LINGER_S, self.transport.abort)
            return
        self.close_timer = self.loop.call_later(quiet_since - now, self._close_when_quiet)

    def _read_frames(self, data: bytes) -> int:
        """Read the whole, masked, unfragmented text frames at the start of ``data``.

        Returns how many bytes were read. Only while the parser is between
        frames, with nothing buffered, in the middle of no fragmented message,
        and nothing is queued for the app. A message the reader leaves goes to
        the app's queue, and everything after it to the parser.
        """
        conn = self.conn
        if conn.reader.buffer or conn.current_size is not None or conn.extensions:
            return 0
        limit = conn.max_message_size
        read, size = 0, len(data)
        while size - read >= 6 and data[read] == _FIN_TEXT and data[read + 1] & _MASKED:
            if conn.state is not State.OPEN or self.close_sent or not self.queue.empty():
                break
            length, start = data[read + 1] & 0x7F, read + 6
            if length == 126:
                length, start = int.from_bytes(data[read + 2 : read + 4], "big"), read + 8
            elif length == 127:
                break
            end = start + length
            if end > size or (limit is not None and length > limit):
                break
            payload = unmask(data[start:end], data[start - 4 : start])
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                break  # the parser closes the connection with 1007
            read = end
            if not self._offer(text):
                self.curr_msg_data_type = "text"
                self.frames = [payload]
                super().send_receive_event_to_app()
                break
        return read

    def send_receive_event_to_app(self) -> None:
        if (
            self.reader is not None
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
                if self._offer(text):
                    self.frames = []
                    return
        super().send_receive_event_to_app()

    def _offer(self, text: str) -> bool:
        """Whether the reader has taken ``text``."""
        reader = self.reader
        if reader is None:
            return False
        try:
            return reader(text)
        except Exception:  # a bug in the reader must not break the connection
            self.logger.exception("a WebSocket reader failed")
            return True


_FIN_TEXT = 0x81  # FIN, no extension bits, opcode 1 (text)
_MASKED = 0x80


def unmask(payload: bytes, mask: bytes) -> bytes:
    """A client frame's payload, unmasked (RFC 6455 §5.3): XOR with the 4-byte mask, repeated."""
    length = len(payload)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def writes_frames_directly(protocol: Any) -> bool:
    """Whether ``protocol`` is uvicorn's websockets-sansio protocol, whose transport takes frames.

    :class:`classroom.hub.screens.DirectScreen` writes pre-encoded frames
    straight to such a protocol's transport.
    """
    return (
        isinstance(protocol, WebSocketsSansIOProtocol)
        and hasattr(protocol, "transport")
        and hasattr(protocol, "close_sent")
        and hasattr(protocol.transport, "get_write_buffer_size")
    )


#: How every classroom server runs uvicorn's WebSockets.
SERVER_OPTIONS: dict[str, Any] = {
    "ws": ClassroomProtocol,
    "ws_per_message_deflate": False,
    "ws_max_size": MAX_FRAME_BYTES,
}


def close_behind(protocol: Any, code: int, reason: str, timeout_s: float) -> None:
    """Close ``protocol``'s socket now, behind what it has yet to send.

    The close frame goes to the transport straight after the backlog (an ASGI close
    would wait for the transport to drain, which a stalled client never lets happen);
    the app's receive loop hears of the close at once; reading goes on, to hear the
    client's answer, on which uvicorn closes the transport. Failing that, the
    connection is dropped after ``timeout_s``.
    """
    if protocol.close_sent:
        return  # already closing
    conn = protocol.conn
    with contextlib.suppress(Exception):  # the connection is already failing
        conn.send_close(code, reason)
        protocol.transport.write(b"".join(conn.data_to_send()))
    protocol.close_sent = True
    protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code})
    if protocol.read_paused:
        protocol.read_paused = False
        protocol.transport.resume_reading()
    # uvicorn stops this timer when it closes the transport.
    protocol.close_timer = asyncio.get_running_loop().call_later(
        timeout_s, _abort, protocol.transport
    )


def _abort(transport: Any) -> None:
    """Drop the connection now, unsent data and all (a close would wait for it to drain)."""
    with contextlib.suppress(Exception):  # already gone
        transport.abort()
