"""A class's results: totals, a breakdown per segment, a chart, and exports.

Results are made from the same three things as the live leaderboards: the
class's timeline, its roster, and its score book (rebuilt from the stored
inputs and corrections). They rank exactly as the boards do, because they are
the boards: :func:`~classroom.domain.boards.class_board` for the totals and
:func:`~classroom.domain.boards.segment_board` for each scored segment.

**The chart** follows each team through the class: its value (by the class's
team mode) after each scored segment, in the unit of the class's totals, so
the last point of each line is the team's total.

The chart is drawn as SVG by :mod:`classroom.domain.charts`.

**Exports** are rows of plain values, one per participant per scored segment;
a cell that a spreadsheet would run as a formula is defused with a leading
apostrophe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from classroom.domain.boards import (
    Board,
    Person,
    Row,
    Scored,
    Team,
    class_board,
    class_values,
    improvement_board,
    segment_board,
    segment_points,
    team_value,
)
from classroom.domain.charts import Chart, Line
from classroom.domain.scorebook import ScoreBook
from classroom.domain.scoring import ADDITIVE, UNITS, Tally
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind, Timeline

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell that starts with one of these as a formula."""

HISTORY_CLASSES = 10
"""Past classes an improvement is measured against: the most recent ones."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """One participant's result in one scored segment.

    ``value`` is in the kind's unit (ms for time; the reps of rounds + reps),
    ``rounds`` is the rounds of rounds + reps (0 for every other kind).
    """

    rank: int
    participant_id: int
    name: str
    team_id: int | None
    division: str
    value: int
    rounds: int
    shown: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentResult:
    """A scored segment: its kind, everyone's result (best first), the teams' standings."""

    index: int
    name: str
    label: str
    kind: ScoreKind
    unit: str
    marks: tuple[Mark, ...]
    teams: tuple[Row, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    title: str
    mode: TeamMode
    best_n: int
    board: Board  # the class board: per-person and per-team totals
    teams: tuple[Team, ...]
    segments: tuple[SegmentResult, ...]
    chart: Chart

    @property
    def unit(self) -> str:
        return self.board.unit

    @property
    def totalled(self) -> int:
        """How many segments the totals count (every scored one but effort ratings)."""
        return sum(1 for segment in self.segments if segment.kind is not ScoreKind.EFFORT)

    def team(self, team_id: int | None) -> Team | None:
        return next((team for team in self.teams if team.id == team_id), None)

    def values(self) -> dict[int, float]:
        """Each participant's total for the class."""
        return {row.id: row.value for row in self.board.people}


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """Where one participant finished a class (``rank`` None: no total)."""

    participant_id: int
    rank: int | None
    of: int
    value: float | None
    shown: str
    unit: str
    team: Team | None


def scored_segments(timeline: Timeline, book: ScoreBook) -> list[Scored]:
    """Each scored segment that has results, in the order of the class."""
    out: list[Scored] = []
    for index in sorted(book.segments()):
        if not 0 <= index < len(timeline.segments):
            continue
        segment = timeline.segments[index]
        if segment.score_kind is ScoreKind.NONE:
            continue
        results, divisions = book.segment(index, segment.score_kind)
        if results:
            out.append(
                Scored(
                    index=index,
                    kind=segment.score_kind,
                    results=results,
                    divisions=divisions,
                    reps_per_round=segment.target.reps if segment.target is not None else None,
                )
            )
    return out


def class_results(
    timeline: Timeline,
    people: Mapping[int, Person],
    teams: Sequence[Team],
    book: ScoreBook,
    *,
    mode: TeamMode = TeamMode.TOTAL,
    best_n: int = 3,
    public: bool = True,
) -> Results:
    """The results of a class so far (public: hidden names shown as "Athlete N")."""
    scored = scored_segments(timeline, book)
    board = class_board(scored, people, teams, mode=mode, best_n=best_n, public=public)
    segments = tuple(
        _segment_result(timeline, s, people, teams, mode, best_n, public) for s in scored
    )
    return Results(
        title=timeline.title,
        mode=mode,
        best_n=best_n,
        board=board,
        teams=tuple(teams),
        segments=segments,
        chart=team_chart(timeline, scored, people, teams, mode=mode, best_n=best_n),
    )


