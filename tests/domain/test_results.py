"""Results: totals, the breakdown per segment, the team chart, exports and progress.

The class: squats (reps), a rest, an AMRAP (rounds + reps, 20 reps a round),
burpees (reps), an effort rating. Team Blue has 3 members, team Orange 5; Cleo
hides her name on public boards; Ida has no team.
"""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable

import pytest

from classroom.domain.boards import POINTS, Person, Team, class_board
from classroom.domain.charts import Chart, Line, chart_svg, describe
from classroom.domain.codec import to_plain
from classroom.domain.results import (
    EXPORT_COLUMNS,
    HISTORY_CLASSES,
    Standing,
    class_results,
    export_data,
    export_rows,
    improvement,
    progress,
    scored_segments,
    spreadsheet_safe,
    standing,
)
from classroom.domain.scorebook import Entry, Fix, ScoreBook
from classroom.domain.scoring import Division, Tally
from classroom.domain.targets import Target
from classroom.domain.teams import LOOKS, TeamMode
from classroom.domain.timeline import ScoreKind, Segment, SegmentKind, Timeline

SVG = "{http://www.w3.org/2000/svg}"
BLUE, ORANGE = 10, 20
TEAMS = (
    Team(id=BLUE, name="Team Blue", letter="A", colour=LOOKS[0].colour, pattern="stripes"),
    Team(id=ORANGE, name="Team Orange", letter="B", colour=LOOKS[1].colour, pattern="dots"),
)
HIDDEN = "Cleo Secretname"
NAMES = {1: "Ann", 2: "Ben", 3: HIDDEN, 4: "Dee", 5: "Eve", 6: "Fay", 7: "Gus", 8: "Hal"}
PEOPLE: dict[int, Person] = {
    pid: Person(
        id=pid, name=name, number=pid, team_id=BLUE if pid <= 3 else ORANGE, hidden=name == HIDDEN
    )
    for pid, name in NAMES.items()
}
PEOPLE[9] = Person(id=9, name="Ida", number=9)

SQUATS, REST, AMRAP, BURPEES, EFFORT = range(5)


def segment(index: int, name: str, kind: ScoreKind, **extra: object) -> Segment:
    return Segment(
        index=index,
        name=name,
        kind=SegmentKind.REST if kind is ScoreKind.NONE else SegmentKind.WORK,
        start_ms=index * 60_000,
        duration_ms=60_000,
        score_kind=kind,
        **extra,  # type: ignore[arg-type]
    )


def timeline(*kinds: tuple[str, ScoreKind]) -> Timeline:
    segments = tuple(segment(i, name, kind) for i, (name, kind) in enumerate(kinds))
    return Timeline(title="Tuesday burn", segments=segments)


MIXED = Timeline(
    title="Tuesday burn",
    segments=(
        segment(SQUATS, "Squats", ScoreKind.REPS),
        segment(REST, "Rest", ScoreKind.NONE),
        segment(AMRAP, "AMRAP", ScoreKind.ROUNDS_REPS, target=Target(reps=20)),
        segment(BURPEES, "Burpees", ScoreKind.REPS),
        segment(EFFORT, "How hard?", ScoreKind.EFFORT),
    ),
)
REPS_ONLY = timeline(
    ("Squats", ScoreKind.REPS), ("Rest", ScoreKind.NONE), ("Lunges", ScoreKind.REPS)
)


def entry(
    pid: int,
    index: int,
    kind: ScoreKind,
    value: int,
    rounds: int = 0,
    *,
    cid: str = "",
    division: Division = Division.RX,
    undoes: str = "",
    withdrawn: bool = False,
) -> Entry:
    return Entry(
        participant_id=pid,
        client_id=cid or f"p{pid}-s{index}-{value}-{rounds}",
        segment_index=index,
        kind=kind,
        value=value,
        rounds=rounds,
        division=division,
        elapsed_ms=30_000,
        undoes=undoes,
        withdrawn=withdrawn,
    )


