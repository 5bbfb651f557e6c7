"""Thousands of random and mutated messages through real sockets change nothing.

A running class (one long scored segment, no cues, no periodic heartbeats)
gets random JSON, mutated valid messages of every type (wrong types, huge
numbers, unicode, missing or extra fields), truncated JSON, oversized text and
binary frames, from a participant's, a display's and an instructor's sockets.
Nothing sent is a valid change: scores that the class would take, and the
instructor's commands that would move the class, are kept out of the stream;
"start", "resume" and "mark_finished" stay in, since a running class on a
reps segment refuses them.

Every message gets exactly one answer, of the kind the protocol promises for
it; the senders keep under the rate limit (several sockets per role, paced
each), so no answer is ``rate_limited``. Afterwards the class's snapshot and its
rows in ``class_events`` and ``scores`` are as they were, and a ping is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from classroom.domain.commands import COMMANDS_BY_NAME
from classroom.domain.scoring import CLIENT_ID
from classroom.hub.admission import SocketLimits
from classroom.hub.limits import MAX_MESSAGE_BYTES
from tests.conftest import LiveServer
from tests.hub.conftest import RunningClass, start_class

EXAMPLES = 1200
# As many sockets as one participant may open (one phone's), a few walls, two tablets.
SOCKETS = {"participant": SocketLimits().per_participant, "display": 4, "instructor": 2}
PACE_PER_S = 16.0  # per socket; the server allows 20 a second with a burst of 40
TYPES = ["ping", "heartbeat", "command", "score", "mark_finished"]
# Commands a running class on a reps segment refuses whatever their fields; the others may move it.
REFUSED_WHEN_RUNNING = {"start", "resume", "mark_finished"}
MOVING_COMMANDS = set(COMMANDS_BY_NAME) - REFUSED_WHEN_RUNNING
ROLES = {
    "ping": {"instructor", "participant", "display"},
    "heartbeat": {"instructor", "participant", "display"},
    "command": {"instructor"},
    "mark_finished": {"participant"},
    "score": {"participant"},
}
REPLIES = {"pong", "heartbeat", "ack", "error", "resumed"}
BROADCASTS = {"presence", "roster"}  # who is connected: not answers, and no class events


@dataclass
class Paced:
    """A socket and the instants at which it may send again (a client-side token bucket)."""

    ws: ClientConnection
    role: str
    tokens: float = 8.0
    at: float = field(default_factory=time.monotonic)
    sent: int = 0

    def wait_turn(self) -> None:
        now = time.monotonic()
        self.tokens = min(8.0, self.tokens + (now - self.at) * PACE_PER_S)
        self.at = now
        if self.tokens < 1:
            time.sleep((1 - self.tokens) / PACE_PER_S)
            self.at = time.monotonic()
            self.tokens = 1
        self.tokens -= 1
        self.sent += 1


# -- what is sent ------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
odd_strings = st.sampled_from(
    ["", " ", "PING", "Ping", "ping ", "pïng", "score\x00", "💪", "comm\u200band", "🏋️‍♀️" * 30]
) | st.text(max_size=30)
odd_numbers = st.sampled_from(
    [0, -1, 1.5, 10**18, -(10**18), 2**63, 10**300, 1e308, float("inf"), float("nan"), True]
)
odd_values = odd_strings | odd_numbers | json_values


def valid_message(kind: str) -> dict[str, Any]:
    return {
        "ping": {"type": "ping", "id": "p1", "t": 1764120000000},
        "heartbeat": {"type": "heartbeat"},
        "command": {"type": "command", "id": "c1", "name": "jump", "index": 0, "from_segment": 0},
        "score": {"type": "score", "id": "a1b2c3", "segment": 0, "kind": "reps", "value": 1},
        "mark_finished": {"type": "mark_finished", "id": "m1"},
    }[kind]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message of some type with some of its fields removed, replaced or added."""
    message = valid_message(draw(st.sampled_from(TYPES)))
    if message["type"] == "command":
        message["name"] = draw(st.sampled_from(sorted(COMMANDS_BY_NAME)) | odd_strings)
        message.update(draw(st.dictionaries(st.sampled_from(["text", "seconds"]), odd_values)))
    for _ in range(draw(st.integers(1, 3))):
        keys = st.text(max_size=6)
        key = draw(st.sampled_from(sorted(message)) | keys if message else keys)
        action = draw(st.sampled_from(["drop", "replace", "number", "string"]))
        if action == "drop":
            message.pop(key, None)
        elif action == "number":
            message[key] = draw(odd_numbers)
        elif action == "string":
            message[key] = draw(odd_strings)
        else:
            message[key] = draw(odd_values)
    return message


