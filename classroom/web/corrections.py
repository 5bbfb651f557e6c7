"""The instructor's score sheet: every result of a class, flagged inputs, and corrections.

A correction replaces a participant's result for a scored segment (or deletes
it) through the class's score book, so live boards move at once; every
correction is kept with who made it, when, and what the result was before.
Only the class's own instructor sees the sheet or changes it, with the console's
CSRF-checked forms. A bad correction is refused with a sentence saying why and
changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from classroom.db.models import Class, Instructor, Participant
from classroom.domain.scorebook import Entry, Fix, ScoreBook
from classroom.domain.scoring import MAX_INPUT, MAX_ROUNDS, UNITS, Tally, show
from classroom.domain.session import TERMINAL, Phase
from classroom.domain.timeline import ScoreKind, Timeline
from classroom.domain.words import counted
from classroom.live.registry import ClassRegistry
from classroom.live.scoring import ScoreKeeper
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.templating import render

NO_SUCH_CLASS = "No such class."
UNKNOWN_PARTICIPANT = "That participant isn't in this class."
NOT_SCORED = "That segment isn't scored."
NOTHING_TO_DELETE = "There is no result to delete."
NOT_WHOLE = "{what} must be a whole number."
NEGATIVE = "{what} can't be negative."
TOO_BIG = "{what} can be at most {limit:,}."
BAD_TIME = "A time is minutes and seconds, like 4:07 (or 1:02:30)."
TIME_RANGE = "A time is between 0:01 and 10:00:00."
NO_ROUNDS = "A {unit} result has no rounds."
EMPTY_ROUNDS = "Give at least one round or one rep."
BAD_EFFORT = "Effort (RPE) is a whole number from 1 to 10."
BAD_ACTION = "Choose to correct or to delete the result."

RESULT_LIMITS: dict[ScoreKind, int] = {
    ScoreKind.REPS: 10_000,
    ScoreKind.ROUNDS_REPS: MAX_INPUT[ScoreKind.ROUNDS_REPS],  # the reps beside the rounds
    ScoreKind.LOAD: MAX_INPUT[ScoreKind.LOAD],
    ScoreKind.CALORIES: 10_000,
    ScoreKind.DISTANCE: 1_000_000,
    ScoreKind.EFFORT: MAX_INPUT[ScoreKind.EFFORT],
}
"""The most a corrected result may be, per kind: a whole segment's worth, not one input's."""
MAX_TIME_MS = 10 * 3600 * 1000
FLAGGED_SHOWN = 50

WHOLE = re.compile(r"^\d{1,12}\Z")
NEGATIVE_NUMBER = re.compile(r"^-\d+\Z")
TIME = re.compile(r"^(?:(\d{1,2}):)?(\d{1,3}):([0-5]\d)\Z")


class Refused(Exception):
    """A correction that can't be made; the message says why, for the instructor."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    participant_id: int
    name: str
    shown: str
    value: str  # the result as the correction form is prefilled
    rounds: str


@dataclass(frozen=True, slots=True)
class SheetSegment:
    index: int
    title: str
    kind: ScoreKind
    unit: str
    rows: tuple[SheetRow, ...]


# -- parsing a correction -----------------------------------------------------------------


def whole(text: str, what: str, limit: int, *, least: int = 0) -> int:
    """A whole number from a form field, between ``least`` and ``limit``."""
    text = text.strip()
    if NEGATIVE_NUMBER.match(text):
        raise Refused(NEGATIVE.format(what=what))
    if not WHOLE.match(text):
        raise Refused(NOT_WHOLE.format(what=what))
    number = int(text)
    if number > limit:
        raise Refused(TOO_BIG.format(what=what, limit=limit))
    if number < least:
        raise Refused(NOT_WHOLE.format(what=what))
    return number


def parse_time(text: str) -> int:
    """A time like "4:07" or "1:02:30", in milliseconds."""
    match = TIME.match(text.strip())
    if match is None:
        raise Refused(BAD_TIME)
    hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    if hours and minutes > 59:
        raise Refused(BAD_TIME)
    ms = ((hours * 60 + minutes) * 60 + seconds) * 1000
    if not 1000 <= ms <= MAX_TIME_MS:
        raise Refused(TIME_RANGE)
    return ms