def book_of(entries: Iterable[Entry], fixes: Iterable[Fix] = ()) -> ScoreBook:
    book = ScoreBook()
    book.restore(list(entries), list(fixes))
    return book


# Blue: 30 + 20 + 10 squats; Orange: 15 each (5 members). Then 10 lunges each.
SQUAT_REPS = {1: 30, 2: 20, 3: 10, 4: 15, 5: 15, 6: 15, 7: 15, 8: 15}


def reps_book() -> ScoreBook:
    entries = [entry(pid, 0, ScoreKind.REPS, n) for pid, n in SQUAT_REPS.items()]
    entries += [entry(pid, 2, ScoreKind.REPS, 10) for pid in SQUAT_REPS]
    return book_of(entries)


def test_totals_are_the_class_board_in_reps_when_every_segment_counts_reps() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book(), public=False)
    assert results.unit == "reps"
    assert [(row.rank, row.name, row.value) for row in results.board.people[:3]] == [
        (1, "Ann", 40.0),
        (2, "Ben", 30.0),
        (3, "Dee", 25.0),
    ]
    assert {row.name: row.value for row in results.board.teams} == {
        "Team Blue": 90.0,
        "Team Orange": 125.0,
    }
    assert [s.index for s in results.segments] == [0, 2]  # the rest isn't scored
    assert results.title == "Tuesday burn"


@pytest.mark.parametrize(
    ("mode", "blue", "orange"),
    [
        (TeamMode.TOTAL, 90.0, 125.0),
        (TeamMode.AVERAGE, 30.0, 25.0),  # 3 against 5: per active member, Blue leads
        (TeamMode.BEST_N, 90.0, 75.0),  # the best 3 of each
    ],
)
def test_uneven_teams_under_each_team_mode_and_the_chart_ends_at_the_totals(
    mode: TeamMode, blue: float, orange: float
) -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book(), mode=mode, best_n=3)
    teams = {row.id: row.value for row in results.board.teams}
    assert teams == {BLUE: blue, ORANGE: orange}
    chart = results.chart
    assert chart.unit == "reps"
    assert chart.labels == ("1. Squats", "3. Lunges")
    # A time axis: where each scored segment ends, in minutes, with its name under it.
    assert chart.ticks == ("1 min", "3 min")
    assert chart.at == pytest.approx((1 / 3, 1.0))
    assert chart.names == ("Squats", "Lunges")
    svg = chart_svg(chart, title="Teams")
    assert '<text class="chart-name" x="237.3"' in svg and ">Lunges</text>" in svg
    lines = {line.key: line.values for line in chart.lines}
    assert lines["A"][-1] == blue and lines["B"][-1] == orange
    after_squats = {TeamMode.TOTAL: (60.0, 75.0), TeamMode.AVERAGE: (20.0, 15.0)}
    after_squats[TeamMode.BEST_N] = (60.0, 45.0)
    assert (lines["A"][0], lines["B"][0]) == after_squats[mode]


def test_mixed_kinds_total_in_points_and_the_breakdown_shows_each_kind_its_own_way() -> None:
    entries = [
        entry(1, SQUATS, ScoreKind.REPS, 30),
        entry(4, SQUATS, ScoreKind.REPS, 20),
        entry(1, AMRAP, ScoreKind.ROUNDS_REPS, 5, rounds=12),
        entry(4, AMRAP, ScoreKind.ROUNDS_REPS, 0, rounds=6),
        entry(4, AMRAP, ScoreKind.ROUNDS_REPS, 10, rounds=0, division=Division.SCALED),
        entry(1, EFFORT, ScoreKind.EFFORT, 8),
    ]
    results = class_results(MIXED, PEOPLE, TEAMS, book_of(entries), public=False)
    assert results.unit == POINTS
    assert [s.name for s in results.segments] == ["Squats", "AMRAP", "How hard?"]
    amrap = results.segments[1]
    assert amrap.kind is ScoreKind.ROUNDS_REPS and amrap.unit == "rounds + reps"
    ann = next(m for m in amrap.marks if m.name == "Ann")
    dee = next(m for m in amrap.marks if m.name == "Dee")
    assert (ann.rounds, ann.value, ann.shown, ann.division) == (12, 5, "12 + 5", "rx")
    # Dee's latest input was scaled: her result is in the scaled division.
    assert (dee.rounds, dee.value, dee.shown, dee.division) == (6, 10, "6 + 10", "scaled")
    assert results.segments[2].marks[0].shown == "8 RPE"
    # Each is the best of their own division in the AMRAP: 100 points each there.
    totals = results.values()
    assert totals[1] == pytest.approx(200.0)
    assert totals[4] == pytest.approx(100.0 * 20 / 30 + 100.0)
    assert results.chart.unit == POINTS
    assert {line.key: line.values[-1] for line in results.chart.lines} == pytest.approx(
        {row_team.letter: value for row_team, value in zip(TEAMS, (200.0, totals[4]), strict=True)}
    )