def as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """One frame: text (JSON or not) or binary."""
    shape = draw(st.sampled_from(["random", "mutated", "mutated", "truncated", "binary", "big"]))
    if shape == "random":
        return as_text(draw(json_values))
    if shape == "mutated":
        return as_text(draw(mutated()))
    if shape == "truncated":
        text = as_text(draw(mutated() | st.sampled_from(TYPES).map(valid_message)))
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if shape == "binary":
        raw = draw(
            st.binary(max_size=64)
            | st.sampled_from(TYPES).map(valid_message).map(as_text).map(str.encode)
        )
        return raw
    # Over the size limit, in characters or only in bytes.
    pad = draw(st.sampled_from(["x" * 4200, "é" * 2100, "💪" * 1100, "x" * 20_000]))
    return as_text({**valid_message(draw(st.sampled_from(TYPES))), "pad": pad})


# -- what is expected --------------------------------------------------------------------


def could_change_the_class(role: str, frame: str | bytes) -> bool:
    """Whether ``frame`` is a change this class would accept (such frames are not sent)."""
    data = parse(frame)
    if not isinstance(data, dict):
        return False
    if role == "instructor" and data.get("type") == "command":
        name = data.get("name")
        return isinstance(name, str) and name in MOVING_COMMANDS
    if role == "participant" and data.get("type") == "score":
        # Any well-addressed input to the running segment might count (a rep, an
        # undo, ...): such frames are left out, whatever their other fields.
        client_id, segment = data.get("id"), data.get("segment")
        return (
            isinstance(client_id, str)
            and CLIENT_ID.match(client_id) is not None
            and is_int(segment)
            and segment == 0
        )
    return False


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is too large")
    return number


def strict_loads(text: str) -> Any:
    """JSON as the protocol takes it: NaN, Infinity and numbers like 1e400 are not."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite)


def parse(frame: str | bytes) -> Any:
    if isinstance(frame, bytes) or len(frame.encode()) > MAX_MESSAGE_BYTES:
        return None
    try:
        return strict_loads(frame)
    except ValueError:
        return None


def expected_replies(role: str, frame: str | bytes) -> set[str]:
    """The answers docs/protocol.md allows for ``frame`` from a ``role`` screen."""
    if isinstance(frame, bytes):
        return {"binary_frame"}
    if len(frame.encode()) > MAX_MESSAGE_BYTES:
        return {"too_large"}
    try:
        data = strict_loads(frame)
    except ValueError:
        return {"bad_json"}
    if not isinstance(data, dict):
        return {"bad_message"}
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in ROLES:
        return {"unknown_type"}
    if role not in ROLES[kind]:
        return {"forbidden"}
    if kind == "ping":  # an id (a string or a number) and t (a number), or bad_field
        ident, t = data.get("id"), data.get("t")
        good_id = isinstance(ident, str | int | float) and not isinstance(ident, bool)
        good_t = isinstance(t, int | float) and not isinstance(t, bool)
        return {"pong"} if good_id and good_t else {"bad_field"}
    return {
        "heartbeat": {"heartbeat"},
        "command": {"rejected", "bad_field"},
        "mark_finished": {"rejected"},  # a reps segment is no AMRAP or For Time
        "score": {"rejected", "bad_field"},
    }[kind]


def reply_kind(message: dict[str, Any]) -> str:
    return str(message["code"]) if message["type"] == "error" else str(message["type"])


def next_reply(ws: ClientConnection) -> dict[str, Any]:
    """The next answer on ``ws``; presence and roster updates are skipped, class events fail."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=5))
        assert "seq" not in message or message["type"] == "snapshot", f"a class event: {message}"
        if message["type"] in BROADCASTS:
            continue
        assert message["type"] in REPLIES, message
        return message


