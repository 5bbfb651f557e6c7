"""Joining a class from a phone, and the participant's page."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from classroom.db.models import Class, Participant
from classroom.domain.errors import ValidationError
from classroom.domain.joining import UNKNOWN_CODE, normalize_join_code, normalize_nickname
from classroom.domain.session import TERMINAL, Phase
from classroom.domain.timeline import Level
from classroom.hub import wire
from classroom.web.csrf import checked_form
from classroom.web.templating import render
from classroom.web.tokens import TokenError

NICKNAME_TAKEN = "Someone in this class already goes by {nickname}. How about {suggestion}?"


def participant_cookie(class_id: int) -> str:
    return f"classroom_p{class_id}"


async def join_page(request: Request) -> Response:
    code = request.path_params.get("code") or request.query_params.get("code", "")
    return render(request, "pages/join.html", {"code": str(code)[:12]})


async def join(request: Request) -> Response:
    form = await checked_form(request)
    raw_code = str(form.get("code", ""))[:32]
    raw_nickname = str(form.get("nickname", ""))[:400]
    level = str(form.get("level", Level.STANDARD.value))

    def refuse(message: str, status: int) -> Response:
        context = {"code": raw_code, "nickname": raw_nickname[:40], "error": message}
        return render(request, "pages/join.html", context, status_code=status)

    try:
        code = normalize_join_code(raw_code)
        nickname = normalize_nickname(raw_nickname)
        chosen_level = Level(level)
    except ValidationError as exc:
        return refuse(str(exc), 400)
    except ValueError:
        return refuse("Pick beginner, standard or advanced.", 400)
    async with request.app.state.sessions.begin() as db:
        row = await db.scalar(select(Class).where(Class.join_code == code))
        if row is None or Phase(row.phase) in TERMINAL:
            return refuse(UNKNOWN_CODE, 404)
        taken = await db.scalar(
            select(Participant.id).where(
                Participant.class_id == row.id, Participant.nickname == nickname
            )
        )
        if taken is not None:
            suggestion = await _free_variant(db, row.id, nickname)
            return refuse(NICKNAME_TAKEN.format(nickname=nickname, suggestion=suggestion), 409)
        participant = Participant(class_id=row.id, nickname=nickname, level=chosen_level.value)
        db.add(participant)
        try:
            await db.flush()
        except IntegrityError:
            return refuse(NICKNAME_TAKEN.format(nickname=nickname, suggestion=nickname + "2"), 409)
        class_id, participant_id = row.id, participant.id
        count = await db.scalar(
            select(func.count()).select_from(Participant).where(Participant.class_id == class_id)
        )
    request.app.state.hub.broadcast(class_id, [wire.roster(int(count or 0))])
    token = request.app.state.tokens.participant(class_id, participant_id)
    response = RedirectResponse(f"/play/{class_id}", status_code=303)
    response.set_cookie(
        participant_cookie(class_id),
        token,
        max_age=24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


async def _free_variant(db: AsyncSession, class_id: int, nickname: str) -> str:
    base = nickname[:22]
    for n in range(2, 100):
        candidate = f"{base}{n}"
        exists = await db.scalar(
            select(Participant.id).where(
                Participant.class_id == class_id, Participant.nickname == candidate
            )
        )
        if exists is None:
            return candidate
    return base + "!"


async def play_page(request: Request) -> Response:
    class_id = int(request.path_params["class_id"])
    token = request.cookies.get(participant_cookie(class_id), "")
    try:
        grant = request.app.state.tokens.verify(token, class_id)
    except TokenError:
        grant = None
    if grant is None or grant.role != "participant":
        return RedirectResponse("/join", status_code=303)
    async with request.app.state.sessions() as db:
        participant = await db.get(Participant, grant.participant_id)
        row = await db.get(Class, class_id)
    if participant is None or row is None or participant.class_id != class_id:
        return RedirectResponse("/join", status_code=303)
    context = {
        "cls": row,
        "participant": participant,
        "socket_url": f"/ws/classes/{class_id}",
    }
    return render(request, "pages/play.html", context)
