"""A wall display that follows its room: ``/display`` and ``/display/state``.

A screen that opens ``/display`` without a display cookie gets a long random
secret in one (HttpOnly, SameSite=Lax, kept for 400 days) and a row in
``displays``; only the secret's hash is stored. Until the instructor pairs it
to a room (classroom/web/rooms.py) it shows a pairing code, renewed when it
expires. Once paired, ``/display`` shows what :func:`classroom.domain.rooms.wall_view`
chooses: the room's live class, its class in the lobby, the results of a class
that just finished, or the room's welcome screen. A class is shown with its
usual display page, its socket opened with a display token minted here.

The page polls ``/display/state`` (static/wall.js) every few seconds. The
answer names the **target**, a short string for what the display should show
(``pair:<code>``, ``class:<id>``, ``results:<id>``, ``welcome:…``); when it
differs from the page's own, the page loads ``/display`` again. A display
that was revoked, or whose cookie is unknown, is answered ``new`` and starts
over with a new secret and code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from classroom.config import Settings
from classroom.db import rooms as rooms_db
from classroom.db.models import Class, Display, Room
from classroom.domain.rooms import PAIRING_CODE_TTL_MS, RoomClass, WallKind, wall_view
from classroom.web import display, results
from classroom.web.console import public_base
from classroom.web.rooms import now_ms
from classroom.web.templating import render

COOKIE = "classroom_display"
COOKIE_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie
STATE_URL = "/display/state"
NEW = "new"
TOO_MANY_DISPLAYS = (
    "Too many new displays from this network just now. This screen tries again in a minute."
)


@dataclass(frozen=True, slots=True)
class Wall:
    """What a display shows now, and the target its page compares to notice a change."""

    target: str
    display: Display
    room: Room | None = None
    shown: RoomClass | None = None  # the class, or the class whose results are shown
    next_class: RoomClass | None = None  # on the welcome screen


async def _wall(db: AsyncSession, display: Display, now: int, settings: Settings) -> Wall:
    room = await db.get(Room, display.room_id) if rooms_db.paired(display) else None
    if room is None:
        await rooms_db.keep_code_fresh(db, display, now)
        return Wall(f"pair:{display.pairing_code}", display)
    results_ms = settings.wall_results_min * 60_000
    view = wall_view(await rooms_db.room_classes(db, room.id, now, results_ms), now, results_ms)
    if view.kind is not WallKind.WELCOME and view.shown is not None:
        return Wall(f"{view.kind.value}:{view.shown.id}", display, room, view.shown)
    upcoming = view.next_class
    plan = "" if upcoming is None else f"{upcoming.id}@{upcoming.scheduled_ms}"
    return Wall(f"welcome:{room.id}:{plan}:{room.name}", display, room, next_class=upcoming)


async def _identify(db: AsyncSession, request: Request) -> Display | None:
    """The display whose cookie ``request`` carries, unless it was revoked or is unknown."""
    found = await rooms_db.display_for(db, request.cookies.get(COOKIE, ""))
    return None if found is None or rooms_db.retired(found) else found


async def wall_page(request: Request) -> Response:
    now = now_ms(request)
    fresh = None
    async with request.app.state.sessions.begin() as db:
        found = await _identify(db, request)
        if found is None:
            # New displays are counted per address, like failed sign-ins.
            throttle = request.app.state.display_throttle
            address = request.client.host if request.client else "unknown"
            if throttle.retry_after(address, address, time.monotonic()) > 0:
                return _too_many(request)
            throttle.failed(address, address, time.monotonic())
            await rooms_db.forget_stale(db, now)
            found, fresh = await rooms_db.new_display(db, now)
        rooms_db.seen(found, now)
        wall = await _wall(db, found, now, request.app.state.settings)
        shown = None if wall.shown is None else await db.get(Class, wall.shown.id)
    request.state.wall_target = wall.target  # templates/base.html hands it to static/wall.js
    response = await _render(request, wall, shown, now)
    response.headers["Cache-Control"] = "no-store"
    if fresh is not None:
        response.set_cookie(
            COOKIE,
            fresh,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


async def _render(request: Request, wall: Wall, shown: Class | None, now: int) -> Response:
    if shown is not None and wall.target.startswith("class:"):
        token = request.app.state.tokens.display(shown.id, wall=wall.display.id)
        return await display.class_display(request, shown, token, results_url="/display")
    if shown is not None:
        return await results.wall_results(request, shown)
    if wall.room is None:
        context = {
            "code": wall.display.pairing_code,
            "console_url": f"{public_base(request)}/console/rooms",
            "minutes": PAIRING_CODE_TTL_MS // 60_000,
        }
        return render(request, "pages/display_pairing.html", context)
    upcoming = wall.next_class
    context = {
        "room": wall.room,
        "now": _local(now),
        "next_class": upcoming,
        "next_at": None if upcoming is None else _local(upcoming.scheduled_ms or 0),
    }
    return render(request, "pages/display_welcome.html", context)


def _local(ms: int) -> datetime:
    """An instant in the server's time zone; the wall's browser shows it in its own."""
    return datetime.fromtimestamp(ms / 1000).astimezone()


def _too_many(request: Request) -> Response:
    context = {"error": TOO_MANY_DISPLAYS, "retry_s": 60}
    response = render(request, "pages/display_pairing.html", context, 429)
    response.headers["Retry-After"] = "60"
    return response


async def wall_state(request: Request) -> Response:
    """What this display should show now, as a target (see the module's docstring)."""
    now = now_ms(request)
    async with request.app.state.sessions.begin() as db:
        found = await _identify(db, request)
        if found is not None:
            rooms_db.seen(found, now)
            wall = await _wall(db, found, now, request.app.state.settings)
    body = {
        "target": NEW if found is None else wall.target,
        "server_now": now,
        "version": getattr(request.app.state, "asset_version", ""),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


routes = [
    Route("/display", wall_page, methods=["GET"]),
    Route(STATE_URL, wall_state, methods=["GET"]),
]