def _segment_result(
    timeline: Timeline,
    scored: Scored,
    people: Mapping[int, Person],
    teams: Sequence[Team],
    mode: TeamMode,
    best_n: int,
    public: bool,
) -> SegmentResult:
    board = segment_board(scored, people, teams, mode=mode, best_n=best_n, public=public)
    segment = timeline.segments[scored.index]
    marks = tuple(
        Mark(
            rank=row.rank,
            participant_id=row.id,
            name=row.name,
            team_id=row.team_id,
            division=row.division,
            value=_value(scored.kind, scored.results[row.id]),
            rounds=scored.results[row.id].first if scored.kind is ScoreKind.ROUNDS_REPS else 0,
            shown=row.shown,
        )
        for row in board.people
    )
    return SegmentResult(
        index=scored.index,
        name=segment.name,
        label=segment.label,
        kind=scored.kind,
        unit=UNITS[scored.kind],
        marks=marks,
        teams=board.teams,
    )


def _value(kind: ScoreKind, result: Tally) -> int:
    return result.second if kind is ScoreKind.ROUNDS_REPS else result.first


def team_chart(
    timeline: Timeline,
    scored: Sequence[Scored],
    people: Mapping[int, Person],
    teams: Sequence[Team],
    *,
    mode: TeamMode = TeamMode.TOTAL,
    best_n: int = 3,
) -> Chart:
    """Each team's value after each scored segment, in the unit of the class's totals."""
    unit, _ = class_values(scored)
    counted = next((kind for kind in ADDITIVE if UNITS[kind] == unit), None)
    running: dict[int, float] = {}
    lines: dict[int, list[float]] = {team.id: [] for team in teams}
    for s in scored:
        if counted is None:
            gained = segment_points(s)
        elif s.kind is counted:
            gained = {pid: float(result.first) for pid, result in s.results.items()}
        else:
            gained = {}
        for pid, value in gained.items():
            running[pid] = running.get(pid, 0.0) + value
        for team in teams:
            members = [
                value
                for pid, value in running.items()
                if pid in people and people[pid].team_id == team.id
            ]
            lines[team.id].append(team_value(members, mode, best_n))
    ends = [_end_ms(timeline, s.index) for s in scored]
    return Chart(
        unit=unit,
        labels=tuple(f"{s.index + 1}. {timeline.segments[s.index].name}" for s in scored),
        # A time axis: each point where its segment ends, in minutes into the class.
        ticks=tuple(_minutes(end) for end in ends),
        at=tuple(end / timeline.total_ms if timeline.total_ms else 0.0 for end in ends),
        names=tuple(timeline.segments[s.index].name for s in scored),
        lines=tuple(
            Line(key=team.letter, name=team.name, colour=team.colour, values=tuple(lines[team.id]))
            for team in teams
        ),
    )


def _end_ms(timeline: Timeline, index: int) -> int:
    segment = timeline.segments[index]
    return segment.start_ms + segment.duration_ms


def _minutes(ms: int) -> str:
    """A time into the class on the chart's axis: "6 min", or "6:30" between minutes."""
    seconds = round(ms / 1000)
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds // 60}:{seconds % 60:02d}"


def standing(results: Results, participant_id: int, team_id: int | None) -> Standing:
    """Where ``participant_id`` finished in these results."""
    people = results.board.people
    row = next((row for row in people if row.id == participant_id), None)
    return Standing(
        participant_id=participant_id,
        rank=None if row is None else row.rank,
        of=len(people),
        value=None if row is None else row.value,
        shown="" if row is None else row.shown,
        unit=results.unit,
        team=results.team(team_id),
    )


def improvement(
    results: Results,
    history: Mapping[int, Sequence[float]],
    people: Mapping[int, Person],
    *,
    public: bool = True,
) -> tuple[Row, ...]:
    """Participants ranked against their own average of past classes (``history``).

    ``history`` holds each participant's totals in their past classes of the
    same routine, in the unit of these results, most recent last; only the
    last :data:`HISTORY_CLASSES` count.
    """
    averages = {
        pid: sum(recent) / len(recent)
        for pid, totals in history.items()
        if (recent := list(totals)[-HISTORY_CLASSES:])
    }
    lower = results.unit == UNITS[ScoreKind.TIME]  # one for-time segment: less is more
    return improvement_board(
        results.values(), averages, people, public=public, lower_is_better=lower
    )


