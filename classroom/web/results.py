"""Results pages, exports, and "my classes": a participant's history on their phone.

Three results pages show the same results to three audiences: the console (the
class's instructor, names as entered, from the start of the class), the
participant's phone and the wall display (once the class has ended; hidden
names shown as "Athlete N"). The instructor can export the results as CSV or
JSON.

"My classes" (``/me``) needs no account: the phone's device cookie
(``classroom_device``) links the participants it joined as, and the page lists
their past classes and draws their progress. The participant can delete that
history; another phone's history is untouched.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from classroom.db.heart import HeartStore
from classroom.db.models import (
    Class,
    ClassTimeline,
    Correction,
    HeartProfile,
    HeartSample,
    HeartTotal,
    Participant,
    Score,
    StrapClaim,
)
from classroom.db.scores import Roster, ScoreStore
from classroom.domain import heart_results
from classroom.domain import results as results_domain
from classroom.domain.charts import chart_svg
from classroom.domain.codec import from_plain
from classroom.domain.results import Results, Standing
from classroom.domain.scorebook import ScoreBook
from classroom.domain.session import TERMINAL, Phase
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import Timeline
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.display import display_grant
from classroom.web.participants import REMOVED, device_of, participant_cookie
from classroom.web.templating import render
from classroom.web.tokens import TokenError

MY_CLASSES_LIMIT = 100
ENDS = frozenset({Phase.FINISHED.value, Phase.CANCELLED.value})
HEART_COLUMNS = (
    "effort_points",
    *(f"zone{zone}_seconds" for zone in range(1, 6)),
    "mean_bpm",
    "peak_bpm",
    "max_hr",
)
PAST_CLASSES_LIMIT = 50
"""Past classes of the same routine read for the improvement board."""

NO_SUCH_CLASS = "No such class."
NOT_STARTED = "Results appear once the class has started."
NOT_ENDED = "Results are ready when the class ends."
NOT_A_PARTICIPANT = "These results are for the people in this class. Join it from your phone first."
CONFIRM_DELETE = "Tick the box to confirm: your results can't be brought back."
HISTORY_DELETED = "Your history on this phone is deleted."


# -- loading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A class's results, and the roster they were made from."""

    results: Results
    roster: Roster
    timeline: Timeline


async def load_results(request: Request, row: Class, *, public: bool) -> Loaded:
    """The results of ``row`` from what is stored: inputs, corrections, the roster."""
    store: ScoreStore = request.app.state.registry.scores.store
    async with request.app.state.sessions() as db:
        frozen = await db.get(ClassTimeline, row.id)
    if frozen is None:
        raise HTTPException(404, NO_SUCH_CLASS)
    timeline = from_plain(Timeline, frozen.timeline)
    entries, fixes = await store.load(row.id)
    book = ScoreBook()
    book.restore(entries, fixes)
    for pid in await store.removed(row.id):
        book.remove(pid)
    roster = await store.roster(row.id)
    results = results_domain.class_results(
        timeline,
        roster.people,
        roster.teams,
        book,
        mode=TeamMode(row.team_mode),
        best_n=row.best_n,
        public=public,
    )
    return Loaded(results, roster, timeline)


@dataclass(frozen=True, slots=True)
class HeartView:
    """A person's heart in a class: their totals, and the chart of it (SVG)."""

    row: heart_results.HeartRow
    chart: str


async def heart_rows(
    request: Request, row: Class, loaded: Loaded, *, public: bool, only: int | None = None
) -> list[heart_results.HeartRow]:
    """Each person's heart in a class, from the stored totals (or ``only`` this
    person's), best effort first; none if nobody wore a strap. Removed people are
    left out."""
    store: HeartStore = request.app.state.heart_store
    people = loaded.roster.people
    rows = [
        heart_results.HeartRow(
            participant_id=pid,
            name=people[pid].shown_name(public),
            points=total.points,
            zone_ms=tuple(total.zone_ms),
            mean_bpm=total.mean_bpm,
            peak_bpm=total.peak_bpm,
            max_hr=total.max_hr,
        )
        for pid, total in (await store.totals(row.id)).items()
        if pid in people and only in (None, pid)
    ]
    rows.sort(key=lambda heart_row: (-heart_row.points, heart_row.name.casefold()))
    return rows