def test_a_for_time_segment_shows_minutes_and_seconds_and_ranks_less_time_first() -> None:
    tl = timeline(("For time", ScoreKind.TIME))
    entries = [entry(1, 0, ScoreKind.TIME, 247_000), entry(2, 0, ScoreKind.TIME, 200_500)]
    results = class_results(tl, PEOPLE, TEAMS, book_of(entries), public=False)
    marks = results.segments[0].marks
    assert [(m.name, m.value, m.shown, m.rank) for m in marks] == [
        ("Ben", 200_500, "3:20", 1),
        ("Ann", 247_000, "4:07", 2),
    ]
    # The class's one scored segment: its totals are the times themselves, less first.
    assert results.unit == "time"
    assert [(row.name, row.shown) for row in results.board.people] == [
        ("Ben", "3:20"),
        ("Ann", "4:07"),
    ]


def test_withdrawn_inputs_corrections_and_removed_participants_are_taken_into_account() -> None:
    entries = [
        entry(1, 0, ScoreKind.REPS, 5, cid="a"),
        entry(1, 0, ScoreKind.REPS, 5, cid="b", withdrawn=True),
        entry(1, 0, ScoreKind.REPS, 0, cid="c", undoes="b"),
        entry(2, 0, ScoreKind.REPS, 50, cid="d"),
        entry(4, 0, ScoreKind.REPS, 7, cid="e"),
    ]
    fixes = [Fix(participant_id=2, segment_index=0, result=Tally(12))]
    fixes.append(Fix(participant_id=4, segment_index=2, result=Tally(9)))  # only a correction
    book = book_of(entries, fixes)
    book.remove(5)  # removed: not in the results even with scores
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, book, public=False)
    assert results.values() == {1: 5.0, 2: 12.0, 4: 16.0}
    deleted = book_of(entries, [Fix(participant_id=2, segment_index=0, result=None)])
    assert 2 not in class_results(REPS_ONLY, PEOPLE, TEAMS, deleted).values()


def test_a_class_with_no_scores_has_empty_results() -> None:
    results = class_results(MIXED, PEOPLE, TEAMS, ScoreBook())
    assert results.board.people == () and results.segments == ()
    assert [line.values for line in results.chart.lines] == [(), ()]
    assert scored_segments(MIXED, ScoreBook()) == []
    svg = chart_svg(results.chart, title="Teams")
    ET.fromstring(svg)
    assert "No scores yet." in svg


def test_scores_for_a_segment_the_timeline_does_not_have_are_left_out() -> None:
    book = book_of([entry(1, 0, ScoreKind.REPS, 5), entry(1, 9, ScoreKind.REPS, 5)])
    assert [s.index for s in scored_segments(REPS_ONLY, book)] == [0]


def test_public_results_never_hold_a_hidden_name_and_the_instructors_do() -> None:
    book = reps_book()
    public = json.dumps(to_plain(class_results(REPS_ONLY, PEOPLE, TEAMS, book, public=True)))
    assert HIDDEN not in public
    assert "Athlete 3" in public
    private = json.dumps(to_plain(class_results(REPS_ONLY, PEOPLE, TEAMS, book, public=False)))
    assert HIDDEN in private


