"""The console's rooms page: rooms, pairing wall displays to them, and revoking them.

Every form posts with the CSRF token and answers with the page again: on
success after a redirect, on a refusal with the reason beside the form (400)
and nothing changed. Wrong pairing codes are counted per instructor and per
address (:class:`~classroom.web.throttle.AttemptWindow`), so codes can't be
guessed. A room, and the displays paired to it, are only ever the
instructor's own: anyone else's is "no such room".

The open-class form picks a room and a scheduled start with
:func:`class_room` and :func:`scheduled_start`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from classroom.db import rooms as rooms_db
from classroom.db.models import Display, Instructor, Room
from classroom.domain import rooms
from classroom.domain.errors import ValidationError
from classroom.web import console  # its open-class form uses class_room and scheduled_start
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.templating import render
from classroom.web.tokens import REVOKED

NO_SUCH_ROOM = "No such room. Pick one of your rooms."
NO_SUCH_DISPLAY = "No such display."
TOO_MANY_CODES = "Too many wrong pairing codes. Wait a few minutes and try again."
BAD_START = "Enter the start time as a date and time, like 2026-03-01 18:30."
PAST_START = "That start time has passed. Pick a later time, or leave it empty."
START_MARGIN_MS = 5 * 60_000
"""A start time this far in the past is still taken (the form was slow to send)."""
LOBBY_AFTER_START_MS = 30 * 60_000
"""A scheduled class is left at least this long in the lobby after its start time."""
GUESSES = {rooms.UNKNOWN_PAIRING_CODE, rooms.USED_PAIRING_CODE, rooms.EXPIRED_PAIRING_CODE}
"""Refusals that count towards the limit of wrong codes: each looked a code up."""
NOTICES = {
    "added": "Room added.",
    "renamed": "Room renamed.",
    "paired": "Display paired. It follows this room from now on.",
    "revoked": "Display revoked. It shows a new pairing code.",
    "bridge-revoked": "Receiver revoked: its token opens nothing now.",
}
NO_SUCH_BRIDGE = "No such receiver."


def now_ms(request: Request) -> int:
    ms: int = request.app.state.registry.clock.now_ms()
    return ms


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True, slots=True)
class DisplayEntry:
    id: int
    label: str
    online: bool
    last_seen: str


def ago(then_ms: int | None, now: int) -> str:
    """How long ago, in words: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    if then_ms is None:
        return "never"
    seconds = max(0, now - then_ms) // 1000
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _entry(display: Display, now: int) -> DisplayEntry:
    seen = None if display.last_seen_at is None else rooms_db.ms_of(display.last_seen_at)
    return DisplayEntry(display.id, display.label, rooms.online(seen, now), ago(seen, now))


async def _page(
    request: Request,
    instructor: Instructor,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    new_token: tuple[int, str] | None = None,
) -> Response:
    now = now_ms(request)
    async with request.app.state.sessions() as db:
        owned = await rooms_db.rooms_of(db, instructor.id)
        displays = await rooms_db.displays_of(db, instructor.id)
    heart_store = request.app.state.heart_store
    bridges = {room.id: await heart_store.bridges(room.id) for room in owned}
    per_room: dict[int, list[DisplayEntry]] = {room.id: [] for room in owned}
    for display in displays:
        if display.room_id in per_room:
            per_room[display.room_id].append(_entry(display, now))
    context: dict[str, Any] = {
        "instructor": instructor,
        "rooms": owned,
        "displays": per_room,
        "bridges": bridges,
        "new_token": new_token,
        "server_url": console.public_base(request),
        "errors": errors or {},
        "values": values or {},
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
        "display_url": f"{console.public_base(request)}/display",
    }
    return render(request, "pages/rooms.html", context, status_code)


def _done(what: str, room_id: int | None = None) -> Response:
    anchor = f"#room-{room_id}" if room_id is not None else ""
    return RedirectResponse(f"/console/rooms?done={what}{anchor}", status_code=303)


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def path_id(raw: object) -> int | None:
    """A whole-number id from a path or form value, or None if it can't be one."""
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 12:
        return int(raw)
    return None


async def rooms_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    return await _page(request, instructor)