async def load_heart(
    request: Request, row: Class, loaded: Loaded, *, public: bool, only: int | None = None
) -> list[HeartView]:
    """:func:`heart_rows`, each with the chart of their heart over the class."""
    rows = await heart_rows(request, row, loaded, public=public, only=only)
    if not rows:
        return []
    samples = await request.app.state.heart_store.samples(row.id)
    events = await request.app.state.registry.store.events_since(row.id, 0)
    starts = [(e.at_ms, int(e.payload["index"])) for e in events if e.type == "segment"]
    ends = [e.at_ms for e in events if e.type == "phase" and e.payload.get("phase") in ENDS]
    last_sample = max((s[-1][0] + 5_000 for s in samples.values() if s), default=0)
    end_ms = ends[-1] if ends else max(last_sample, starts[-1][0] if starts else 0)
    segments = heart_results.bands(loaded.timeline, starts, end_ms)
    return [
        HeartView(
            heart_row,
            heart_results.heart_svg(
                heart_row,
                samples.get(heart_row.participant_id, []),
                segments,
                ident=f"heart-{heart_row.participant_id}",
            ),
        )
        for heart_row in rows
    ]


async def _class(request: Request) -> Class:
    class_id = int(request.path_params["class_id"])
    async with request.app.state.sessions() as db:
        row: Class | None = await db.get(Class, class_id)
    if row is None:
        raise HTTPException(404, NO_SUCH_CLASS)
    return row


async def _instructors_class(request: Request) -> Class:
    instructor = await require_instructor(request)
    row = await _class(request)
    if row.instructor_id != instructor.id:
        raise HTTPException(404, NO_SUCH_CLASS)  # another's class: as if it didn't exist
    if Phase(row.phase) is Phase.LOBBY:
        raise HTTPException(409, NOT_STARTED)
    return row


def _ended(row: Class) -> None:
    if Phase(row.phase) not in TERMINAL:
        raise HTTPException(409, NOT_ENDED)


# -- pages ------------------------------------------------------------------------------


async def console_results(request: Request) -> Response:
    row = await _instructors_class(request)
    loaded = await load_results(request, row, public=False)
    return await _page(request, row, loaded, audience="console", public=False)


async def play_results(request: Request) -> Response:
    row = await _class(request)
    token = request.cookies.get(participant_cookie(row.id), "")
    try:
        grant = request.app.state.tokens.verify(token, row.id)
    except TokenError:
        grant = None
    participant = None
    if grant is not None and grant.role == "participant":
        async with request.app.state.sessions() as db:
            participant = await db.get(Participant, grant.participant_id)
    if participant is None or participant.class_id != row.id:
        raise HTTPException(403, NOT_A_PARTICIPANT)
    if participant.removed:
        raise HTTPException(403, REMOVED)
    _ended(row)
    loaded = await load_results(request, row, public=True)
    return await _page(request, row, loaded, audience="phone", public=True, you=participant.id)


async def display_results(request: Request) -> Response:
    row = await _class(request)
    token = request.query_params.get("token", "")
    try:
        await display_grant(request, token, row.id)
    except TokenError as exc:
        raise HTTPException(403, f"Display: {exc}.") from None
    return await wall_results(request, row)


async def wall_results(request: Request, row: Class) -> Response:
    """The wall display's results page of ``row`` (also shown by a display paired to its room)."""
    _ended(row)
    loaded = await load_results(request, row, public=True)
    return await _page(request, row, loaded, audience="display", public=True)


async def _page(
    request: Request,
    row: Class,
    loaded: Loaded,
    *,
    audience: str,
    public: bool,
    you: int | None = None,
) -> Response:
    results = loaded.results
    history = await _history(request, row, loaded)
    improvement = results_domain.improvement(results, history, loaded.roster.people, public=public)
    chart = chart_svg(results.chart, title=f"Team scores over {results.title}", ident="teams-chart")
    context = {
        "cls": row,
        "results": results,
        "teams": {team.id: team for team in results.teams},
        "chart": chart,
        "improvement": improvement,
        "audience": audience,
        "you": you,
        "live": Phase(row.phase) not in TERMINAL,
    }
    if audience == "console":
        context["hearts"] = await load_heart(request, row, loaded, public=False)
    elif audience == "phone" and you is not None:  # their own heart only: health data
        context["hearts"] = await load_heart(request, row, loaded, public=True, only=you)
    response = render(request, "pages/results.html", context)
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def _history(request: Request, row: Class, loaded: Loaded) -> dict[int, list[float]]:
    """Each participant's totals in their past classes of this routine, on the same phone.

    Oldest first; only classes whose totals are in the same unit as this one's.
    """
    if row.routine_id is None:
        return {}
    async with request.app.state.sessions() as db:
        found = await db.execute(
            select(Participant.device_id, Participant.id).where(
                Participant.class_id == row.id,
                Participant.device_id.is_not(None),
                Participant.removed.is_(False),
            )
        )
        devices: dict[str | None, int] = {device: pid for device, pid in found}
        if not devices:
            return {}
        past = await db.execute(
            select(Class, Participant.id, Participant.device_id)
            .join(Participant, Participant.class_id == Class.id)
            .where(
                Class.routine_id == row.routine_id,
                Class.id != row.id,
                Class.created_at < row.created_at,
                Class.phase == Phase.FINISHED.value,
                Participant.device_id.in_(list(devices)),
                Participant.removed.is_(False),
            )
            .order_by(Class.created_at.desc(), Class.id.desc())
            .limit(PAST_CLASSES_LIMIT)
        )
        past_rows = list(past)
    history: dict[int, list[float]] = defaultdict(list)
    computed: dict[int, dict[int, float]] = {}
    for past_class, past_pid, device in reversed(past_rows):  # oldest first
        if past_class.id not in computed:
            other = await load_results(request, past_class, public=True)
            same_unit = other.results.unit == loaded.results.unit
            computed[past_class.id] = other.results.values() if same_unit else {}
        value = computed[past_class.id].get(past_pid)
        if value is not None and device is not None:
            history[devices[device]].append(value)
    return dict(history)


