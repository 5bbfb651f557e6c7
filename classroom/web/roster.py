"""The instructor's roster of a class: teams, team mode, joining, and the people in it.

Teams are set up in the lobby (a count with default names, names of one's own,
or a saved template); once the class has started they stay as they are, but
the instructor can still move people between them. Every change reloads the
class's live boards and tells the consoles how many people are in.

Each form answers an htmx request with the roster fragment (with a notice of
what happened, or why nothing did); without htmx it goes back to the roster page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from classroom.db.models import Class, Instructor, Participant, Team, TeamTemplate
from classroom.domain.errors import ValidationError
from classroom.domain.joining import normalize_nickname
from classroom.domain.names import one_line
from classroom.domain.session import TERMINAL, Phase
from classroom.domain.teams import (
    BAD_COUNT,
    MAX_TEAMS,
    MIN_TEAMS,
    TeamMode,
    TeamSpec,
    balanced_team,
    default_team_names,
    team_specs,
)
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.participants import (
    NICKNAME_TAKEN,
    UNKNOWN_TEAM,
    nickname_suggestion,
    roster_changed,
    roster_count,
    team_sizes,
)
from classroom.web.templating import render

NO_SUCH_CLASS = "No such class."
NO_SUCH_PARTICIPANT = "No such participant in this class."
TEAMS_SET = "Teams are set up in the lobby. Now the class has started you can still move people."
UNKNOWN_TEMPLATE = "Pick one of your saved team templates."
TEMPLATE_NAME_MAX = 40
BAD_TEMPLATE_NAME = f"Name the template: 1 to {TEMPLATE_NAME_MAX} characters."
NO_TEAMS_TO_SAVE = "Set up teams first, then save their names as a template."
BAD_MODE = "Pick total, average or best N."
BEST_N_MAX = 50
BAD_BEST_N = f"Best N counts the best 1 to {BEST_N_MAX} members of each team."
CLASS_ENDED = "This class has ended."

MODE_LABELS = {
    TeamMode.TOTAL: "Total",
    TeamMode.AVERAGE: "Average per member",
    TeamMode.BEST_N: "Best N members",
}


class Refused(Exception):
    """A roster change that is refused; nothing changed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def _owned(request: Request, db: AsyncSession, instructor: Instructor) -> Class:
    row: Class | None = await db.get(Class, int(request.path_params["class_id"]))
    if row is None or row.instructor_id != instructor.id:
        raise HTTPException(404, NO_SUCH_CLASS)
    return row


async def _context(db: AsyncSession, row: Class, instructor: Instructor) -> dict[str, Any]:
    teams = list(
        await db.scalars(
            select(Team).where(Team.class_id == row.id).order_by(Team.position, Team.id)
        )
    )
    people = list(
        await db.scalars(
            select(Participant)
            .where(Participant.class_id == row.id, Participant.removed.is_(False))
            .order_by(Participant.number, Participant.id)
        )
    )
    templates = list(
        await db.scalars(
            select(TeamTemplate)
            .where(TeamTemplate.instructor_id == instructor.id)
            .order_by(TeamTemplate.name)
        )
    )
    sizes = await team_sizes(db, row.id, teams)
    phase = Phase(row.phase)
    return {
        "cls": row,
        "roster": people,
        "teams": teams,
        "team_by_id": {t.id: t for t in teams},
        "sizes": sizes,
        "templates": templates,
        "lobby": phase is Phase.LOBBY,
        "ended": phase in TERMINAL,
        "modes": MODE_LABELS,
        "counts": range(MIN_TEAMS, MAX_TEAMS + 1),
        "count_names": {n: default_team_names(n) for n in range(MIN_TEAMS, MAX_TEAMS + 1)},
        "name_slots": range(MAX_TEAMS),
        "best_n_max": BEST_N_MAX,
    }


async def roster_page(request: Request) -> Response:
    """The roster: a fragment for htmx, or a page of its own."""
    instructor = await require_instructor(request)
    async with request.app.state.sessions() as db:
        row = await _owned(request, db, instructor)
        context = await _context(db, row, instructor)
    return _show(request, context)


def _show(
    request: Request, context: dict[str, Any], notice: str = "", error: str = "", status: int = 200
) -> Response:
    context = {**context, "notice": notice, "error": error}
    context["full_page"] = not request.headers.get("hx-request")
    return render(request, "fragments/roster.html", context, status_code=status)


