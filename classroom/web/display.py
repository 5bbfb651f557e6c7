"""The wall display of a class, opened with the display link from the console."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from classroom.db import display_links
from classroom.db.models import Class
from classroom.web.console import public_base, qr_svg
from classroom.web.participants import joined_by_team, latest_names, roster_count
from classroom.web.templating import render
from classroom.web.tokens import REVOKED, Grant, TokenError

NOT_A_DISPLAY_LINK = "this link is not valid"


async def display_page(request: Request) -> Response:
    class_id = int(request.path_params["class_id"])
    token = request.query_params.get("token", "")
    try:
        await display_grant(request, token, class_id)
    except TokenError as exc:
        return render(request, "pages/error.html", {"message": f"Display: {exc}."}, 403)
    async with request.app.state.sessions() as db:
        row = await db.get(Class, class_id)
    if row is None:
        return render(request, "pages/error.html", {"message": "No such class."}, 404)
    return await class_display(request, row, token, f"/display/{class_id}/results?token={token}")


async def display_grant(conn: HTTPConnection, token: str, class_id: int) -> Grant:
    """The display grant ``token`` gives for ``class_id``; raises :class:`TokenError`."""
    grant: Grant = conn.app.state.tokens.verify(token, class_id)
    if grant.role != "display":
        raise TokenError(NOT_A_DISPLAY_LINK)
    await display_opens(conn, grant)
    return grant


async def display_opens(conn: HTTPConnection, grant: Grant) -> None:
    """Raise :class:`TokenError` if the display's link or wall was revoked since."""
    if grant.source is None:
        return
    async with conn.app.state.sessions() as db:
        if not await display_links.opens(db, grant.class_id, grant.link_id, grant.wall_id):
            raise TokenError(REVOKED)


async def class_display(request: Request, row: Class, token: str, results_url: str) -> Response:
    """The display page of ``row``; its socket opens with the display ``token``.

    Also shown at ``/display`` by a display paired to the class's room
    (classroom/web/pairing.py), which moves on to ``results_url`` after the end.
    """
    class_id = row.id
    async with request.app.state.sessions() as db:
        joined = await joined_by_team(db, class_id)
        names = await latest_names(db, class_id)
        count = await roster_count(db, class_id)
    join_url = f"{public_base(request)}/j/{row.join_code}"
    context = {
        "cls": row,
        "join_url": join_url,
        "qr": qr_svg(join_url),
        "joined": joined,
        "names": names,
        "participant_count": count,
        "socket_url": f"/ws/classes/{class_id}?token={token}",
        "results_url": results_url,
    }
    return render(request, "pages/display.html", context)