def test_standing_says_where_a_participant_finished() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book())
    ben = standing(results, 2, BLUE)
    assert (ben.rank, ben.of, ben.value, ben.shown, ben.unit) == (2, 8, 30.0, "30 reps", "reps")
    assert ben.team == TEAMS[0]
    ida = standing(results, 9, None)  # logged nothing
    assert (ida.rank, ida.value, ida.team) == (None, None, None)


# -- the improvement board -------------------------------------------------------------


def test_improvement_ranks_against_each_persons_own_past_average() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book(), public=True)
    history = {
        1: [20.0, 20.0],  # Ann: 40 now, +100%
        2: [30.0],  # Ben: 30 now, +0%
        3: [20.0, 40.0],  # Cleo (hidden): 20 now, -33%
        4: [],  # Dee: no history, not on the board
    }
    rows = improvement(results, history, PEOPLE, public=True)
    assert [(row.rank, row.name, row.shown) for row in rows] == [
        (1, "Ann", "+100%"),
        (2, "Ben", "+0%"),
        (3, "Athlete 3", "-33%"),
    ]
    assert improvement(results, {}, PEOPLE) == ()


def test_improvement_counts_only_the_most_recent_past_classes() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book())
    old = [1000.0] * 5 + [20.0] * HISTORY_CLASSES  # the old highs no longer count
    assert improvement(results, {1: old}, PEOPLE)[0].shown == "+100%"


# -- exports ---------------------------------------------------------------------------


def test_export_rows_give_one_row_per_participant_per_segment_with_totals() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book(), public=False)
    rows = export_rows(results, PEOPLE)
    assert len(rows) == 16 and all(tuple(row) == EXPORT_COLUMNS for row in rows)
    cleo = [row for row in rows if row["number"] == 3]
    assert [(r["nickname"], r["segment"], r["value"], r["total"], r["rank"]) for r in cleo] == [
        (HIDDEN, 1, 10, 20, 8),
        (HIDDEN, 3, 10, 20, 8),  # five share 3rd at 25
    ]
    assert {(r["team"], r["team_total"]) for r in rows} == {("Team Blue", 90), ("Team Orange", 125)}
    per_person: dict[str, int] = {}
    for row in rows:
        per_person[row["nickname"]] = per_person.get(row["nickname"], 0) + row["value"]
    assert per_person == {row["nickname"]: row["total"] for row in rows}


def test_export_data_holds_the_same_totals_as_the_results() -> None:
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, reps_book(), public=True)
    data = export_data(results, PEOPLE)
    json.dumps(data)  # plain JSON all the way down
    assert {p["nickname"]: p["total"] for p in data["people"]}["Ann"] == 40
    assert {p["id"] for p in data["people"] if p["hidden"]} == {3}
    assert [p["nickname"] for p in data["people"] if p["id"] == 3] == [HIDDEN]
    assert {t["letter"]: t["total"] for t in data["teams"]} == {"A": 90, "B": 125}
    assert [s["kind"] for s in data["segments"]] == ["reps", "reps"]
    assert sum(r["value"] for s in data["segments"] for r in s["results"]) == 215


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        (12, 12),
        ("", ""),
    ],
)
def test_spreadsheet_safe_defuses_cells_a_spreadsheet_would_run(cell: object, safe: object) -> None:
    assert spreadsheet_safe(cell) == safe


# -- progress --------------------------------------------------------------------------


def standing_of(value: float | None, unit: str = "reps") -> Standing:
    return Standing(participant_id=1, rank=1, of=3, value=value, shown="", unit=unit, team=None)


def test_progress_charts_the_classes_in_the_unit_of_the_latest() -> None:
    chart = progress(
        [
            ("Tabata, 1 May", "1 May", standing_of(100.0)),
            ("Mixed, 2 May", "2 May", standing_of(180.0, POINTS)),
            ("Absent, 3 May", "3 May", standing_of(None)),
            ("Tabata, 4 May", "4 May", standing_of(120.0)),
        ]
    )
    assert chart.unit == "reps"
    assert chart.ticks == ("1 May", "4 May")
    assert [line.values for line in chart.lines] == [(100.0, 120.0)]
    assert progress([]).lines == ()


