"""``/ws/bridge``: a room's heart-rate receiver (``classroom hr-bridge``) sends its straps.

The bridge names itself with ``Authorization: Bearer <token>``, a token an
instructor made for one room (stored hashed; revoked on the rooms page). A wrong
or revoked token is refused before the socket opens (HTTP 403); a token revoked
while the bridge is connected closes it with 1008 within a few seconds.

About once a second the bridge sends the latest reading of each strap it heard:
``{"type": "readings", "readings": [{"strap": "<id>", "data": "<hex>"}]}``. Each
is parsed and checked here, like a phone's. The straps heard are remembered for
the room, so a phone in the room's open class can claim one; readings of a claimed
strap are that person's samples, taken by the class's owner; readings of a strap
nobody claimed go nowhere (counted as ``unclaimed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from classroom.db.heart import HeartStore
from classroom.domain import heart
from classroom.domain.errors import DomainError
from classroom.hub import wire
from classroom.hub.limits import TokenBucket
from classroom.live.router import Unavailable
from classroom.web.tokens import bearer_token

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
MAX_READINGS = 200
"""The most readings one message may carry (the bridge sends at most this many)."""
MAX_BRIDGE_MESSAGE = 60_000
"""The longest readings message, in characters: 200 straps' readings with room to spare
(a screen's messages are far smaller; every frame is under the server's 64 KiB)."""
LOOKUP_EVERY_S = 2.0
"""How often the room's open class and its claims are read again."""
CHECK_EVERY_S = 5.0
"""How often the bridge's token is checked again (a revoked one closes the socket)."""
MESSAGES_PER_S, MESSAGES_BURST = 4.0, 8.0

TOO_MANY = f"A readings message carries at most {MAX_READINGS} readings."
NOT_READINGS = 'Send {"type": "readings", "readings": [{"strap": ..., "data": ...}]}.'
TOO_FAST = "Readings come once a second; the extra messages were dropped."
DROPPED = "{count} of {total} readings dropped: {why}"
BAD_STRAP = "A strap's id is a string of 1 to 64 characters."


class _Room:
    """What a bridge's connection knows of its room: its open class and who holds which strap."""

    def __init__(self, store: HeartStore, room_id: int) -> None:
        self.store = store
        self.room_id = room_id
        self.class_id: int | None = None
        self.claims: dict[str, int] = {}
        self._read_at = -LOOKUP_EVERY_S

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._read_at < LOOKUP_EVERY_S:
            return
        self._read_at = now
        self.class_id = await self.store.room_class(self.room_id)
        self.claims = {} if self.class_id is None else await self.store.claims(self.class_id)


async def bridge_socket(websocket: WebSocket) -> None:
    app = websocket.app
    store: HeartStore = app.state.heart_store
    token = bearer_token(websocket.headers.get("authorization"))
    found = await store.bridge_by_token(token) if token else None
    if found is None:
        await websocket.close(POLICY_VIOLATION)  # before accept: an HTTP 403
        return
    bridge, room = found
    await websocket.accept()
    await websocket.send_json({"type": "hello", "room": room.name, "bridge": bridge.label})
    log.info("room %s: bridge %r connected", room.id, bridge.label)
    held = _Room(store, room.id)
    bucket = TokenBucket(MESSAGES_PER_S, MESSAGES_BURST)
    checked_at = time.monotonic()
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), CHECK_EVERY_S)
            except TimeoutError:
                message = None
            if time.monotonic() - checked_at >= CHECK_EVERY_S:
                checked_at = time.monotonic()
                if not await store.bridge_live(bridge.id):
                    await websocket.close(POLICY_VIOLATION, "bridge revoked")
                    return
            if message is None:
                continue
            if message["type"] == "websocket.disconnect":
                return
            if not bucket.allow(time.monotonic()):
                app.state.metrics.heart_samples.labels("flood").inc()
                await websocket.send_json(wire.error("rate_limited", TOO_FAST))
                continue
            answer = await _readings(app, held, message.get("text"))
            if answer is not None:
                await websocket.send_json(answer)
    except WebSocketDisconnect:
        return
    finally:
        log.info("room %s: bridge %r gone", room.id, bridge.label)


async def _readings(app: Any, held: _Room, text: str | None) -> wire.Message | None:
    """Take one readings message; an error message if any of it was dropped."""
    if text is None or len(text) > MAX_BRIDGE_MESSAGE:
        return wire.error("bad_message", NOT_READINGS)
    try:
        data = wire.decode(text)
    except wire.BadJSON as exc:
        return wire.error("bad_json", str(exc))
    readings = data.get("readings") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("type") != "readings"
        or not isinstance(readings, list)
    ):
        return wire.error("bad_message", NOT_READINGS)
    if len(readings) > MAX_READINGS:
        return wire.error("too_many", TOO_MANY)
    counter = app.state.metrics.heart_samples
    registry = app.state.registry
    now = registry.clock.now_ms()
    heard: dict[str, int] = {}
    why: dict[str, str] = {}
    for reading in readings:
        problem, strap, bpm = _reading(reading)
        if problem is not None:
            counter.labels(problem[0]).inc()
            why[problem[0]] = problem[1]
            continue
        assert strap is not None and bpm is not None
        heard[strap] = bpm
    await held.store.note_straps(held.room_id, heard, now)
    await held.refresh()
    for strap, bpm in heard.items():
        pid = held.claims.get(strap)
        if held.class_id is None or pid is None:
            counter.labels("unclaimed").inc()
            continue
        try:
            await registry.heart_sample(held.class_id, pid, bpm, now)
        except (DomainError, Unavailable) as exc:
            log.debug("room %s: a strap's sample not taken: %s", held.room_id, exc)
            continue
        counter.labels("taken").inc()
    dropped = len(readings) - len(heard)
    if dropped:
        sentence = DROPPED.format(count=dropped, total=len(readings), why=" ".join(why.values()))
        return wire.error("dropped", sentence)
    return None


def _reading(reading: object) -> tuple[tuple[str, str] | None, str | None, int | None]:
    """A reading's strap and bpm, or why it can't be used (reason, sentence)."""
    if not isinstance(reading, dict):
        return ("garbled", NOT_READINGS), None, None
    strap = reading.get("strap")
    if not isinstance(strap, str) or not 0 < len(strap) <= 64:
        return ("garbled", BAD_STRAP), None, None
    try:
        measurement = heart.measurement_from_hex(reading.get("data"))
    except heart.BadMeasurement as exc:
        return ("garbled", f"{strap}: {exc}"), strap, None
    problem = heart.sample_problem(measurement)
    if problem is not None:
        return (problem, f"{strap}: {heart.PROBLEMS[problem]}"), strap, None
    return None, strap, measurement.bpm