def parse_result(kind: ScoreKind, value: str, rounds: str) -> Tally:
    """The result a correction form gives, for a segment scored in ``kind``."""
    if kind is ScoreKind.ROUNDS_REPS:
        counted_rounds = whole(rounds or "0", "Rounds", MAX_ROUNDS)
        reps = whole(value or "0", "Reps", RESULT_LIMITS[kind])
        if counted_rounds == 0 and reps == 0:
            raise Refused(EMPTY_ROUNDS)
        return Tally(counted_rounds, reps)
    if rounds.strip():
        raise Refused(NO_ROUNDS.format(unit=UNITS[kind]))
    if kind is ScoreKind.TIME:
        return Tally(parse_time(value))
    if kind is ScoreKind.EFFORT:
        text = value.strip()
        if not WHOLE.match(text) or not 1 <= int(text) <= 10:
            raise Refused(BAD_EFFORT)
        return Tally(int(text))
    what = UNITS[kind].capitalize()
    return Tally(whole(value, what, RESULT_LIMITS[kind]))


def form_values(kind: ScoreKind, result: Tally) -> tuple[str, str]:
    """A result as the correction form shows it: (value, rounds)."""
    if kind is ScoreKind.ROUNDS_REPS:
        return str(result.second), str(result.first)
    if kind is ScoreKind.TIME:
        return show(kind, result), ""
    return str(result.first), ""


# -- the class, its timeline and its book ---------------------------------------------------


async def owned_class(request: Request) -> tuple[Instructor, Class]:
    """The signed-in instructor and their class; 404 for anyone else's class."""
    instructor = await require_instructor(request)
    try:
        class_id = int(request.path_params["class_id"])
    except (KeyError, ValueError):
        raise HTTPException(404, NO_SUCH_CLASS) from None
    async with request.app.state.sessions() as db:
        row: Class | None = await db.get(Class, class_id)
    if row is None or row.instructor_id != instructor.id:
        raise HTTPException(404, NO_SUCH_CLASS)
    return instructor, row


async def timeline_of(request: Request, class_id: int) -> Timeline:
    loaded = await request.app.state.registry.store.load(class_id)
    if loaded is None:
        raise HTTPException(404, NO_SUCH_CLASS)
    timeline: Timeline = loaded.timeline
    return timeline


async def book_of(registry: ClassRegistry, row: Class) -> ScoreBook:
    """The class's book: the live one where the class runs in this process; else (an
    ended class, or one another process runs) the book storage holds, read for this
    request, since only the process that runs a class keeps its book current."""
    keeper = registry.scores
    assert keeper is not None
    if Phase(row.phase) not in TERMINAL and registry.running(row.id) is not None:
        return await keeper.book(row.id)
    return await keeper.stored(row.id)


def scored(timeline: Timeline, index: int) -> ScoreKind:
    if not 0 <= index < len(timeline.segments):
        raise Refused(NOT_SCORED)
    kind = timeline.segments[index].score_kind
    if kind is ScoreKind.NONE:
        raise Refused(NOT_SCORED)
    return kind


def segment_title(timeline: Timeline, index: int) -> str:
    segment = timeline.segments[index]
    label = f" · {segment.label}" if segment.label else ""
    return f"{index + 1}. {segment.name}{label}"


# -- pages --------------------------------------------------------------------------------


