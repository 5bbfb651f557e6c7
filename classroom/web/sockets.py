"""The WebSocket endpoint every screen of a class connects to.

Who is connecting is settled before the socket is accepted: a display or
participant token in the query string, a participant's cookie, or the
instructor's session. A browser's ``Origin`` must be this server's own (or one
allowed by configuration). After that, a bad message gets an error message and
changes nothing; it never closes a good socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from classroom.db.models import Class
from classroom.domain.commands import MarkFinished, parse_command
from classroom.domain.errors import DomainError
from classroom.hub import wire
from classroom.hub.hub import Screen
from classroom.live.actor import ClassFailed
from classroom.web import auth
from classroom.web.participants import participant_cookie
from classroom.web.tokens import Grant, TokenError

MAX_MESSAGE_BYTES = 4096
POLICY_VIOLATION = 1008


@dataclass(frozen=True, slots=True)
class Identity:
    role: str  # "instructor", "participant" or "display"
    id: int | None


def _origin_allowed(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: it has no ambient cookies to abuse
        return True
    settings = websocket.app.state.settings
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    own = f"{scheme}://{websocket.headers.get('host', '')}"
    allowed = {own, *settings.allowed_origins}
    if settings.public_url:
        allowed.add(settings.public_url)
    return origin.rstrip("/") in allowed


async def _identify(websocket: WebSocket, class_id: int) -> Identity | None:
    tokens = websocket.app.state.tokens
    token = websocket.query_params.get("token") or websocket.cookies.get(
        participant_cookie(class_id)
    )
    if token:
        try:
            grant: Grant = tokens.verify(token, class_id)
        except TokenError:
            return None
        return Identity(grant.role, grant.participant_id)
    async with websocket.app.state.sessions() as db:
        instructor = await auth.signed_in(db, websocket)
        row = await db.get(Class, class_id)
    if instructor is None or row is None or row.instructor_id != instructor.id:
        return None
    return Identity("instructor", instructor.id)


async def class_socket(websocket: WebSocket) -> None:
    try:
        class_id = int(websocket.path_params["class_id"])
    except ValueError:
        await websocket.close(POLICY_VIOLATION)
        return
    identity = await _identify(websocket, class_id)
    if identity is None or not _origin_allowed(websocket):
        await websocket.close(POLICY_VIOLATION)  # before accept: an HTTP 403
        return
    await websocket.accept()
    app = websocket.app
    screen = Screen(websocket, class_id, identity.role, identity.id)
    writer = asyncio.create_task(screen.write_until_closed())
    if not await app.state.registry.attach(screen):
        await websocket.close(POLICY_VIOLATION, "no such class")
        writer.cancel()
        return
    try:
        while not writer.done():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            reply = await _answer(app, screen, message)
            if reply is not None:
                screen.send(reply)
    except WebSocketDisconnect:
        pass
    finally:
        app.state.hub.remove(screen)
        screen.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, 1)
        writer.cancel()


async def _answer(app: Any, screen: Screen, message: Mapping[str, Any]) -> wire.Message | None:
    text = message.get("text")
    if text is None:
        return wire.error("binary_frame", "Send JSON text frames, not binary ones.")
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        return wire.error("too_large", f"Messages are at most {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json.loads(text)
    except ValueError:
        return wire.error("bad_json", "That message is not valid JSON.")
    if not isinstance(data, dict):
        return wire.error("bad_message", "A message is a JSON object with a type.")
    kind = data.get("type")
    reply_id = data.get("id") if isinstance(data.get("id"), str | int) else None
    if kind == "ping":
        t = data.get("t")
        return {
            "type": "pong",
            "id": reply_id,
            "t": t if isinstance(t, int | float) else None,
            "server_now": app.state.registry.clock.now_ms(),
        }
    if kind == "command":
        if screen.role != "instructor":
            return wire.error(
                "forbidden", "Only the instructor can control the class.", id=reply_id
            )
        try:
            command = parse_command(data.get("name"), data)
            await app.state.registry.submit(screen.class_id, command)
        except DomainError as exc:
            return wire.error("rejected", str(exc), id=reply_id)
        except ClassFailed as exc:
            return wire.error("unavailable", str(exc), id=reply_id)
        return {"type": "ack", "id": reply_id}
    if kind == "mark_finished":
        if screen.role != "participant" or screen.identity is None:
            return wire.error("forbidden", "Only a participant can mark their finish.", id=reply_id)
        try:
            finish = MarkFinished(participant_id=screen.identity)
            await app.state.registry.submit(screen.class_id, finish)
        except DomainError as exc:
            return wire.error("rejected", str(exc), id=reply_id)
        except ClassFailed as exc:
            return wire.error("unavailable", str(exc), id=reply_id)
        return {"type": "ack", "id": reply_id}
    return wire.error("unknown_type", f"Unknown message type {str(kind)[:40]!r}.", id=reply_id)