# -- the state that must not change ------------------------------------------------------


def saved_rows(server: LiveServer, class_id: int) -> dict[str, list[tuple[Any, ...]]]:
    path = server.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        return {
            "class_events": db.execute(
                "SELECT * FROM class_events WHERE class_id = ? ORDER BY seq", (class_id,)
            ).fetchall(),
            "scores": db.execute("SELECT * FROM scores WHERE class_id = ?", (class_id,)).fetchall(),
            "classes": db.execute(
                "SELECT phase, last_seq, state FROM classes WHERE id = ?", (class_id,)
            ).fetchall(),
        }


def snapshot_of(url: str) -> dict[str, Any]:
    with connect(url, max_size=None) as ws:
        message: dict[str, Any] = json.loads(ws.recv(timeout=5))
        assert message["type"] == "snapshot"
        ws.send(json.dumps({"type": "ping", "id": "last", "t": 1}))
        pong = next_reply(ws)
        assert pong["type"] == "pong" and pong["id"] == "last", pong
    return {
        "phase": message["phase"],
        "seq": message["seq"],
        "segment": message["segment"]["index"],
        "epoch": message["epoch"],
    }


# The server and the socket clients run in threads of this process, and their keepalive pings
# draw from the global `random`; Hypothesis takes that for a strategy using `random`.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_random_and_mutated_messages_change_nothing(quiet_server: LiveServer) -> None:
    server = quiet_server
    running: RunningClass = asyncio.run(start_class(server))
    tokens = server.server.config.app.state.tokens  # type: ignore[attr-defined]
    display_url = running.ws_url(server, f"?token={tokens.display(running.class_id)}")
    headers = {
        "participant": {"Cookie": running.participant_cookie},
        "instructor": {"Cookie": running.console_cookie},
        "display": {},
    }
    before = snapshot_of(display_url)
    assert before["phase"] == "running" and before["segment"] == 0
    rows_before = saved_rows(server, running.class_id)

    sockets: dict[str, list[Paced]] = {}
    sentinel = itertools.count()
    answered: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for role, count in SOCKETS.items():
            url = display_url if role == "display" else running.ws_url(server)
            sockets[role] = []
            for _ in range(count):
                ws = stack.enter_context(
                    connect(url, additional_headers=headers[role], max_size=None)
                )
                assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
                sockets[role].append(Paced(ws, role))
        turns = {role: itertools.cycle(paced) for role, paced in sockets.items()}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(st.data())
        def send_and_check(data: st.DataObject) -> None:
            role = data.draw(
                st.sampled_from(["participant"] * 5 + ["display"] * 4 + ["instructor"])
            )
            batch = data.draw(
                st.lists(
                    frames().filter(lambda frame: not could_change_the_class(role, frame)),
                    min_size=1,
                    max_size=4,
                )
            )
            paced = next(turns[role])
            for frame in batch:
                paced.wait_turn()
                paced.ws.send(frame)
            # A ping after the batch: every answer before its pong belongs to the batch.
            probe = f"probe-{next(sentinel)}"
            paced.wait_turn()
            paced.ws.send(json.dumps({"type": "ping", "id": probe, "t": 0}))
            for frame in batch:
                reply = next_reply(paced.ws)
                kind = reply_kind(reply)
                assert kind in expected_replies(role, frame), (role, frame, reply)
                answered[kind] = answered.get(kind, 0) + 1
            pong = next_reply(paced.ws)
            assert pong["type"] == "pong" and pong["id"] == probe, (role, batch, pong)

        started = time.monotonic()
        send_and_check()
    seconds = time.monotonic() - started
    print(f"fuzz: {sum(answered.values())} messages in {seconds:.1f} s; answers: {answered}")

    assert sum(answered.values()) >= EXAMPLES  # every example sent at least one message
    assert "rate_limited" not in answered and "ack" not in answered, answered
    after = snapshot_of(display_url)  # the server still answers a ping, too
    assert after == before
    assert saved_rows(server, running.class_id) == rows_before
