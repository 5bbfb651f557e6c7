"""Leaderboards: individual and team standings, for a segment and for the class.

Everything here is a pure function of the results (:class:`~classroom.domain.scoring.Tally`
per participant and segment) and the roster, so the live class, the results page
and the exports all rank the same way.

**A segment's board** ranks participants by their result in the segment's own
units: Rx above scaled above beginner, then the better result (less time is
better for a For Time segment). Equal results share a rank.

**The class board** adds segments up. When every scored segment counts the same
additive thing (reps, say), it is the plain total in that unit. Otherwise a
participant earns **points** in each segment: 100 for the best result of their
division, and the fraction of the best for the others (for time: best time ÷
their time); effort (RPE) earns no points.

**Teams** turn their members' values into one by the class's team mode: the
total, the average per *active* member (a member with a result in that scope),
or the sum of the best N. A team of 3 and a team of 5 compare fairly under the
last two. Rounds + reps become rounds with a fraction (12 rounds and 5 of a
20-rep round is 12.25) when the team's members are added up.

**Hidden names**: a participant can hide their name from public boards; there
they are "Athlete 7" (7 is their place in the order of joining). The
instructor's boards show every name.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from classroom.domain.scoring import (
    ADDITIVE,
    DIVISION_ORDER,
    UNITS,
    Division,
    Tally,
    lower_is_better,
    show,
)
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind

ANONYMOUS = "Athlete {number}"
POINTS = "pts"
ROUNDS_FALLBACK = 1000
"""Reps per round assumed when a segment doesn't say: reps only break ties."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    """A participant as boards show them."""

    id: int
    name: str
    number: int  # their place in the order of joining, from 1
    team_id: int | None = None
    hidden: bool = False

    def shown_name(self, public: bool) -> str:
        return ANONYMOUS.format(number=self.number) if public and self.hidden else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Team:
    id: int
    name: str
    letter: str
    colour: str
    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of a board. ``movement`` > 0: moved up that many places since the last board."""

    rank: int
    id: int
    name: str
    value: float
    shown: str
    team_id: int | None = None
    division: str = ""
    movement: int = 0
    gap: str = ""  # to the line ahead ("" for the leader)
    members: int = 0  # team boards: active members counted


@dataclass(frozen=True, slots=True, kw_only=True)
class Board:
    """A ranked board: people, teams, in which unit, for which scope."""

    scope: str  # "segment" or "class"
    unit: str
    people: tuple[Row, ...]
    teams: tuple[Row, ...]
    segment_index: int | None = None
    # Everyone's rank by participant id, also those past ``limit`` who have no row:
    # the next board counts rank moves from it. Not part of what screens get.
    ranks: Mapping[int, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scored:
    """A scored segment's results: kind, reps per round, and each participant's result."""

    index: int
    kind: ScoreKind
    results: Mapping[int, Tally]
    divisions: Mapping[int, Division]
    reps_per_round: int | None = None


_NOTHING = object()


class Standing(Mapping[int, int]):
    """Everyone's rank on a board, by participant id, ranked once.

    Ranked by group (``groups``: a division's place; smaller ranks higher), then
    by value (smaller ranks higher). Equal keys share the rank of the first, and
    are listed by participant id. A participant's rank is found by bisection
    when it is asked for, so a board of thousands costs no dictionary of them
    all. The sorts are of plain numbers, one key at a time (the sort is stable),
    which Python does several times faster than sorting tuples.
    """

    __slots__ = ("_groups", "_order", "_sorted", "_values")

    def __init__(
        self, values: Mapping[int, float], groups: Mapping[int, int] | None = None
    ) -> None:
        self._values = values
        self._groups = groups
        order = sorted(values)  # by participant id: equal keys keep this order
        order.sort(key=values.__getitem__)
        if groups is None:
            self._sorted: list[Any] = [values[pid] for pid in order]
        else:
            order.sort(key=groups.__getitem__)
            self._sorted = [(groups[pid], values[pid]) for pid in order]
        self._order = order

    def _key(self, participant_id: int) -> Any:
        value = self._values[participant_id]
        return value if self._groups is None else (self._groups[participant_id], value)

    def __getitem__(self, participant_id: int) -> int:
        return bisect_left(self._sorted, self._key(participant_id)) + 1

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def ranked(self, limit: int | None = None) -> list[tuple[int, int]]:
        """(rank, participant id), best first: the first ``limit`` (all by default)."""
        keys, order = self._sorted, self._order
        if limit is not None:
            keys, order = keys[:limit], order[:limit]
        out: list[tuple[int, int]] = []
        rank, last = 0, _NOTHING
        for position, (key, pid) in enumerate(zip(keys, order, strict=True), start=1):
            if key != last:
                rank, last = position, key
            out.append((rank, pid))
        return out


def amount(kind: ScoreKind, result: Tally, reps_per_round: int | None = None) -> float:
    """A result as one number that grows with the work done (rounds + reps: fractional rounds)."""
    if kind is ScoreKind.ROUNDS_REPS:
        return result.first + result.second / (reps_per_round or ROUNDS_FALLBACK)
    return float(result.first)


def segment_board(
    scored: Scored,
    people: Mapping[int, Person],
    teams: Sequence[Team],
    *,
    mode: TeamMode = TeamMode.TOTAL,
    best_n: int = 3,
    public: bool = True,
    previous: Board | None = None,
    limit: int | None = None,
) -> Board:
    """The board of one segment (rows for the first ``limit`` people; all by default)."""
    kind = scored.kind
    divisions = scored.divisions
    sign = 1.0 if lower_is_better(kind) else -1.0
    rx = Division.RX
    values = _amounts(scored)
    keys = values if sign > 0 else {pid: -value for pid, value in values.items()}
    groups = None  # one division (the usual case): no need to rank by it
    if any(division is not rx for division in divisions.values()):
        groups = {pid: DIVISION_ORDER[divisions.get(pid, rx)] for pid in values}
    standing = Standing(keys, groups)
    moved = _previous_ranks(previous, "people")
    rows: list[Row] = []
    for rank, pid in standing.ranked(limit):
        person = people.get(pid) or Person(id=pid, name=f"#{pid}", number=pid)
        result = scored.results[pid]
        rows.append(
            Row(
                rank=rank,
                id=pid,
                name=person.shown_name(public),
                value=values[pid],
                shown=show(kind, result),
                team_id=person.team_id,
                division=divisions.get(pid, rx).value,
                movement=moved.get(pid, rank) - rank,
            )
        )
    rows = _with_gaps(rows, kind)
    team_values = segment_points(scored) if lower_is_better(kind) else values
    team_rows = _team_board(
        _by_team(team_values, people, teams), teams, mode, best_n, kind, previous
    )
    return Board(
        scope="segment",
        unit=UNITS[kind],
        people=tuple(rows),
        teams=team_rows,
        segment_index=scored.index,
        ranks=standing,
    )


def _amounts(scored: Scored) -> dict[int, float]:
    """Each participant's result in the segment as one number (see :func:`amount`)."""
    if scored.kind is ScoreKind.ROUNDS_REPS:
        per_round = scored.reps_per_round
        return {
            pid: amount(scored.kind, result, per_round) for pid, result in scored.results.items()
        }
    return {pid: float(result.first) for pid, result in scored.results.items()}


def public(board: Board, people: Mapping[int, Person]) -> Board:
    """``board`` as public screens show it: the names that asked to be hidden are hidden."""
    rows = tuple(
        replace(row, name=people[row.id].shown_name(True))
        if row.id in people and people[row.id].hidden
        else row
        for row in board.people
    )
    return replace(board, people=rows)


def class_values(segments: Sequence[Scored]) -> tuple[str, dict[int, float]]:
    """Each participant's value for the whole class, and its unit."""
    kinds = {s.kind for s in segments if s.kind is not ScoreKind.EFFORT}
    totals: dict[int, float] = {}
    if len(kinds) == 1 and next(iter(kinds)) in ADDITIVE:
        (kind,) = kinds
        for s in segments:
            if s.kind is kind:
                for pid, result in s.results.items():
                    totals[pid] = totals.get(pid, 0.0) + result.first
        return UNITS[kind], totals
    for s in segments:
        for pid, points in segment_points(s).items():
            totals[pid] = totals.get(pid, 0.0) + points
    return POINTS, totals


def class_divisions(segments: Sequence[Scored]) -> dict[int, Division]:
    """Each participant's division for the class: the most scaled one they logged in."""
    out: dict[int, Division] = {}
    for s in segments:
        if s.kind is ScoreKind.EFFORT:
            continue
        for pid in s.results:
            division = s.divisions.get(pid, Division.RX)
            known = out.get(pid)
            if known is None or DIVISION_ORDER[division] > DIVISION_ORDER[known]:
                out[pid] = division
    return out


def segment_points(scored: Scored) -> dict[int, float]:
    """Points out of 100 for each result: the fraction of the best of its division."""
    if scored.kind is ScoreKind.EFFORT:
        return {}
    values = _amounts(scored)
    best: dict[Division, float] = {}
    worse = lower_is_better(scored.kind)
    for pid, value in values.items():
        division = scored.divisions.get(pid, Division.RX)
        current = best.get(division)
        if current is None or (value < current if worse else value > current):
            best[division] = value
    points: dict[int, float] = {}
    for pid, value in values.items():
        top = best[scored.divisions.get(pid, Division.RX)]
        if worse:
            points[pid] = 100.0 * top / value if value > 0 else 100.0
        else:
            points[pid] = 100.0 * value / top if top > 0 else 0.0
    return points


def class_board(
    segments: Sequence[Scored],
    people: Mapping[int, Person],
    teams: Sequence[Team],
    *,
    mode: TeamMode = TeamMode.TOTAL,
    best_n: int = 3,
    public: bool = True,
    previous: Board | None = None,
    limit: int | None = None,
) -> Board:
    """The board of the whole class so far (rows for the first ``limit`` people).

    A class with one scored segment ranks as that segment does, in its unit: an AMRAP
    alone totals rounds and reps, not points. Otherwise the totals are summed (one
    additive unit) or points (see :func:`segment_points`). Either way, as on every
    segment's board, each division ranks as a group: Rx, then Scaled, then Beginner;
    a person's division for the class is the most scaled one they logged in.
    """
    kinds = [s for s in segments if s.kind is not ScoreKind.EFFORT]
    if len(kinds) == 1:
        board = segment_board(
            kinds[0],
            people,
            teams,
            mode=mode,
            best_n=best_n,
            public=public,
            previous=previous,
            limit=limit,
        )
        return replace(board, scope="class", segment_index=None)
    unit, values = class_values(segments)
    divisions = class_divisions(segments)
    groups = None
    if any(division is not Division.RX for division in divisions.values()):
        groups = {pid: DIVISION_ORDER[divisions.get(pid, Division.RX)] for pid in values}
    if unit == POINTS:  # sums of fractions: equal to the millionth is a tie
        standing = Standing({pid: -round(value, 6) for pid, value in values.items()}, groups)
    else:
        standing = Standing({pid: -value for pid, value in values.items()}, groups)
    moved = _previous_ranks(previous, "people")
    rows = [
        Row(
            rank=rank,
            id=pid,
            name=(people.get(pid) or Person(id=pid, name=f"#{pid}", number=pid)).shown_name(public),
            value=values[pid],
            shown=_show_value(values[pid], unit),
            team_id=people[pid].team_id if pid in people else None,
            division=divisions.get(pid, Division.RX).value,
            movement=moved.get(pid, rank) - rank,
        )
        for rank, pid in standing.ranked(limit)
    ]
    rows = _with_value_gaps(rows, unit)
    team_rows = _team_board(
        _by_team(values, people, teams), teams, mode, best_n, None, previous, unit
    )
    return Board(
        scope="class",
        unit=unit,
        people=tuple(rows),
        teams=team_rows,
        ranks=standing,
    )


def improvement_board(
    current: Mapping[int, float],
    past_average: Mapping[int, float],
    people: Mapping[int, Person],
    *,
    public: bool = True,
    lower_is_better: bool = False,
) -> tuple[Row, ...]:
    """Participants ranked by how far they are above their own past average, in %.

    Only participants with history (a past average above zero) are on it. Where less
    is better (a class totalled in time), going under the average is the gain, and
    only those with a result in this class are on it.
    """
    if lower_is_better:
        gains = {
            pid: 100.0 * (past - current[pid]) / past
            for pid, past in past_average.items()
            if past > 0 and pid in people and pid in current
        }
    else:
        gains = {
            pid: 100.0 * (current.get(pid, 0.0) - past) / past
            for pid, past in past_average.items()
            if past > 0 and pid in people
        }
    order = sorted(gains, key=lambda pid: (-gains[pid], pid))
    return tuple(
        Row(
            rank=rank,
            id=pid,
            name=people[pid].shown_name(public),
            value=gains[pid],
            shown=f"{gains[pid]:+.0f}%",
            team_id=people[pid].team_id,
        )
        for rank, pid in _ranks(order, lambda pid: (0, -round(gains[pid], 6)))
    )


def team_value(values: Iterable[float], mode: TeamMode, best_n: int) -> float:
    """A team's value from its active members' values, by the class's team mode."""
    members = sorted(values, reverse=True)
    if not members:
        return 0.0
    if mode is TeamMode.AVERAGE:
        return sum(members) / len(members)
    if mode is TeamMode.BEST_N:
        return sum(members[:best_n])
    return sum(members)


# -- helpers ----------------------------------------------------------------------------


def _ranks(order: Sequence[int], key: Callable[[int], object]) -> list[tuple[int, int]]:
    """(rank, id) in ``order``; ids with equal keys share the rank of the first."""
    ranked: list[tuple[int, int]] = []
    last_key: object = None
    rank = 0
    for position, pid in enumerate(order, start=1):
        k = key(pid)
        if k != last_key:
            rank, last_key = position, k
        ranked.append((rank, pid))
    return ranked


def _previous_ranks(previous: Board | None, which: str) -> Mapping[int, int]:
    if previous is None:
        return {}
    if which == "people" and previous.ranks:
        return previous.ranks
    rows = previous.people if which == "people" else previous.teams
    return {row.id: row.rank for row in rows}


def _with_gaps(rows: list[Row], kind: ScoreKind) -> list[Row]:
    out: list[Row] = []
    for i, row in enumerate(rows):
        if i == 0 or rows[i - 1].division != row.division:
            out.append(row)
            continue
        ahead = rows[i - 1]
        diff = abs(ahead.value - row.value)
        if kind is ScoreKind.TIME:
            seconds = int(diff) // 1000
            gap = f"{seconds // 60}:{seconds % 60:02d}"
        elif kind is ScoreKind.ROUNDS_REPS:
            gap = _show_value(diff, "rounds")
        else:
            gap = _show_value(diff, UNITS[kind])
        out.append(replace(row, gap=gap))
    return out


def _with_value_gaps(rows: list[Row], unit: str) -> list[Row]:
    return [
        row if i == 0 else replace(row, gap=_show_value(rows[i - 1].value - row.value, unit))
        for i, row in enumerate(rows)
    ]


def _show_value(value: float, unit: str) -> str:
    number = f"{value:,.1f}".removesuffix(".0")
    return f"{number} {unit}"


def _by_team(
    values: Mapping[int, float], people: Mapping[int, Person], teams: Sequence[Team]
) -> dict[int, list[float]]:
    """The values of each team's members (each team, even one without any)."""
    by_team: dict[int, list[float]] = {team.id: [] for team in teams}
    for pid, value in values.items():
        person = people.get(pid)
        members = None if person is None or person.team_id is None else by_team.get(person.team_id)
        if members is not None:
            members.append(value)
    return by_team


def _team_board(
    by_team: Mapping[int, list[float]],
    teams: Sequence[Team],
    mode: TeamMode,
    best_n: int,
    kind: ScoreKind | None,
    previous: Board | None,
    unit: str | None = None,
) -> tuple[Row, ...]:
    values = {tid: team_value(vals, mode, best_n) for tid, vals in by_team.items()}
    position = {team.id: i for i, team in enumerate(teams)}
    order = sorted(values, key=lambda tid: (-values[tid], position[tid]))
    names = {team.id: team.name for team in teams}
    moved = _previous_ranks(previous, "teams")
    if unit is None:
        if kind is None or lower_is_better(kind):
            unit = POINTS
        elif kind is ScoreKind.ROUNDS_REPS:
            unit = "rounds"
        else:
            unit = UNITS[kind]
    rows = [
        Row(
            rank=rank,
            id=tid,
            name=names[tid],
            value=values[tid],
            shown=_show_value(values[tid], unit),
            team_id=tid,
            movement=moved.get(tid, rank) - rank,
            members=len(by_team[tid]),
        )
        for rank, tid in _ranks(order, lambda tid: (0, -round(values[tid], 6)))
    ]
    return tuple(_with_value_gaps(rows, unit))