# -- the chart as SVG ------------------------------------------------------------------


def test_the_svg_chart_never_relies_on_colour_alone_and_speaks_to_screen_readers() -> None:
    teams = tuple(
        Team(
            id=i,
            name=f"Team {look.colour_name}",
            letter=look.letter,
            colour=look.colour,
            pattern=look.pattern,
        )
        for i, look in enumerate(LOOKS)
    )
    chart = Chart(
        unit="reps",
        labels=("1. Squats", "2. Lunges", "3. Burpees"),
        ticks=("1", "2", "3"),
        lines=tuple(
            Line(key=t.letter, name=t.name, colour=t.colour, values=(i, 2.0 * i, 3.0 * i))
            for i, t in enumerate(teams)
        ),
    )
    svg = chart_svg(chart, title="Teams over the class", ident="teams")
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "teams-title teams-desc"
    assert root.find(f"{SVG}title").text == "Teams over the class"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "Team Blue (A): 0, 0, 0 reps." in desc and "Team Grey (H): 7, 14, 21 reps." in desc
    groups = root.findall(f"{SVG}g[@class='chart-line']")
    assert [g.get("data-key") for g in groups] == list("ABCDEFGH")
    dashes = [g.find(f"{SVG}polyline").get("stroke-dasharray", "solid") for g in groups]  # type: ignore[union-attr]
    assert len(set(dashes)) == 8
    shapes = [ET.tostring(list(g)[1]).decode().split()[0].split(":")[-1] for g in groups]
    assert set(shapes) == {"circle", "rect", "polygon", "path"}
    corners = [len(list(g)[1].get("points", "").split()) for g in groups if "polygon" in shapes]
    assert corners.count(3) == 2 and corners.count(4) == 2  # triangles up and down, diamond, bar
    keys = [t.text for t in root.findall(f"{SVG}text[@class='chart-key']")]
    assert sorted(keys) == list("ABCDEFGH")  # type: ignore[type-var]
    key_ys = sorted(float(t.get("y", 0)) for t in root.findall(f"{SVG}text[@class='chart-key']"))
    assert all(b - a >= 17 for a, b in itertools.pairwise(key_ys))  # none overlap


def test_the_svg_chart_escapes_every_text() -> None:
    chart = Chart(
        unit="<b>reps</b>",
        labels=('1. "Squats" & <script>alert(1)</script>',),
        ticks=("<1>",),
        lines=(
            Line(key="<A>", name="Team </desc><script>", colour='#000" onload="x', values=(5,)),
        ),
    )
    svg = chart_svg(chart, title="<script>alert('t')</script>", ident='x"y')
    assert "<script>" not in svg and 'onload="x' not in svg
    root = ET.fromstring(svg)  # still well formed
    assert root.find(f"{SVG}title").text == "<script>alert('t')</script>"  # type: ignore[union-attr]
    assert "Team </desc><script> (<A>): 5 <b>reps</b>." in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_describe_lists_every_point_and_value() -> None:
    chart = Chart(
        unit="pts",
        labels=("1. Squats", "3. AMRAP"),
        ticks=("1", "3"),
        lines=(Line(key="A", name="Team Blue", colour="#0072B2", values=(100.0, 187.5)),),
    )
    assert describe(chart) == "2 points: 1. Squats, 3. AMRAP. Team Blue (A): 100, 187.5 pts."


def test_the_class_board_and_the_results_agree() -> None:
    book = reps_book()
    results = class_results(REPS_ONLY, PEOPLE, TEAMS, book, mode=TeamMode.AVERAGE)
    board = class_board(
        scored_segments(REPS_ONLY, book), PEOPLE, TEAMS, mode=TeamMode.AVERAGE, public=True
    )
    assert results.board == board