Change = Callable[[AsyncSession, Class, FormData, Instructor], Awaitable[None]]


async def _change(request: Request, change: Change, done: str) -> Response:
    """Apply ``change`` to the class in one transaction, then answer with the roster."""
    instructor = await require_instructor(request)
    form = await checked_form(request)
    error, status = "", 200
    async with request.app.state.sessions() as db:
        try:
            async with db.begin():
                await change(db, await _owned(request, db, instructor), form, instructor)
        except Refused as exc:  # rolled back: nothing changed
            error, status = str(exc), exc.status
        if status == 404:
            raise HTTPException(404, error)
        async with db.begin():
            row = await _owned(request, db, instructor)
            count = await roster_count(db, row.id)
            context = await _context(db, row, instructor)
    if not error and Phase(row.phase) not in TERMINAL:
        await roster_changed(request, row.id, count)
    if not request.headers.get("hx-request"):
        if error:
            return _show(request, context, error=error, status=status)
        return RedirectResponse(f"/console/classes/{row.id}/roster", status_code=303)
    return _show(request, context, notice="" if error else done, error=error, status=status)


# -- teams ----------------------------------------------------------------------------


def _specs(form: FormData, templates: dict[int, TeamTemplate]) -> tuple[TeamSpec, ...]:
    """The teams a set-up form asks for: from a template, a count, or names."""
    try:
        if "template" in form:
            try:
                template = templates[int(str(form["template"]))]
            except (KeyError, ValueError):
                raise Refused(UNKNOWN_TEMPLATE) from None
            return team_specs(template.teams)
        if "count" in form:
            try:
                count = int(str(form["count"]))
            except ValueError:
                raise Refused(BAD_COUNT) from None
            return team_specs(default_team_names(count))
        names = [str(name)[:200] for name in form.getlist("name")]
        return team_specs([name for name in names if one_line(name)])
    except ValidationError as exc:
        raise Refused(str(exc)) from None


async def _set_teams(db: AsyncSession, row: Class, form: FormData, instructor: Instructor) -> None:
    templates = {
        t.id: t
        for t in await db.scalars(
            select(TeamTemplate).where(TeamTemplate.instructor_id == instructor.id)
        )
    }
    specs = _specs(form, templates)
    if Phase(row.phase) is not Phase.LOBBY:
        raise Refused(TEAMS_SET, 409)
    await apply_teams(db, row.id, specs)


async def apply_teams(db: AsyncSession, class_id: int, specs: tuple[TeamSpec, ...]) -> None:
    """Make the class's teams these, keeping who is in each team that stays.

    Teams are renamed in place by position; teams beyond the new count go, and
    their members, with anyone not yet in a team, fill the smallest teams.
    """
    existing = list(
        await db.scalars(
            select(Team).where(Team.class_id == class_id).order_by(Team.position, Team.id)
        )
    )
    # Names are unique in a class: park the old ones on names no spec can have
    # (specs never start with a space), so swapping two names doesn't clash.
    for team in existing:
        team.name = f" {team.id}"
    await db.flush()
    kept: list[Team] = []
    for position, spec in enumerate(specs):
        if position < len(existing):
            team = existing[position]
        else:
            team = Team(class_id=class_id)
            db.add(team)
        team.name = spec.name
        team.colour = spec.look.colour
        team.letter = spec.look.letter
        team.pattern = spec.look.pattern
        team.position = position
        kept.append(team)
    gone = {team.id for team in existing[len(specs) :]}
    people = list(
        await db.scalars(
            select(Participant)
            .where(Participant.class_id == class_id, Participant.removed.is_(False))
            .order_by(Participant.number, Participant.id)
        )
    )
    for person in people:
        if person.team_id in gone:
            person.team_id = None
    await db.flush()
    for team in existing[len(specs) :]:
        await db.delete(team)
    await db.flush()
    sizes = {team.id: 0 for team in kept}
    for person in people:
        if person.team_id in sizes:
            sizes[person.team_id] += 1
    for person in people:
        if person.team_id is None:
            person.team_id = balanced_team(sizes)
            sizes[person.team_id] += 1
    await db.flush()


async def set_teams(request: Request) -> Response:
    return await _change(request, _set_teams, "Teams are set up.")


