"""Joining a class from a phone, rejoining it, and the participant's page.

A phone is known by its device cookie (``classroom_device``, a random id kept
for a year). Joining stores it on the participant, so the same phone joining
the same class again (a reload, a lost cookie of the class, the QR scanned
twice) gets the same participant back, with their team and score, never a
second one. The participant cookie of a class (a signed token, a day long) is
what the class's socket checks; it is issued again on every rejoin.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from classroom.db.models import Class, Instructor, Participant, Score, Team
from classroom.domain.boards import Person
from classroom.domain.errors import ValidationError
from classroom.domain.joining import UNKNOWN_CODE, normalize_join_code, normalize_nickname
from classroom.domain.session import TERMINAL, Phase
from classroom.domain.teams import balanced_team
from classroom.domain.timeline import Level, ScoreKind
from classroom.hub import wire
from classroom.web.csrf import checked_form
from classroom.web.templating import render
from classroom.web.tokens import PARTICIPANT_MAX_AGE, TokenError

NICKNAME_TAKEN = "Someone in this class already goes by {nickname}. How about {suggestion}?"
JOIN_LOCKED = "This class isn't taking new participants. Ask the instructor to open joining."
REMOVED = "The instructor has taken you out of this class."
UNKNOWN_TEAM = "Pick one of this class's teams, or Auto."
TEAMS_LOCKED = (
    "Teams are set now the class has started: you'll be put in the smallest one. Tap Join again."
)
BAD_LEVEL = "Pick beginner, standard or advanced."
JOINS_TOO_FAST = (
    "Too many phones joined from this network in the last minute. Wait a minute, then tap Join."
)
CLASS_FULL = "This class is full: it has {cap} people, as many as it takes. Ask the instructor."
AUTO = "auto"

DEVICE_COOKIE = "classroom_device"
DEVICE_MAX_AGE = 365 * 24 * 3600
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def participant_cookie(class_id: int) -> str:
    return f"classroom_p{class_id}"


def device_of(request: Request) -> str | None:
    """The device id the phone's cookie holds, if it holds a well-formed one."""
    value = request.cookies.get(DEVICE_COOKIE, "")
    return value if _DEVICE_ID.fullmatch(value) else None


def new_device_id() -> str:
    return secrets.token_urlsafe(18)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _admit(request: Request, response: Response, participant: Participant, device: str) -> None:
    """Give the phone the participant cookie of the class and keep its device cookie."""
    token = request.app.state.tokens.participant(participant.class_id, participant.id)
    response.set_cookie(
        participant_cookie(participant.class_id),
        token,
        max_age=PARTICIPANT_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    if request.cookies.get(DEVICE_COOKIE) != device:
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=DEVICE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )


async def _by_code(db: AsyncSession, raw: str) -> Class | None:
    """The class with this join code, open or ended (None for a malformed or unknown one)."""
    try:
        code = normalize_join_code(raw)
    except ValidationError:
        return None
    row: Class | None = await db.scalar(select(Class).where(Class.join_code == code))
    return row


async def _class_by_code(db: AsyncSession, raw: str) -> Class | None:
    """The open class with this join code."""
    row = await _by_code(db, raw)
    return None if row is None or Phase(row.phase) in TERMINAL else row


async def _on_device(db: AsyncSession, class_id: int, device: str | None) -> Participant | None:
    """The participant this device already is in the class, removed or not."""
    if device is None:
        return None
    found: Participant | None = await db.scalar(
        select(Participant)
        .where(Participant.class_id == class_id, Participant.device_id == device)
        .order_by(Participant.id)
        .limit(1)
    )
    return found


async def _teams(db: AsyncSession, class_id: int) -> list[Team]:
    rows = await db.scalars(
        select(Team).where(Team.class_id == class_id).order_by(Team.position, Team.id)
    )
    return list(rows)


async def team_sizes(db: AsyncSession, class_id: int, teams: Iterable[Team]) -> dict[int, int]:
    """Each team's member count (removed participants not counted), in display order."""
    rows = await db.execute(
        select(Participant.team_id, func.count())
        .where(Participant.class_id == class_id, Participant.removed.is_(False))
        .group_by(Participant.team_id)
    )
    counts = {team_id: int(n) for team_id, n in rows.all()}
    return {team.id: counts.get(team.id, 0) for team in teams}


LATEST_SHOWN = 12
"""How many of the latest to join a wall's lobby names."""


async def latest_names(db: AsyncSession, class_id: int) -> list[str]:
    """The latest to join, newest first, as a wall shows them (hidden names hidden)."""
    rows = await db.scalars(
        select(Participant)
        .where(Participant.class_id == class_id, Participant.removed.is_(False))
        .order_by(Participant.id.desc())
        .limit(LATEST_SHOWN)
    )
    return [
        Person(id=p.id, name=p.nickname, number=p.number or p.id, hidden=p.hidden).shown_name(
            public=True
        )
        for p in rows
    ]