async def sheet_context(
    request: Request, instructor: Instructor, row: Class, **extra: Any
) -> dict[str, Any]:
    registry: ClassRegistry = request.app.state.registry
    timeline = await timeline_of(request, row.id)
    book = await book_of(registry, row)
    async with request.app.state.sessions() as db:
        people = list(
            await db.scalars(
                select(Participant)
                .where(Participant.class_id == row.id, Participant.removed.is_(False))
                .order_by(Participant.number, Participant.id)
            )
        )
    names = {p.id: p.nickname for p in people}
    segments = []
    for index in sorted(book.segments()):
        if index >= len(timeline.segments):
            continue
        kind = timeline.segments[index].score_kind
        if kind is ScoreKind.NONE:
            continue
        results, _ = book.segment(index, kind)
        rows = []
        for pid in sorted(results, key=lambda p: names.get(p, "").casefold()):
            value, rounds = form_values(kind, results[pid])
            rows.append(
                SheetRow(pid, names.get(pid, f"#{pid}"), show(kind, results[pid]), value, rounds)
            )
        segments.append(
            SheetSegment(index, segment_title(timeline, index), kind, UNITS[kind], tuple(rows))
        )
    scored_segments = [
        (i, segment_title(timeline, i), s.score_kind.value)
        for i, s in enumerate(timeline.segments)
        if s.score_kind is not ScoreKind.NONE
    ]
    return {
        "instructor": instructor,
        "cls": row,
        "segments": segments,
        "scored_segments": scored_segments,
        "people": people,
        "flagged": flagged_rows(book, timeline, names),
        "audit": await audit_rows(request, row.id, timeline, names),
        "error": "",
        **extra,
    }


def flagged_rows(
    book: ScoreBook, timeline: Timeline, names: dict[int, str]
) -> list[dict[str, Any]]:
    """Implausible inputs, one line per person and segment, the latest first: who, which
    segment, how many inputs, what the last one was and when in the segment.

    A result the instructor has corrected is decided: its flags are not listed.
    """
    groups: dict[tuple[int, int], list[Entry]] = {}
    for entry in book.flagged():
        key = (entry.participant_id, entry.segment_index)
        if entry.participant_id not in book.removed and not book.corrected(*key):
            groups.setdefault(key, []).append(entry)
    latest = sorted(groups.items(), key=lambda item: -max(e.elapsed_ms for e in item[1]))
    rows = []
    for (pid, index), entries in latest[:FLAGGED_SHOWN]:
        last = max(entries, key=lambda entry: entry.elapsed_ms)
        seconds = last.elapsed_ms // 1000
        rows.append(
            {
                "participant_id": pid,
                "name": names.get(pid, f"#{pid}"),
                "segment_index": index,
                "segment": segment_title(timeline, index)
                if index < len(timeline.segments)
                else str(index + 1),
                "count": len(entries),
                "input": _shown_input(last),
                "at": f"{seconds // 60}:{seconds % 60:02d}",
                "result": _shown_result(book, timeline, pid, index),
            }
        )
    return rows


def _shown_input(entry: Entry) -> str:
    if entry.kind is ScoreKind.ROUNDS_REPS:
        return f"{counted(entry.rounds, 'round')} + {counted(entry.value, 'rep')}"
    if entry.kind is ScoreKind.REPS:
        return counted(entry.value, "rep")
    return f"{entry.value} {UNITS[entry.kind]}"


def _shown_result(book: ScoreBook, timeline: Timeline, pid: int, index: int) -> str:
    result = book.result(pid, index)
    if result is None or index >= len(timeline.segments):
        return "—"
    return show(timeline.segments[index].score_kind, result)


async def audit_rows(
    request: Request, class_id: int, timeline: Timeline, names: dict[int, str]
) -> list[dict[str, Any]]:
    """Every correction of the class, newest first: who, when, from what to what."""
    keeper: ScoreKeeper = request.app.state.registry.scores
    corrections = await keeper.store.corrections(class_id)
    ids = {c.instructor_id for c in corrections if c.instructor_id is not None}
    who: dict[int, str] = {}
    if ids:
        async with request.app.state.sessions() as db:
            for instructor in await db.scalars(select(Instructor).where(Instructor.id.in_(ids))):
                who[instructor.id] = instructor.display_name or instructor.email
    rows = []
    for c in reversed(corrections):
        kind = (
            timeline.segments[c.segment_index].score_kind
            if c.segment_index < len(timeline.segments)
            else ScoreKind.REPS
        )
        rows.append(
            {
                "at": c.corrected_at,
                "by": who.get(c.instructor_id or 0, "—"),
                "name": names.get(c.participant_id, f"#{c.participant_id}"),
                "segment": segment_title(timeline, c.segment_index)
                if c.segment_index < len(timeline.segments)
                else str(c.segment_index + 1),
                "before": c.previous or "—",
                "after": "deleted" if c.deleted else show(kind, Tally(c.value, c.rounds)),
            }
        )
    return rows