# -- exports ----------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "number",
    "nickname",
    "team",
    "segment",
    "segment_name",
    "kind",
    "division",
    "value",
    "rounds",
    "result",
    "total",
    "unit",
    "rank",
    "team_total",
)


def export_rows(results: Results, people: Mapping[int, Person]) -> list[dict[str, Any]]:
    """One row per participant per scored segment, with their totals (instructor's names)."""
    totals = {row.id: row for row in results.board.people}
    team_totals = {row.id: row.value for row in results.board.teams}
    rows: list[dict[str, Any]] = []
    for segment in results.segments:
        for mark in segment.marks:
            person = people.get(mark.participant_id)
            team = results.team(mark.team_id)
            total = totals.get(mark.participant_id)
            rows.append(
                {
                    "number": person.number if person else mark.participant_id,
                    "nickname": person.name if person else mark.name,
                    "team": team.name if team else "",
                    "segment": segment.index + 1,
                    "segment_name": segment.name,
                    "kind": segment.kind.value,
                    "division": mark.division,
                    "value": mark.value,
                    "rounds": mark.rounds,
                    "result": mark.shown,
                    "total": _number(total.value) if total else "",
                    "unit": results.unit,
                    "rank": total.rank if total else "",
                    "team_total": _number(team_totals[team.id]) if team else "",
                }
            )
    return rows


def export_data(results: Results, people: Mapping[int, Person]) -> dict[str, Any]:
    """The results as one JSON document: the class, its teams, people and segments."""
    names = {pid: person.name for pid, person in people.items()}

    def team_name(team_id: int | None) -> str | None:
        team = results.team(team_id)
        return None if team is None else team.name

    return {
        "title": results.title,
        "unit": results.unit,
        "team_mode": results.mode.value,
        "best_n": results.best_n,
        "teams": [
            {
                "id": row.id,
                "name": row.name,
                "letter": t.letter if (t := results.team(row.id)) else "",
                "rank": row.rank,
                "total": _number(row.value),
                "members": row.members,
            }
            for row in results.board.teams
        ],
        "people": [
            {
                "id": row.id,
                "number": people[row.id].number if row.id in people else row.id,
                "nickname": names.get(row.id, row.name),
                "hidden": people[row.id].hidden if row.id in people else False,
                "team": team_name(row.team_id),
                "rank": row.rank,
                "total": _number(row.value),
            }
            for row in results.board.people
        ],
        "segments": [
            {
                "segment": segment.index + 1,
                "name": segment.name,
                "kind": segment.kind.value,
                "unit": segment.unit,
                "results": [
                    {
                        "participant_id": mark.participant_id,
                        "nickname": names.get(mark.participant_id, mark.name),
                        "team": team_name(mark.team_id),
                        "division": mark.division,
                        "value": mark.value,
                        "rounds": mark.rounds,
                        "result": mark.shown,
                        "rank": mark.rank,
                    }
                    for mark in segment.marks
                ],
            }
            for segment in results.segments
        ],
    }


def _number(value: float) -> float | int:
    """Whole numbers as integers; points to two decimals."""
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def spreadsheet_safe(cell: object) -> object:
    """A cell a spreadsheet won't run as a formula: text starting with = + - @ gets a '."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


# -- progress ---------------------------------------------------------------------------


def progress(standings: Sequence[tuple[str, str, Standing]]) -> Chart:
    """A participant's total per class over time.

    ``standings`` are oldest first, each with a label (the class and its date)
    and a tick (the date, short).

    Totals in different units don't share an axis: the chart keeps the classes
    in the unit of the most recent class that had a total.
    """
    counted = [(label, tick, s) for label, tick, s in standings if s.value is not None]
    if not counted:
        return Chart(unit="", labels=(), ticks=(), lines=())
    unit = counted[-1][2].unit
    kept = [(label, tick, s.value or 0.0) for label, tick, s in counted if s.unit == unit]
    return Chart(
        unit=unit,
        labels=tuple(label for label, _, _ in kept),
        ticks=tuple(tick for _, tick, _ in kept),
        lines=(
            Line(
                key="You", name="Your total", colour="#56B4E9", values=tuple(v for _, _, v in kept)
            ),
        ),
    )
