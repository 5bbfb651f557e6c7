"""The wall display of a class, opened with the display link from the console."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from classroom.db.models import Class
from classroom.web.console import public_base, qr_svg
from classroom.web.participants import joined_by_team, roster_count
from classroom.web.templating import render
from classroom.web.tokens import TokenError


async def display_page(request: Request) -> Response:
    class_id = int(request.path_params["class_id"])
    token = request.query_params.get("token", "")
    try:
        grant = request.app.state.tokens.verify(token, class_id)
    except TokenError as exc:
        return render(request, "pages/error.html", {"message": f"Display: {exc}."}, 403)
    if grant.role != "display":
        return render(
            request, "pages/error.html", {"message": "Display: this link is not valid."}, 403
        )
    async with request.app.state.sessions() as db:
        row = await db.get(Class, class_id)
    if row is None:
        return render(request, "pages/error.html", {"message": "No such class."}, 404)
    return await class_display(request, row, token, f"/display/{class_id}/results?token={token}")


async def class_display(request: Request, row: Class, token: str, results_url: str) -> Response:
    """The display page of ``row``; its socket opens with the display ``token``.

    Also shown at ``/display`` by a display paired to the class's room
    (classroom/web/pairing.py), which moves on to ``results_url`` after the end.
    """
    class_id = row.id
    async with request.app.state.sessions() as db:
        joined = await joined_by_team(db, class_id)
        count = await roster_count(db, class_id)
    join_url = f"{public_base(request)}/j/{row.join_code}"
    context = {
        "cls": row,
        "join_url": join_url,
        "qr": qr_svg(join_url),
        "joined": joined,
        "participant_count": count,
        "socket_url": f"/ws/classes/{class_id}?token={token}",
        "results_url": results_url,
    }
    return render(request, "pages/display.html", context)
