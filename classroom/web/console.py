"""The instructor's console: routines to open, a class's lobby and controls."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import segno
from markupsafe import escape
from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from classroom import logs
from classroom.db import classes as class_db
from classroom.db import display_links
from classroom.db import rooms as rooms_db
from classroom.db import routines as routine_db
from classroom.db.models import Class, Instructor, Participant
from classroom.domain.commands import parse_command
from classroom.domain.errors import DomainError, ValidationError
from classroom.domain.session import TERMINAL, Phase, RestartPolicy
from classroom.live.actor import ClassFailed
from classroom.live.router import Unavailable
from classroom.web import rooms as room_pages
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.templating import render
from classroom.web.tokens import REVOKED
from classroom.webhooks import class_data

UNKNOWN_COMMAND = "That isn't a class control."
UNKNOWN_ROUTINE = "Pick a routine from the list."
UNKNOWN_POLICY = "After a restart a class either keeps running or pauses."


def public_base(request: Request) -> str:
    configured: str = request.app.state.settings.public_url
    return configured or str(request.base_url).rstrip("/")


def qr_svg(url: str) -> str:
    """An inline SVG QR code of ``url``, sized by CSS."""
    code = segno.make(url, error="m")
    svg: str = code.svg_inline(scale=1, border=2, dark="#000", light="#fff", omitsize=True)
    return svg


async def _owned_class(request: Request, instructor: Instructor) -> Class:
    try:
        class_id = int(request.path_params["class_id"])
    except (KeyError, ValueError):
        raise HTTPException(404, "No such class.") from None
    logs.current_class.set(class_id)  # the request's log lines are about this class
    async with request.app.state.sessions() as db:
        row: Class | None = await db.get(Class, class_id)
    if row is None or row.instructor_id != instructor.id:
        raise HTTPException(404, "No such class.")
    return row


async def home(request: Request) -> Response:
    instructor = await require_instructor(request)
    async with request.app.state.sessions() as db:
        routines = await routine_db.visible_to(db, instructor.id)
        rows = await db.scalars(
            select(Class)
            .where(Class.instructor_id == instructor.id)
            .order_by(Class.created_at.desc())
            .limit(20)
        )
        recent = list(rows)
        rooms = await rooms_db.rooms_of(db, instructor.id)
    # What the instructor came for first: the classes running or waiting in the lobby.
    current = [row for row in recent if Phase(row.phase) not in TERMINAL]
    current.sort(key=lambda row: Phase(row.phase) is Phase.LOBBY)  # live ones first
    ended = [row for row in recent if Phase(row.phase) in TERMINAL][:5]
    context = {
        "instructor": instructor,
        "routines": routines,
        "current": current,
        "ended": ended,
        "rooms": rooms,
    }
    return render(request, "pages/console.html", context)


async def open_class(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await checked_form(request)
    try:
        routine_id = int(str(form.get("routine_id", "")))
    except ValueError:
        raise HTTPException(400, UNKNOWN_ROUTINE) from None
    try:
        on_restart = RestartPolicy(str(form.get("on_restart") or RestartPolicy.CONTINUE.value))
    except ValueError:
        raise HTTPException(400, UNKNOWN_POLICY) from None
    row = await open_new_class(
        request,
        instructor,
        routine_id,
        room=form.get("room_id"),
        scheduled_at=form.get("scheduled_at"),
        time_zone=form.get("tz"),
        on_restart=on_restart,
    )
    return RedirectResponse(f"/console/classes/{row.id}", status_code=303)


async def open_new_class(
    request: Request,
    instructor: Instructor,
    routine_id: int,
    *,
    room: object = None,
    scheduled_at: object = None,
    time_zone: object = None,
    on_restart: RestartPolicy = RestartPolicy.CONTINUE,
) -> Class:
    """Open a class of one of the routines the instructor sees (the console's form, and
    the API). Raises HTTPException (400) with a sentence for a bad routine, room or time."""
    policy = replace(request.app.state.class_policy, on_restart=on_restart)
    now_ms = request.app.state.registry.clock.now_ms()
    # Where and when (classroom/web/rooms.py): a room's displays follow its classes.
    scheduled = room_pages.scheduled_start(scheduled_at, time_zone, now_ms, policy.lobby_timeout_ms)
    async with request.app.state.sessions.begin() as db:
        routine = await routine_db.get_visible(db, instructor.id, routine_id)
        if routine is None:
            raise HTTPException(400, UNKNOWN_ROUTINE)
        chosen = await room_pages.class_room(db, instructor, room)
        row = await class_db.open_class(db, instructor.id, routine, now_ms=now_ms, policy=policy)
        row.room_id = None if chosen is None else chosen.id
        row.scheduled_at = None if scheduled is None else rooms_db.stamp(scheduled)
    # This process runs the class: the console's socket comes here next. (Unclaimed, any
    # process's watch would claim it within a second, whichever came first.)
    with contextlib.suppress(Exception):  # then the watch claims it, a moment later
        await request.app.state.registry.locate(row.id)
    data = {"class": class_data(row, public_base(request))}
    request.app.state.webhooks.emit_soon(instructor.id, "class.opened", data)
    return row


async def class_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _owned_class(request, instructor)
    base = public_base(request)
    join_url = f"{base}/j/{row.join_code}"
    links = await class_links(request, row)
    async with request.app.state.sessions() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.class_id == row.id, Participant.removed.is_(False))
        )
    context: dict[str, Any] = {
        "instructor": instructor,
        "cls": row,
        "join_url": join_url,
        "display_links": links,
        "display_url": links[0].url if links else "",
        "qr": qr_svg(join_url),
        "participant_count": count,
        "ended": Phase(row.phase) in TERMINAL,
        "socket_url": f"/ws/classes/{row.id}",
    }
    return render(request, "pages/console_class.html", context)


async def command(request: Request) -> Response:
    """Apply a control (start, pause, …). Answers with a fragment saying what happened."""
    instructor = await require_instructor(request)
    row = await _owned_class(request, instructor)
    form = await checked_form(request)
    try:
        control = parse_command(form.get("command"), form, from_form=True)
        await request.app.state.registry.submit(row.id, control)
    except (DomainError, ClassFailed, Unavailable) as exc:
        status = 400 if isinstance(exc, ValidationError) else 409
        if isinstance(exc, ClassFailed | Unavailable):
            status = 503
        return HTMLResponse(f'<p class="notice error" role="alert">{escape(str(exc))}</p>', status)
    if request.headers.get("hx-request"):
        return HTMLResponse("", 200)
    return RedirectResponse(f"/console/classes/{row.id}", status_code=303)


async def history(request: Request) -> Response:
    """Classes that have ended: when, what, how long they really ran, and who came."""
    instructor = await require_instructor(request)
    ended = [Phase.FINISHED.value, Phase.CANCELLED.value]
    async with request.app.state.sessions() as db:
        joined = (
            select(Participant.class_id, func.count().label("n"))
            .group_by(Participant.class_id)
            .subquery()
        )
        rows = await db.execute(
            select(Class, func.coalesce(joined.c.n, 0))
            .outerjoin(joined, joined.c.class_id == Class.id)
            .where(Class.instructor_id == instructor.id, Class.phase.in_(ended))
            .order_by(Class.created_at.desc())
            .limit(200)
        )
        classes = [class_db.history_entry(row, int(count)) for row, count in rows]
    return render(request, "pages/history.html", {"instructor": instructor, "classes": classes})


# -- wall display links: one per screen that should show the class, revoked one by one --

NO_SUCH_LINK = "This class has no such display link, or it was revoked already."


@dataclass(frozen=True, slots=True)
class ShownLink:
    id: int
    url: str
    created_at: datetime


async def class_links(request: Request, row: Class) -> list[ShownLink]:
    """The class's display links that still work; a class's first is made on first view."""
    async with request.app.state.sessions.begin() as db:
        links = await display_links.of_class(db, row.id)
        if not links:
            links = [await display_links.create(db, row.id, room_pages.now_ms(request))]
    base = public_base(request)
    tokens = request.app.state.tokens
    return [
        ShownLink(
            link.id,
            f"{base}/display/{row.id}?token={tokens.display(row.id, link=link.id)}",
            link.created_at,
        )
        for link in links
        if link.revoked_at is None
    ]


async def new_link(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _owned_class(request, instructor)
    await checked_form(request)
    async with request.app.state.sessions.begin() as db:
        await display_links.create(db, row.id, room_pages.now_ms(request))
    return RedirectResponse(f"/console/classes/{row.id}#display-links", status_code=303)


async def revoke_link(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _owned_class(request, instructor)
    await checked_form(request)
    link_id = room_pages.path_id(request.path_params.get("link_id")) or 0
    async with request.app.state.sessions.begin() as db:
        revoked = await display_links.revoke(db, row.id, link_id, room_pages.now_ms(request))
    if not revoked:
        raise HTTPException(404, NO_SUCH_LINK)
    request.app.state.hub.disconnect(("link", link_id), REVOKED)
    return RedirectResponse(f"/console/classes/{row.id}#display-links", status_code=303)


_LINKS = "/console/classes/{class_id:int}/display-links"
routes = [
    Route(_LINKS, new_link, methods=["POST"]),
    Route(_LINKS + "/{link_id}/revoke", revoke_link, methods=["POST"]),
]