async def add_room(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    name = _field(form, "name")
    try:
        async with request.app.state.sessions.begin() as db:
            room = await rooms_db.add_room(db, instructor.id, name)
    except ValidationError as exc:
        return await _page(
            request, instructor, errors={"add": str(exc)}, values={"name": name}, status_code=400
        )
    return _done("added", room.id)


async def rename_room(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    room_id = path_id(request.path_params.get("room_id"))
    name = _field(form, "name")
    try:
        async with request.app.state.sessions.begin() as db:
            room = None if room_id is None else await rooms_db.room_of(db, instructor.id, room_id)
            if room is None:
                raise HTTPException(404, NO_SUCH_ROOM)
            await rooms_db.rename_room(db, room, name)
    except ValidationError as exc:
        return await _page(
            request,
            instructor,
            errors={f"room-{room_id}": str(exc)},
            values={f"room-{room_id}": name},
            status_code=400,
        )
    return _done("renamed", room_id)


async def pair_display(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    code, label = _field(form, "code"), _field(form, "label")
    values = {"code": code, "label": label, "room_id": _field(form, "room_id")}
    throttle = request.app.state.pairing_throttle
    account, address, clock = f"instructor:{instructor.id}", _address(request), time.monotonic()
    if throttle.retry_after(account, address, clock) > 0:
        return await _page(
            request, instructor, errors={"pair": TOO_MANY_CODES}, values=values, status_code=429
        )
    room_id = path_id(values["room_id"])
    try:
        async with request.app.state.sessions.begin() as db:
            room = None if room_id is None else await rooms_db.room_of(db, instructor.id, room_id)
            if room is None:
                raise ValidationError(NO_SUCH_ROOM)
            await rooms_db.pair(db, room, code, label, now_ms(request))
    except ValidationError as exc:
        if str(exc) in GUESSES:
            throttle.failed(account, address, clock)
        return await _page(
            request, instructor, errors={"pair": str(exc)}, values=values, status_code=400
        )
    throttle.succeeded(account)
    return _done("paired", room_id)


async def revoke_display(request: Request) -> Response:
    instructor = await require_instructor(request)
    await checked_form(request)
    display_id = path_id(request.path_params.get("display_id"))
    async with request.app.state.sessions.begin() as db:
        display = None
        if display_id is not None:
            display = await rooms_db.owned_display(db, instructor.id, display_id)
        if display is None:
            raise HTTPException(404, NO_SUCH_DISPLAY)
        room_id = display.room_id
        rooms_db.revoke(display, now_ms(request))
    # Its class page's socket was opened with a token naming the wall: closed now.
    request.app.state.hub.disconnect(("wall", display.id), REVOKED)
    return _done("revoked", room_id)


# -- heart-rate receivers ----------------------------------------------------------------


async def _room_in_path(request: Request, instructor: Instructor) -> Room:
    """The instructor's room the path names; 404 for anyone else's, or none."""
    room_id = path_id(request.path_params.get("room_id"))
    async with request.app.state.sessions() as db:
        room = None if room_id is None else await rooms_db.room_of(db, instructor.id, room_id)
    if room is None:
        raise HTTPException(404, NO_SUCH_ROOM)
    return room


async def add_bridge(request: Request) -> Response:
    """A new heart-rate receiver for a room: its token is shown once, on this page."""
    instructor = await require_instructor(request)
    form = await checked_form(request)
    room = await _room_in_path(request, instructor)
    label = _field(form, "label")
    try:
        _, token = await request.app.state.heart_store.add_bridge(room.id, label)
    except ValidationError as exc:
        return await _page(
            request,
            instructor,
            errors={f"bridge-{room.id}": str(exc)},
            values={f"bridge-{room.id}": label},
            status_code=400,
        )
    response = await _page(request, instructor, new_token=(room.id, token))
    response.headers["Cache-Control"] = "no-store"  # the token is shown once
    return response


async def revoke_bridge(request: Request) -> Response:
    instructor = await require_instructor(request)
    await checked_form(request)
    room = await _room_in_path(request, instructor)
    bridge_id = path_id(request.path_params.get("bridge_id"))
    store = request.app.state.heart_store
    if bridge_id is None or not await store.revoke_bridge(room.id, bridge_id):
        raise HTTPException(404, NO_SUCH_BRIDGE)
    return _done("bridge-revoked", room.id)


# -- the open-class form's room and start time -------------------------------------------


async def class_room(db: AsyncSession, instructor: Instructor, raw: object) -> Room | None:
    """The room picked on the open-class form: none ("") or one of the instructor's."""
    if raw in (None, ""):
        return None
    room_id = path_id(raw)
    room = None if room_id is None else await rooms_db.room_of(db, instructor.id, room_id)
    if room is None:
        raise HTTPException(400, NO_SUCH_ROOM)
    return room


def _hours(ms: int) -> str:
    minutes = ms // 60_000
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def scheduled_start(raw: object, time_zone: object, now: int, lobby_timeout_ms: int) -> int | None:
    """The scheduled start typed on the open-class form, in epoch ms (None: not scheduled).

    The form's field has no zone; the console's browser sends its own
    (``time_zone``), else the server's is used. A class waits in the lobby
    until it starts, and a lobby closes by itself, so the start must leave it
    time to run.
    """
    if raw in (None, "") or not isinstance(raw, str):
        return None
    try:
        local = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise HTTPException(400, BAD_START) from None
    if local.tzinfo is None:
        try:
            zone = ZoneInfo(str(time_zone)) if time_zone else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        local = local.replace(tzinfo=zone) if zone is not None else local.astimezone()
    at = int(local.timestamp() * 1000)
    if at < now - START_MARGIN_MS:
        raise HTTPException(400, PAST_START)
    ahead = max(0, lobby_timeout_ms - LOBBY_AFTER_START_MS)
    if at > now + ahead:
        raise HTTPException(
            400,
            f"A class can be scheduled at most {_hours(ahead)} ahead: it waits in the lobby"
            f" until it starts, and a lobby closes by itself after {_hours(lobby_timeout_ms)}.",
        )
    return at


routes = [
    Route("/console/rooms", rooms_page, methods=["GET"]),
    Route("/console/rooms", add_room, methods=["POST"]),
    Route("/console/rooms/{room_id}/name", rename_room, methods=["POST"]),
    Route("/console/rooms/{room_id}/bridges", add_bridge, methods=["POST"]),
    Route("/console/rooms/{room_id}/bridges/{bridge_id}/revoke", revoke_bridge, methods=["POST"]),
    Route("/console/displays", pair_display, methods=["POST"]),
    Route("/console/displays/{display_id}/revoke", revoke_display, methods=["POST"]),
]