async def _save_template(
    db: AsyncSession, row: Class, form: FormData, instructor: Instructor
) -> None:
    name = one_line(str(form.get("template_name", ""))[:200])
    if not 1 <= len(name) <= TEMPLATE_NAME_MAX:
        raise Refused(BAD_TEMPLATE_NAME)
    names = list(
        await db.scalars(
            select(Team.name).where(Team.class_id == row.id).order_by(Team.position, Team.id)
        )
    )
    if len(names) < MIN_TEAMS:
        raise Refused(NO_TEAMS_TO_SAVE, 409)
    template = await db.scalar(
        select(TeamTemplate).where(
            TeamTemplate.instructor_id == instructor.id, TeamTemplate.name == name
        )
    )
    if template is None:
        db.add(TeamTemplate(instructor_id=instructor.id, name=name, teams=names))
    else:
        template.teams = names
    await db.flush()


async def save_template(request: Request) -> Response:
    return await _change(request, _save_template, "Template saved.")


async def _set_team_mode(
    db: AsyncSession, row: Class, form: FormData, instructor: Instructor
) -> None:
    try:
        mode = TeamMode(str(form.get("team_mode", "")))
    except ValueError:
        raise Refused(BAD_MODE) from None
    best_n = row.best_n
    if mode is TeamMode.BEST_N:
        try:
            best_n = int(str(form.get("best_n", "")))
        except ValueError:
            raise Refused(BAD_BEST_N) from None
        if not 1 <= best_n <= BEST_N_MAX:
            raise Refused(BAD_BEST_N)
    row.team_mode = mode.value
    row.best_n = best_n


async def set_team_mode(request: Request) -> Response:
    return await _change(request, _set_team_mode, "Team scoring changed.")


async def _set_joining(
    db: AsyncSession, row: Class, form: FormData, instructor: Instructor
) -> None:
    if Phase(row.phase) in TERMINAL:
        raise Refused(CLASS_ENDED, 409)
    row.join_locked = str(form.get("locked", "")) == "1"


async def set_joining(request: Request) -> Response:
    return await _change(request, _set_joining, "Joining changed.")


# -- participants -----------------------------------------------------------------------


async def _participant(request: Request, db: AsyncSession, row: Class) -> Participant:
    person = await db.get(Participant, int(request.path_params["participant_id"]))
    if person is None or person.class_id != row.id or person.removed:
        raise Refused(NO_SUCH_PARTICIPANT, 404)
    return person


async def _rename(db: AsyncSession, row: Class, person: Participant, form: FormData) -> None:
    try:
        nickname = normalize_nickname(str(form.get("nickname", ""))[:400])
    except ValidationError as exc:
        raise Refused(str(exc)) from None
    if nickname == person.nickname:
        return
    suggestion = await nickname_suggestion(db, row.id, nickname)
    if suggestion is not None:
        raise Refused(NICKNAME_TAKEN.format(nickname=nickname, suggestion=suggestion), 409)
    person.nickname = nickname


async def _move(db: AsyncSession, row: Class, person: Participant, form: FormData) -> None:
    team = await db.get(Team, _whole(form.get("team")))
    if team is None or team.class_id != row.id:
        raise Refused(UNKNOWN_TEAM)
    person.team_id = team.id


async def _remove(db: AsyncSession, row: Class, person: Participant, form: FormData) -> None:
    person.removed = True


def _whole(value: object) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 12 else 0


Act = Callable[[AsyncSession, Class, Participant, FormData], Awaitable[None]]


def _on_participant(act: Act, done: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        async def change(
            db: AsyncSession, row: Class, form: FormData, instructor: Instructor
        ) -> None:
            person = await _participant(request, db, row)
            await act(db, row, person, form)

        return await _change(request, change, done)

    return endpoint


rename = _on_participant(_rename, "Renamed.")
move = _on_participant(_move, "Moved.")
remove = _on_participant(_remove, "Taken out of the class.")

_CLASS = "/console/classes/{class_id:int}"
_PERSON = _CLASS + "/participants/{participant_id:int}"
routes = [
    Route(_CLASS + "/roster", roster_page, methods=["GET"]),
    Route(_CLASS + "/teams", set_teams, methods=["POST"]),
    Route(_CLASS + "/team-templates", save_template, methods=["POST"]),
    Route(_CLASS + "/team-mode", set_team_mode, methods=["POST"]),
    Route(_CLASS + "/joining", set_joining, methods=["POST"]),
    Route(_PERSON + "/rename", rename, methods=["POST"]),
    Route(_PERSON + "/move", move, methods=["POST"]),
    Route(_PERSON + "/remove", remove, methods=["POST"]),
]