async def sheet_page(request: Request) -> Response:
    instructor, row = await owned_class(request)
    context = await sheet_context(request, instructor, row)
    return render(request, "pages/score_sheet.html", context)


async def flagged_fragment(request: Request) -> Response:
    """The console's list of flagged inputs, refreshed as the leaderboard moves."""
    _, row = await owned_class(request)
    timeline = await timeline_of(request, row.id)
    book = await book_of(request.app.state.registry, row)
    async with request.app.state.sessions() as db:
        people = await db.scalars(select(Participant).where(Participant.class_id == row.id))
        names = {p.id: p.nickname for p in people}
    context = {"cls": row, "flagged": flagged_rows(book, timeline, names)}
    return render(request, "fragments/score_flagged.html", context)


async def correct(request: Request) -> Response:
    """Correct or delete one participant's result for one segment, or dismiss its flags."""
    instructor, row = await owned_class(request)
    form = await checked_form(request)
    try:
        if str(form.get("action", "")) == "dismiss":
            participant_id, index, _ = await _whose(request, row, form)
            await _where_kept(request, row, lambda at: at.dismiss(row.id, participant_id, index))
        else:
            fix, kind = await _fix(request, row, form)
            await _where_kept(request, row, lambda at: at.correct(row.id, fix, kind, instructor.id))
    except Refused as exc:
        context = await sheet_context(request, instructor, row, error=str(exc))
        return render(request, "pages/score_sheet.html", context, status_code=400)
    return RedirectResponse(f"/console/classes/{row.id}/scores", status_code=303)


async def _where_kept(
    request: Request, row: Class, change: Callable[[ScoreKeeper | ClassRegistry], Awaitable[None]]
) -> None:
    """Make a change of scores where the class's scores are kept: for an ended class, here
    (its book read for this, then let go: the class won't need it again); for a live
    one, in the process that keeps its scores (the registry finds it)."""
    registry: ClassRegistry = request.app.state.registry
    if Phase(row.phase) in TERMINAL:
        assert registry.scores is not None
        await change(registry.scores)
        registry.scores.forget(row.id)
    else:
        await change(registry)


async def _fix(request: Request, row: Class, form: FormData) -> tuple[Fix, ScoreKind]:
    action = str(form.get("action", "correct"))
    if action not in ("correct", "delete"):
        raise Refused(BAD_ACTION)
    participant_id, index, kind = await _whose(request, row, form)
    if action == "delete":
        book = await book_of(request.app.state.registry, row)
        if book.result(participant_id, index) is None:
            raise Refused(NOTHING_TO_DELETE)
        return Fix(participant_id=participant_id, segment_index=index, result=None), kind
    result = parse_result(kind, str(form.get("value", ""))[:40], str(form.get("rounds", ""))[:40])
    return Fix(participant_id=participant_id, segment_index=index, result=result), kind


async def _whose(request: Request, row: Class, form: FormData) -> tuple[int, int, ScoreKind]:
    """The participant and the scored segment a form names (refused if not the class's)."""
    pid_text = str(form.get("participant_id", "")).strip()
    if not WHOLE.match(pid_text):
        raise Refused(UNKNOWN_PARTICIPANT)
    async with request.app.state.sessions() as db:
        participant = await db.get(Participant, int(pid_text))
    if participant is None or participant.class_id != row.id or participant.removed:
        raise Refused(UNKNOWN_PARTICIPANT)
    index_text = str(form.get("segment_index", "")).strip()
    if not WHOLE.match(index_text):
        raise Refused(NOT_SCORED)
    index = int(index_text)
    timeline = await timeline_of(request, row.id)
    return participant.id, index, scored(timeline, index)


routes = [
    Route("/console/classes/{class_id:int}/scores", sheet_page, methods=["GET"]),
    Route("/console/classes/{class_id:int}/scores/flagged", flagged_fragment, methods=["GET"]),
    Route("/console/classes/{class_id:int}/scores/corrections", correct, methods=["POST"]),
]