async def joined_by_team(db: AsyncSession, class_id: int) -> list[dict[str, Any]]:
    """Each team's look and how many people are in it, in display order (for the lobby)."""
    teams = await _teams(db, class_id)
    sizes = await team_sizes(db, class_id, teams)
    return [
        {
            "id": t.id,
            "name": t.name,
            "letter": t.letter,
            "colour": t.colour,
            "pattern": t.pattern,
            "count": sizes[t.id],
        }
        for t in teams
    ]


async def roster_count(db: AsyncSession, class_id: int) -> int:
    """How many people are in the class (removed participants not counted)."""
    count = await db.scalar(
        select(func.count())
        .select_from(Participant)
        .where(Participant.class_id == class_id, Participant.removed.is_(False))
    )
    return int(count or 0)


async def nickname_suggestion(db: AsyncSession, class_id: int, nickname: str) -> str | None:
    """None if the nickname is free in the class; otherwise a free variant of it."""
    taken = await db.scalar(
        select(Participant.id).where(
            Participant.class_id == class_id, Participant.nickname == nickname
        )
    )
    if taken is None:
        return None
    base = nickname[:21]
    for n in range(2, 1000):
        candidate = f"{base}{n}"
        exists = await db.scalar(
            select(Participant.id).where(
                Participant.class_id == class_id, Participant.nickname == candidate
            )
        )
        if exists is None:
            return candidate
    return base + "!"


def team_strengths(
    members: Iterable[tuple[int, str]], history: Mapping[str, list[float]]
) -> dict[int, float]:
    """Each team's strength: the sum of its members' average past class totals.

    ``members`` pairs each member's team with their device; ``history`` lists,
    per device, the totals of its earlier classes. Members with no history add
    nothing.
    """
    strengths: dict[int, float] = {}
    for team_id, device in members:
        past = history.get(device)
        if past:
            strengths[team_id] = strengths.get(team_id, 0.0) + sum(past) / len(past)
    return strengths


async def past_strengths(db: AsyncSession, class_id: int, teams: Iterable[int]) -> dict[int, float]:
    """The strengths of ``teams``: the reps their members logged in earlier classes on
    their devices (see :func:`team_strengths`)."""
    member = aliased(Participant)
    members_of = (
        select(member.team_id, member.device_id)
        .where(
            member.class_id == class_id,
            member.removed.is_(False),
            member.team_id.in_(list(teams)),
            member.device_id.is_not(None),
        )
        .subquery()
    )
    earlier = (
        select(Participant.id, Participant.device_id)
        .where(
            Participant.device_id.in_(select(members_of.c.device_id)),
            Participant.class_id != class_id,
            Participant.removed.is_(False),
        )
        .subquery()
    )
    reps = (
        select(Score.participant_id, func.sum(Score.value).label("reps"))
        .where(
            Score.participant_id.in_(select(earlier.c.id)),
            Score.kind == ScoreKind.REPS.value,
            Score.withdrawn.is_(False),
            Score.undoes == "",
        )
        .group_by(Score.participant_id)
        .subquery()
    )
    past = (
        await db.execute(
            select(earlier.c.device_id, func.coalesce(reps.c.reps, 0)).outerjoin(
                reps, reps.c.participant_id == earlier.c.id
            )
        )
    ).all()
    if not past:
        return {}
    history: dict[str, list[float]] = {}
    for device, total in past:
        history.setdefault(str(device), []).append(float(total))
    members = (await db.execute(select(members_of.c.team_id, members_of.c.device_id))).all()
    return team_strengths(((int(t), str(d)) for t, d in members), history)


def _team_choice(row: Class | None, teams: list[Team]) -> dict[str, Any]:
    """What the join form offers about teams for this class."""
    if row is None or not teams:
        return {"teams": [], "teams_locked": False}
    return {"teams": teams, "teams_locked": Phase(row.phase) is not Phase.LOBBY}


async def join_page(request: Request) -> Response:
    """The join form; with a code (the QR code's link), it names the class first.

    A class that has ended says so instead, with the way to its results.
    """
    code = str(request.path_params.get("code") or request.query_params.get("code", ""))[:12]
    device = device_of(request)
    async with request.app.state.sessions() as db:
        row = await _by_code(db, code) if code else None
        if row is not None and Phase(row.phase) in TERMINAL:
            took_part = await _on_device(db, row.id, device)
            context = {"ended": row, "took_part": took_part is not None}
            return render(request, "pages/join_ended.html", context)
        known = await _on_device(db, row.id, device) if row is not None else None
        teams = await _teams(db, row.id) if row is not None else []
        instructor = await db.get(Instructor, row.instructor_id) if row is not None else None
    if row is not None and known is not None and not known.removed and device is not None:
        response = RedirectResponse(f"/play/{row.id}", status_code=303)
        _admit(request, response, known, device)
        return response
    context = {"code": code, "team": AUTO, **_team_choice(row, teams)}
    if row is not None:
        context["joining"] = row
        context["coach"] = instructor.display_name if instructor is not None else ""
    if row is not None and row.join_locked:
        context["error"] = JOIN_LOCKED
    return render(request, "pages/join.html", context)