# -- exports ----------------------------------------------------------------------------


async def results_csv(request: Request) -> Response:
    row = await _instructors_class(request)
    return csv_response(row, await results_table(request, row))


def csv_response(row: Class, table: str) -> Response:
    return Response(
        table,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="class-{row.id}-results.csv"',
            "Cache-Control": "private, no-store",
        },
    )


async def results_table(request: Request, row: Class) -> str:
    """The class's results as CSV, for the instructor: a row per person and segment."""
    loaded = await load_results(request, row, public=False)
    rows = results_domain.export_rows(loaded.results, loaded.roster.people)
    hearts = {
        heart_row.participant_id: heart_row
        for heart_row in await heart_rows(request, row, loaded, public=False)
    }
    numbers = {person.number: pid for pid, person in loaded.roster.people.items()}
    for line in rows:  # each person's heart beside each of their results
        line.update(_heart_cells(hearts.get(numbers.get(line["number"], -1))))
    scored = {numbers.get(line["number"]) for line in rows}
    for pid, heart_row in hearts.items():  # and those who wore a strap but scored nothing
        if pid not in scored:
            person = loaded.roster.people[pid]
            blank = dict.fromkeys(results_domain.EXPORT_COLUMNS, "")
            rows.append(
                {
                    **blank,
                    "number": person.number,
                    "nickname": person.name,
                    **_heart_cells(heart_row),
                }
            )
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheets then read the file as UTF-8: names in any script
    columns = (*results_domain.EXPORT_COLUMNS, *HEART_COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for line in rows:
        writer.writerow({key: results_domain.spreadsheet_safe(v) for key, v in line.items()})
    return out.getvalue()


async def results_json(request: Request) -> Response:
    row = await _instructors_class(request)
    return Response(
        json.dumps(await results_data(request, row), ensure_ascii=False, indent=1, allow_nan=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="class-{row.id}-results.json"',
            "Cache-Control": "private, no-store",
        },
    )


async def results_data(request: Request, row: Class) -> dict[str, Any]:
    """The class's results as JSON-able data, for the instructor (the export, the API)."""
    loaded = await load_results(request, row, public=False)
    return {
        "class": {
            "id": row.id,
            "title": row.title,
            "phase": row.phase,
            "started_at": _iso(row.started_at),
            "ended_at": _iso(row.ended_at),
        },
        **results_domain.export_data(loaded.results, loaded.roster.people),
        "heart": await _heart_export(request, row, loaded),
    }


def _heart_cells(heart_row: heart_results.HeartRow | None) -> dict[str, Any]:
    if heart_row is None:
        return dict.fromkeys(HEART_COLUMNS, "")
    zones = {f"zone{z}_seconds": heart_row.zone_ms[z] // 1000 for z in range(1, 6)}
    return {
        "effort_points": round(heart_row.points, 1),
        **zones,
        "mean_bpm": heart_row.mean_bpm,
        "peak_bpm": heart_row.peak_bpm,
        "max_hr": heart_row.max_hr,
    }


async def _heart_export(request: Request, row: Class, loaded: Loaded) -> list[dict[str, Any]]:
    """Everyone's heart: totals, and the five-second samples (seconds from the first)."""
    rows = await heart_rows(request, row, loaded, public=False)
    if not rows:
        return []
    samples = await request.app.state.heart_store.samples(row.id)
    first = min((s[0][0] for s in samples.values() if s), default=0)
    out = []
    for heart_row in rows:
        person = loaded.roster.people[heart_row.participant_id]
        out.append(
            {
                "number": person.number,
                "nickname": person.name,
                "effort_points": round(heart_row.points, 1),
                "zone_seconds": [ms // 1000 for ms in heart_row.zone_ms],
                "mean_bpm": heart_row.mean_bpm,
                "peak_bpm": heart_row.peak_bpm,
                "max_hr": heart_row.max_hr,
                "samples": [
                    [(at - first) // 1000, bpm]
                    for at, bpm in samples.get(heart_row.participant_id, [])
                ],
            }
        )
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- my classes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PastClass:
    """A class this phone took part in, as "my classes" lists it."""

    class_id: int
    participant_id: int
    title: str
    when: datetime
    nickname: str
    standing: Standing
    effort_points: float | None = None  # with a strap on


async def _past_classes(request: Request, device: str) -> list[PastClass]:
    """The ended classes this device joined, oldest first."""
    ended = [phase.value for phase in TERMINAL]
    async with request.app.state.sessions() as db:
        rows = await db.execute(
            select(Class, Participant)
            .join(Participant, Participant.class_id == Class.id)
            .where(
                Participant.device_id == device,
                Participant.removed.is_(False),
                Class.phase.in_(ended),
            )
            .order_by(Class.created_at.desc(), Class.id.desc())
            .limit(MY_CLASSES_LIMIT)
        )
        pairs = list(rows)
        efforts = dict(
            (
                await db.execute(
                    select(HeartTotal.participant_id, HeartTotal.points).where(
                        HeartTotal.participant_id.in_([p.id for _, p in pairs])
                    )
                )
            ).all()
        )
    out: list[PastClass] = []
    for row, participant in reversed(pairs):
        loaded = await load_results(request, row, public=True)
        place = results_domain.standing(loaded.results, participant.id, participant.team_id)
        out.append(
            PastClass(
                class_id=row.id,
                participant_id=participant.id,
                title=row.title,
                when=row.started_at or row.created_at,
                nickname=participant.nickname,
                standing=place,
                effort_points=efforts.get(participant.id),
            )
        )
    return out


async def my_classes(request: Request) -> Response:
    return await _my_classes_page(request)


async def _my_classes_page(request: Request, error: str = "", status_code: int = 200) -> Response:
    device = device_of(request)
    past = await _past_classes(request, device) if device else []
    chart = results_domain.progress(
        [(f"{p.title}, {p.when:%Y-%m-%d}", f"{p.when:%d %b}", p.standing) for p in past]
    )
    svg = ""
    if chart.labels:
        svg = chart_svg(chart, title=f"Your total per class ({chart.unit})", ident="progress-chart")
    efforts = [p.effort_points for p in past if p.effort_points is not None]
    context = {
        "effort": round(sum(efforts), 1) if efforts else None,
        "efforts": len(efforts),
        "past": list(reversed(past)),  # newest first
        "chart": svg,
        "charted": len(chart.labels),
        "unit": chart.unit,
        "notice": HISTORY_DELETED if request.query_params.get("deleted") == "1" else "",
        "error": error,
    }
    response = render(request, "pages/my_classes.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def delete_my_history(request: Request) -> Response:
    """Delete this phone's participants of ended classes, with their scores."""
    form = await checked_form(request)
    if form.get("confirm") != "yes":
        return await _my_classes_page(request, CONFIRM_DELETE, 400)
    device = device_of(request)
    if device:
        await _delete_history(request, device)
    return RedirectResponse("/me?deleted=1", status_code=303)


async def _delete_history(request: Request, device: str) -> None:
    ended = [phase.value for phase in TERMINAL]
    async with request.app.state.sessions.begin() as db:
        ids: Sequence[int] = list(
            await db.scalars(
                select(Participant.id)
                .join(Class, Class.id == Participant.class_id)
                .where(Participant.device_id == device, Class.phase.in_(ended))
            )
        )
        await db.execute(delete(HeartProfile).where(HeartProfile.device_id == device))
        if not ids:
            return
        for table in (HeartSample, HeartTotal, StrapClaim):
            await db.execute(delete(table).where(table.participant_id.in_(ids)))
        await db.execute(delete(Score).where(Score.participant_id.in_(ids)))
        await db.execute(delete(Correction).where(Correction.participant_id.in_(ids)))
        await db.execute(delete(Participant).where(Participant.id.in_(ids)))


routes = [
    Route("/console/classes/{class_id:int}/results", console_results),
    Route("/console/classes/{class_id:int}/results.csv", results_csv),
    Route("/console/classes/{class_id:int}/results.json", results_json),
    Route("/play/{class_id:int}/results", play_results),
    Route("/display/{class_id:int}/results", display_results),
    Route("/me", my_classes, methods=["GET"]),
    Route("/me/delete", delete_my_history, methods=["POST"]),
]
