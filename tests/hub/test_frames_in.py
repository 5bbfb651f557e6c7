"""Frames in: whole text frames are read without the parser; every other shape still works.

The server reads the whole masked text frames at the start of a chunk of bytes
itself (:mod:`classroom.hub.protocol`). These tests write raw frames on a real socket,
in every shape a network can deliver them, and check that each message gets its
answer in order, and that protocol errors still close the connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.protocol import Protocol, Side
from websockets.sync.client import ClientConnection, connect
from websockets.utils import apply_mask

from classroom.hub.protocol import unmask
from tests.conftest import LiveServer
from tests.hub.conftest import RunningClass, start_class

TEXT, CONT = 0x1, 0x0


def frame(payload: bytes, *, opcode: int = TEXT, fin: bool = True, masked: bool = True) -> bytes:
    """A client's frame, as RFC 6455 lays it out."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    flag = 0x80 if masked else 0
    if length < 126:
        head += bytes([flag | length])
    else:
        head += bytes([flag | 126]) + length.to_bytes(2, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + apply_mask(payload, mask)


def score(client_id: str, **extra: Any) -> bytes:
    message = {"type": "score", "id": client_id, "segment": 0, "kind": "reps", "value": 1}
    return json.dumps({**message, **extra}).encode()


def ping(reply_id: str) -> bytes:
    return json.dumps({"type": "ping", "id": reply_id, "t": 0}).encode()


@pytest.fixture
def phone(quiet_server: LiveServer) -> Iterator[ClientConnection]:
    running: RunningClass = asyncio.run(start_class(quiet_server))
    url = running.ws_url(quiet_server)
    with connect(url, additional_headers={"Cookie": running.participant_cookie}) as ws:
        ws.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        replies(ws, until="snapshot")
        yield ws


def replies(ws: ClientConnection, *, until: str | None = None, count: int = 0) -> list[Any]:
    """The answers (acks, pongs, errors) that come, until one of type ``until`` or ``count``."""
    got: list[Any] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=deadline - time.monotonic()))
        if message["type"] == until:
            return got
        if message["type"] in {"ack", "pong", "error"}:
            got.append(message)
            if len(got) == count:
                return got
    raise AssertionError(f"only {got} came")


def answers(ws: ClientConnection, count: int) -> list[tuple[str, Any]]:
    return [(m["type"], m.get("id")) for m in replies(ws, count=count)]


def test_whole_frames_split_frames_and_frames_sent_together_are_all_answered_in_order(
    phone: ClientConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []  # what the server's websockets parser was given
    receive_data = Protocol.receive_data

    def spy(self: Protocol, data: bytes) -> None:
        if self.side is Side.SERVER:
            parsed.append(bytes(data))
        receive_data(self, data)

    monkeypatch.setattr(Protocol, "receive_data", spy)
    raw = phone.socket
    raw.sendall(frame(score("whole-1")))  # one frame, one chunk: read without the parser
    assert answers(phone, 1) == [("ack", "whole-1")]

    raw.sendall(frame(ping("p1")))  # whole, but not a score: through the app's queue
    assert answers(phone, 1) == [("pong", "p1")]
    assert parsed == []

    split = frame(score("split-1"))
    raw.sendall(split[:3])  # a frame in two chunks: the parser puts it together
    time.sleep(0.05)
    raw.sendall(split[3:])
    assert answers(phone, 1) == [("ack", "split-1")]
    assert b"".join(parsed) == split

    parsed.clear()
    together = [frame(score(f"together-{k}")) for k in range(3)]
    raw.sendall(b"".join(together))  # several whole frames in one chunk: still no parser
    assert answers(phone, 3) == [("ack", f"together-{k}") for k in range(3)]
    assert parsed == []

    # A ping the reader leaves goes to the app's queue; what follows it, to the parser.
    after = frame(score("two-2"))
    raw.sendall(frame(score("two-1")) + frame(ping("p2")) + after)
    assert answers(phone, 3) == [("ack", "two-1"), ("pong", "p2"), ("ack", "two-2")]
    assert parsed == [after]

    parsed.clear()
    whole, cut = frame(score("then-1")), frame(score("then-2"))
    raw.sendall(whole + cut[:5])  # a whole frame, then the start of the next one
    time.sleep(0.05)
    raw.sendall(cut[5:])
    assert answers(phone, 2) == [("ack", "then-1"), ("ack", "then-2")]
    assert parsed == [cut[:5], cut[5:]]  # the parser got only the frame cut in two

    long = score("L" * 64, note="x" * 100)  # over 125 bytes: a 16-bit length
    assert len(long) > 125
    raw.sendall(frame(long))
    assert answers(phone, 1) == [("ack", "L" * 64)]

    first, rest = score("fragmented-1")[:10], score("fragmented-1")[10:]
    raw.sendall(frame(first, fin=False))  # a message in two fragments
    raw.sendall(frame(rest, opcode=CONT))
    assert answers(phone, 1) == [("ack", "fragmented-1")]

    raw.sendall(frame(score("whole-1")))  # the same input again: a repeat
    assert replies(phone, count=1) == [{"type": "ack", "id": "whole-1", "duplicate": True}]


def test_bad_utf8_in_a_whole_frame_closes_the_connection_with_1007(
    phone: ClientConnection,
) -> None:
    phone.socket.sendall(frame(b'{"type":"score","id":"\xff\xfe"}'))
    with pytest.raises(ConnectionClosed) as closed:
        replies(phone, count=1)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007


def test_bad_utf8_after_a_good_frame_in_one_chunk_takes_the_good_one_then_closes(
    quiet_server: LiveServer,
) -> None:
    running: RunningClass = asyncio.run(start_class(quiet_server))
    url, cookie = running.ws_url(quiet_server), running.participant_cookie
    with connect(url, additional_headers={"Cookie": cookie}) as ws:
        replies(ws, until="snapshot")
        ws.socket.sendall(frame(score("good-1")) + frame(b'{"type":"score","id":"\xff"}'))
        with pytest.raises(ConnectionClosed) as closed:
            replies(ws, count=2)  # the close may come before good-1's ack
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    with connect(url, additional_headers={"Cookie": cookie}) as ws:  # the phone comes back
        replies(ws, until="snapshot")
        ws.send(score("good-1").decode())  # and sends what it has no ack for
        assert replies(ws, count=1) == [{"type": "ack", "id": "good-1", "duplicate": True}]


def test_an_unmasked_frame_closes_the_connection_with_1002(phone: ClientConnection) -> None:
    phone.socket.sendall(frame(score("bare-1"), masked=False))
    with pytest.raises(ConnectionClosed) as closed:
        replies(phone, count=1)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_unmasking_matches_the_websockets_library(payload: bytes, mask: bytes) -> None:
    assert unmask(payload, mask) == apply_mask(payload, mask)