async def team_choice(request: Request) -> Response:
    """The join form's team choice for a typed code (htmx fetches it as the code is typed)."""
    code = request.query_params.get("code", "")[:32]
    async with request.app.state.sessions() as db:
        row = await _class_by_code(db, code)
        teams = await _teams(db, row.id) if row is not None else []
    context = {"team": AUTO, **_team_choice(row, teams)}
    return render(request, "fragments/team_choice.html", context)


async def join(request: Request) -> Response:
    form = await checked_form(request)
    attempt = _Attempt(
        code=str(form.get("code", ""))[:32],
        nickname=str(form.get("nickname", ""))[:400],
        level=str(form.get("level", Level.STANDARD.value))[:20],
        team=str(form.get("team", AUTO) or AUTO)[:20],
        hidden=bool(form.get("hidden")),
    )
    wait = _join_rate_wait(request)
    if wait > 0:
        refused = attempt.refuse(request, JOINS_TOO_FAST, 429)
        refused.headers["Retry-After"] = str(math.ceil(wait))
        return refused
    try:
        code = normalize_join_code(attempt.code)
        nickname = normalize_nickname(attempt.nickname)
    except ValidationError as exc:
        return attempt.refuse(request, str(exc), 400)
    try:
        level = Level(attempt.level)
    except ValueError:
        return attempt.refuse(request, BAD_LEVEL, 400)
    device = device_of(request) or new_device_id()
    try:
        async with request.app.state.sessions.begin() as db:
            cap = request.app.state.settings.max_participants
            outcome = await _join(db, attempt, code, nickname, level, device, cap)
            count = (
                0 if isinstance(outcome, _Refusal) else await roster_count(db, outcome[0].class_id)
            )
    except IntegrityError:  # the same nickname, joined a moment ago from another phone
        suggestion = nickname[:23] + "2"
        message = NICKNAME_TAKEN.format(nickname=nickname, suggestion=suggestion)
        return replace(attempt, nickname=suggestion).refuse(request, message, 409)
    if isinstance(outcome, _Refusal):
        if outcome.nickname is not None:  # the form comes back with the suggestion in it
            attempt = replace(attempt, nickname=outcome.nickname)
        return attempt.refuse(request, outcome.message, outcome.status, outcome.row, outcome.teams)
    participant, new = outcome
    if new:
        await roster_changed(request, participant.class_id, count)
        joined(request, participant)
    response = RedirectResponse(f"/play/{participant.class_id}", status_code=303)
    _admit(request, response, participant, device)
    return response


def joined(request: Request, participant: Participant) -> None:
    """``participant.joined``, for the webhooks of the class's instructor."""

    async def emit() -> None:
        async with request.app.state.sessions() as db:
            row = await db.get(Class, participant.class_id)
            team = None if participant.team_id is None else await db.get(Team, participant.team_id)
        if row is None:
            return
        data = {
            "class": {"id": row.id, "title": row.title, "join_code": row.join_code},
            "participant": {
                "id": participant.id,
                "number": participant.number,
                "nickname": participant.nickname,
                "level": participant.level,
                "team": None if team is None else team.name,
            },
        }
        await request.app.state.webhooks.emit(row.instructor_id, "participant.joined", data)

    request.app.state.webhooks.run_soon(emit(), "participant.joined")


def _join_rate_wait(request: Request) -> float:
    """Seconds until the request's address may join again (CLASSROOM_JOINS_PER_MINUTE).

    Every join counts, whether it succeeds or not: a phone rejoining counts too.
    """
    rate = request.app.state.join_rate
    if rate is None:
        return 0.0
    address = request.client.host if request.client else "unknown"
    now = time.monotonic()
    wait: float = rate.retry_after(address, address, now)
    if wait <= 0:
        rate.failed(address, address, now)
    return wait


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A join form as sent, to fill the form again when it is refused."""

    code: str
    nickname: str
    level: str
    team: str
    hidden: bool

    def refuse(
        self,
        request: Request,
        message: str,
        status: int,
        row: Class | None = None,
        teams: list[Team] | None = None,
    ) -> Response:
        context = {
            "code": self.code,
            "nickname": self.nickname[:40],
            "level": self.level,
            "hidden": self.hidden,
            "team": self.team,
            "error": message,
            **_team_choice(row, teams or []),
        }
        return render(request, "pages/join.html", context, status_code=status)


@dataclass(frozen=True, slots=True)
class _Refusal:
    message: str
    status: int
    row: Class | None = None
    teams: list[Team] | None = None
    nickname: str | None = None  # a free nickname to offer in the form


async def _join(
    db: AsyncSession,
    attempt: _Attempt,
    code: str,
    nickname: str,
    level: Level,
    device: str,
    cap: int = 0,
) -> tuple[Participant, bool] | _Refusal:
    """The participant joined (True) or found again on this device (False), or why not.

    ``cap`` is the most participants the class may have (0: no cap)."""
    # Joins of one class take turns (on PostgreSQL): numbers and team sizes stay exact.
    row = await db.scalar(select(Class).where(Class.join_code == code).with_for_update())
    if row is None or Phase(row.phase) in TERMINAL:
        return _Refusal(UNKNOWN_CODE, 404)
    teams = await _teams(db, row.id)
    known = await _on_device(db, row.id, device)
    if known is not None:
        return _Refusal(REMOVED, 403, row, teams) if known.removed else (known, False)
    if row.join_locked:
        return _Refusal(JOIN_LOCKED, 403, row, teams)
    await _take_turns(db, row.id)
    if cap and await roster_count(db, row.id) >= cap:
        return _Refusal(CLASS_FULL.format(cap=cap), 403, row, teams)
    team_id: int | None = None
    if attempt.team != AUTO:
        if Phase(row.phase) is not Phase.LOBBY:
            return _Refusal(TEAMS_LOCKED, 409, row, teams)
        team_id = next((t.id for t in teams if str(t.id) == attempt.team), None)
        if team_id is None:
            return _Refusal(UNKNOWN_TEAM, 400, row, teams)
    elif teams:
        sizes = await team_sizes(db, row.id, teams)
        smallest = [team for team, size in sizes.items() if size == min(sizes.values())]
        strengths = await past_strengths(db, row.id, smallest) if len(smallest) > 1 else {}
        team_id = balanced_team(sizes, strengths)
    suggestion = await nickname_suggestion(db, row.id, nickname)
    if suggestion is not None:
        message = NICKNAME_TAKEN.format(nickname=nickname, suggestion=suggestion)
        return _Refusal(message, 409, row, teams, nickname=suggestion)
    last = await db.scalar(
        select(func.max(Participant.number)).where(Participant.class_id == row.id)
    )
    participant = Participant(
        class_id=row.id,
        nickname=nickname,
        level=level.value,
        team_id=team_id,
        number=int(last or 0) + 1,
        device_id=device,
        hidden=attempt.hidden,
    )
    db.add(participant)
    await db.flush()
    return participant, True


async def _take_turns(db: AsyncSession, class_id: int) -> None:
    """On SQLite, take the database's write lock before counting who is in the class.

    PostgreSQL holds the class's row lock already (``with_for_update``); SQLite ignores
    that and starts a transaction only at its first write, so this no-op write is it.
    Until this join commits, the count, the numbers and the team sizes stay true.
    """
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(
            update(Class)
            .where(Class.id == class_id)
            .values(join_locked=Class.join_locked)
            .execution_options(synchronize_session=False)
        )


async def roster_changed(request: Request, class_id: int, count: int) -> None:
    """Tell the class's screens: live boards reload the roster; every screen gets the
    count, and how many are in each team (the wall's lobby shows them)."""
    await request.app.state.registry.roster_changed(class_id)
    async with request.app.state.sessions() as db:
        teams = await joined_by_team(db, class_id)
        names = await latest_names(db, class_id)
    request.app.state.hub.broadcast(class_id, [wire.roster(count, teams, names)])


async def play_page(request: Request) -> Response:
    class_id = int(request.path_params["class_id"])
    token = request.cookies.get(participant_cookie(class_id), "")
    try:
        grant = request.app.state.tokens.verify(token, class_id)
    except TokenError:
        grant = None
    device = device_of(request)
    async with request.app.state.sessions() as db:
        row = await db.get(Class, class_id)
        if grant is not None and grant.role == "participant":
            participant = await db.get(Participant, grant.participant_id)
        else:  # no cookie of the class, or an expired one: the device may be known
            participant = await _on_device(db, class_id, device)
        team = (
            await db.get(Team, participant.team_id) if participant and participant.team_id else None
        )
    if participant is None or row is None or participant.class_id != class_id:
        return RedirectResponse("/join", status_code=303)
    if participant.removed:
        return render(request, "pages/join.html", {"code": "", "error": REMOVED}, 403)
    context = {
        "cls": row,
        "participant": participant,
        "team": team,
        "socket_url": f"/ws/classes/{class_id}",
    }
    response: HTMLResponse = render(request, "pages/play.html", context)
    if grant is None and device is not None:
        _admit(request, response, participant, device)
    return response
