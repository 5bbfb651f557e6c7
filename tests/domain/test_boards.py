"""Leaderboards: who is ahead, by how much, and how teams of different sizes compare.

The roster: team Blue has 3 members, team Orange 5 who log (and a sixth who
logs nothing); Ida has no team; Cleo hides her name on public boards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain.boards import (
    ANONYMOUS,
    POINTS,
    Board,
    Person,
    Row,
    Scored,
    Standing,
    Team,
    amount,
    class_board,
    class_divisions,
    class_values,
    improvement_board,
    segment_board,
    segment_points,
    team_value,
)
from classroom.domain.codec import to_plain
from classroom.domain.scoring import Division, Tally
from classroom.domain.teams import LOOKS, TeamMode
from classroom.domain.timeline import ScoreKind

BLUE, ORANGE = 10, 20
TEAMS = (
    Team(id=BLUE, name="Team Blue", letter="A", colour=LOOKS[0].colour, pattern="stripes"),
    Team(id=ORANGE, name="Team Orange", letter="B", colour=LOOKS[1].colour, pattern="dots"),
)
HIDDEN = "Cleo Secretname"
NAMES = {1: "Ann", 2: "Ben", 3: HIDDEN, 4: "Dee", 5: "Eve", 6: "Fay", 7: "Gus", 8: "Hal"}
PEOPLE: dict[int, Person] = {
    pid: Person(
        id=pid,
        name=name,
        number=pid,
        team_id=BLUE if pid <= 3 else ORANGE,
        hidden=name == HIDDEN,
    )
    for pid, name in NAMES.items()
}
PEOPLE[9] = Person(id=9, name="Ida", number=9)  # no team
PEOPLE[11] = Person(id=11, name="Kim", number=11, team_id=ORANGE)  # logs nothing

# Blue: 30 + 20 + 10 (3 members); Orange: 15 x 5 (5 active members).
UNEVEN = {1: 30, 2: 20, 3: 10, 4: 15, 5: 15, 6: 15, 7: 15, 8: 15}


def reps(
    results: Mapping[int, int],
    divisions: Mapping[int, Division] | None = None,
    index: int = 0,
) -> Scored:
    return Scored(
        index=index,
        kind=ScoreKind.REPS,
        results={pid: Tally(v) for pid, v in results.items()},
        divisions=divisions or {},
    )


def scored(kind: ScoreKind, results: Mapping[int, Tally], index: int = 0, **kw: object) -> Scored:
    return Scored(index=index, kind=kind, results=results, divisions={}, **kw)  # type: ignore[arg-type]


def table(rows: tuple[Row, ...]) -> list[tuple[int, int, float]]:
    return [(row.rank, row.id, row.value) for row in rows]


# -- a segment's board -----------------------------------------------------------------------


def test_a_segment_board_ranks_by_result_and_ties_share_a_rank() -> None:
    board = segment_board(reps(UNEVEN), PEOPLE, TEAMS)
    assert (board.scope, board.unit, board.segment_index) == ("segment", "reps", 0)
    assert table(board.people) == [
        (1, 1, 30.0),
        (2, 2, 20.0),
        (3, 4, 15.0),
        (3, 5, 15.0),
        (3, 6, 15.0),
        (3, 7, 15.0),
        (3, 8, 15.0),
        (8, 3, 10.0),
    ]
    first = board.people[0]
    assert (first.name, first.shown, first.team_id, first.division) == (
        "Ann",
        "30 reps",
        BLUE,
        "rx",
    )


def test_rx_ranks_above_scaled_above_beginner_whatever_the_numbers() -> None:
    divisions = {1: Division.BEGINNER, 2: Division.SCALED, 3: Division.RX, 4: Division.SCALED}
    board = segment_board(reps({1: 90, 2: 50, 3: 10, 4: 60}, divisions), PEOPLE, TEAMS)
    assert [(row.rank, row.id, row.division) for row in board.people] == [
        (1, 3, "rx"),
        (2, 4, "scaled"),
        (3, 2, "scaled"),
        (4, 1, "beginner"),
    ]


def test_equal_results_in_different_divisions_do_not_share_a_rank() -> None:
    board = segment_board(reps({1: 20, 2: 20}, {2: Division.SCALED}), PEOPLE, TEAMS)
    assert [(row.rank, row.id) for row in board.people] == [(1, 1), (2, 2)]


def test_less_time_is_better_for_a_for_time_segment() -> None:
    times = {1: Tally(300_000), 2: Tally(247_000), 4: Tally(262_000)}
    board = segment_board(scored(ScoreKind.TIME, times), PEOPLE, TEAMS)
    assert board.unit == "time"
    assert [(row.rank, row.id, row.shown, row.gap) for row in board.people] == [
        (1, 2, "4:07", ""),
        (2, 4, "4:22", "0:15"),
        (3, 1, "5:00", "0:38"),
    ]


def test_the_gap_is_to_the_row_ahead_within_a_division() -> None:
    divisions = {4: Division.SCALED, 5: Division.SCALED}
    board = segment_board(reps({1: 30, 2: 22, 4: 50, 5: 41}, divisions), PEOPLE, TEAMS)
    assert [(row.id, row.gap) for row in board.people] == [
        (1, ""),
        (2, "8 reps"),
        (4, ""),  # the leader of scaled is behind nobody of their division
        (5, "9 reps"),
    ]


def test_rounds_and_reps_rank_as_fractional_rounds() -> None:
    results = {1: Tally(12, 5), 2: Tally(12, 15), 4: Tally(11, 19)}
    board = segment_board(scored(ScoreKind.ROUNDS_REPS, results, reps_per_round=20), PEOPLE, TEAMS)
    assert [(row.id, row.value, row.shown) for row in board.people] == [
        (2, 12.75, "12 + 15"),
        (1, 12.25, "12 + 5"),
        (4, 11.95, "11 + 19"),
    ]
    assert board.people[1].gap == "0.5 rounds"
    assert board.unit == "rounds + reps"


def test_without_reps_per_round_reps_only_break_ties_in_rounds() -> None:
    results = {1: Tally(10, 999), 2: Tally(11, 0), 4: Tally(10, 3)}
    board = segment_board(scored(ScoreKind.ROUNDS_REPS, results), PEOPLE, TEAMS)
    assert [row.id for row in board.people] == [2, 1, 4]
    assert amount(ScoreKind.ROUNDS_REPS, Tally(10, 3)) == 10.003


def test_someone_not_on_the_roster_still_ranks_under_a_placeholder() -> None:
    board = segment_board(reps({99: 5}), PEOPLE, TEAMS)
    assert (board.people[0].name, board.people[0].team_id) == ("#99", None)


def test_an_empty_segment_gives_an_empty_board_with_every_team_at_zero() -> None:
    board = segment_board(reps({}), PEOPLE, TEAMS)
    assert board.people == ()
    assert [(row.rank, row.id, row.value, row.members) for row in board.teams] == [
        (1, BLUE, 0.0, 0),
        (1, ORANGE, 0.0, 0),
    ]


# -- teams of 3 against 5 ----------------------------------------------------------------------


def team_table(board: Board) -> list[tuple[int, str, float, int, str]]:
    return [(row.rank, row.name, row.value, row.members, row.shown) for row in board.teams]


def test_the_total_favours_the_bigger_team() -> None:
    board = segment_board(reps(UNEVEN), PEOPLE, TEAMS, mode=TeamMode.TOTAL)
    assert team_table(board) == [
        (1, "Team Orange", 75.0, 5, "75 reps"),
        (2, "Team Blue", 60.0, 3, "60 reps"),
    ]
    assert board.teams[1].gap == "15 reps"


def test_the_average_per_active_member_compares_3_and_5_fairly() -> None:
    # Kim (Orange) logged nothing: she is not counted, so Orange's average stays 15.
    board = segment_board(reps(UNEVEN), PEOPLE, TEAMS, mode=TeamMode.AVERAGE)
    assert team_table(board) == [
        (1, "Team Blue", 20.0, 3, "20 reps"),
        (2, "Team Orange", 15.0, 5, "15 reps"),
    ]
    assert board.teams[1].gap == "5 reps"


@pytest.mark.parametrize(
    ("best_n", "blue", "orange"), [(1, 30.0, 15.0), (2, 50.0, 30.0), (3, 60.0, 45.0)]
)
def test_the_best_n_compare_the_same_number_of_members(
    best_n: int, blue: float, orange: float
) -> None:
    board = segment_board(reps(UNEVEN), PEOPLE, TEAMS, mode=TeamMode.BEST_N, best_n=best_n)
    assert [(row.name, row.value) for row in board.teams] == [
        ("Team Blue", blue),
        ("Team Orange", orange),
    ]


def test_best_n_above_a_teams_size_is_its_total() -> None:
    board = segment_board(reps(UNEVEN), PEOPLE, TEAMS, mode=TeamMode.BEST_N, best_n=5)
    assert [(row.name, row.value) for row in board.teams] == [
        ("Team Orange", 75.0),
        ("Team Blue", 60.0),
    ]


def test_members_without_a_team_count_for_no_team() -> None:
    board = segment_board(reps({**UNEVEN, 9: 500}), PEOPLE, TEAMS)
    assert [(row.name, row.value) for row in board.teams] == [
        ("Team Orange", 75.0),
        ("Team Blue", 60.0),
    ]


def test_equal_teams_share_a_rank_in_display_order() -> None:
    board = segment_board(reps({1: 10, 4: 10}), PEOPLE, TEAMS)
    assert [(row.rank, row.id) for row in board.teams] == [(1, BLUE), (1, ORANGE)]


def test_team_value_by_mode() -> None:
    assert team_value([10, 30, 20], TeamMode.TOTAL, 2) == 60
    assert team_value([10, 30, 20], TeamMode.AVERAGE, 2) == 20
    assert team_value([10, 30, 20], TeamMode.BEST_N, 2) == 50
    for mode in TeamMode:
        assert team_value([], mode, 3) == 0.0


def test_teams_in_a_for_time_segment_earn_points_not_time() -> None:
    # Blue: 200 s (100 pts) and 400 s (50 pts); Orange: 250 s (80 pts).
    times = {1: Tally(200_000), 2: Tally(400_000), 4: Tally(250_000)}
    board = segment_board(scored(ScoreKind.TIME, times), PEOPLE, TEAMS, mode=TeamMode.AVERAGE)
    assert team_table(board) == [
        (1, "Team Orange", 80.0, 1, "80 pts"),
        (2, "Team Blue", 75.0, 2, "75 pts"),
    ]


def test_teams_add_rounds_and_reps_as_fractional_rounds() -> None:
    results = {1: Tally(12, 5), 2: Tally(10, 10), 4: Tally(20, 0)}
    board = segment_board(scored(ScoreKind.ROUNDS_REPS, results, reps_per_round=20), PEOPLE, TEAMS)
    assert [(row.name, row.value, row.shown) for row in board.teams] == [
        ("Team Blue", 22.75, "22.8 rounds"),
        ("Team Orange", 20.0, "20 rounds"),
    ]


# -- the class board ------------------------------------------------------------------------


def test_same_additive_kind_everywhere_gives_a_plain_total() -> None:
    segments = [reps({1: 30, 2: 20}, index=0), reps({1: 5, 2: 25, 4: 40}, index=2)]
    assert class_values(segments) == ("reps", {1: 35.0, 2: 45.0, 4: 40.0})
    board = class_board(segments, PEOPLE, TEAMS)
    assert (board.scope, board.unit, board.segment_index) == ("class", "reps", None)
    assert [(row.rank, row.id, row.shown, row.gap) for row in board.people] == [
        (1, 2, "45 reps", ""),
        (2, 4, "40 reps", "5 reps"),
        (3, 1, "35 reps", "5 reps"),
    ]


@pytest.mark.parametrize("kind", [ScoreKind.CALORIES, ScoreKind.DISTANCE])
def test_other_additive_kinds_total_too(kind: ScoreKind) -> None:
    segments = [scored(kind, {1: Tally(100)}), scored(kind, {1: Tally(50)}, index=1)]
    unit, values = class_values(segments)
    assert (unit, values) == ({"calories": "cal", "distance": "m"}[kind.value], {1: 150.0})


def test_effort_neither_breaks_a_plain_total_nor_adds_to_it() -> None:
    segments = [reps({1: 30}), scored(ScoreKind.EFFORT, {1: Tally(9), 2: Tally(7)}, index=1)]
    assert class_values(segments) == ("reps", {1: 30.0})


def test_mixed_kinds_earn_points_100_for_the_best_and_a_fraction_otherwise() -> None:
    segments = [
        reps({1: 40, 2: 20}, index=0),
        scored(ScoreKind.TIME, {1: Tally(300_000), 2: Tally(200_000)}, index=1),
        scored(ScoreKind.EFFORT, {1: Tally(10), 2: Tally(3)}, index=2),
    ]
    assert segment_points(segments[0]) == {1: 100.0, 2: 50.0}
    assert segment_points(segments[1]) == pytest.approx({1: 200 / 3, 2: 100.0})
    assert segment_points(segments[2]) == {}
    unit, values = class_values(segments)
    assert unit == POINTS
    assert values == pytest.approx({1: 100 + 200 / 3, 2: 150.0})
    board = class_board(segments, PEOPLE, TEAMS)
    assert [(row.rank, row.id, row.shown, row.gap) for row in board.people] == [
        (1, 1, "166.7 pts", ""),
        (2, 2, "150 pts", "16.7 pts"),
    ]


def test_points_are_out_of_the_best_of_each_division() -> None:
    results = reps({1: 40, 2: 20, 4: 10, 5: 5}, {4: Division.SCALED, 5: Division.SCALED})
    assert segment_points(results) == {1: 100.0, 2: 50.0, 4: 100.0, 5: 50.0}


def test_a_kind_that_is_not_additive_earns_points_even_alone() -> None:
    segments = [scored(ScoreKind.LOAD, {1: Tally(100), 2: Tally(80)})]
    assert class_values(segments) == (POINTS, {1: 100.0, 2: 80.0})


def test_a_class_with_nothing_scored_has_an_empty_board() -> None:
    board = class_board([], PEOPLE, TEAMS)
    assert (board.unit, board.people) == (POINTS, ())


def test_class_team_boards_follow_the_team_mode_too() -> None:
    segments = [reps(UNEVEN, index=0), reps({1: 10, 4: 5}, index=1)]
    # Blue members: 40, 20, 10; Orange: 20, 15, 15, 15, 15.
    expected = {
        TeamMode.TOTAL: [("Team Orange", 80.0), ("Team Blue", 70.0)],
        TeamMode.AVERAGE: [("Team Blue", 70 / 3), ("Team Orange", 16.0)],
        TeamMode.BEST_N: [("Team Blue", 70.0), ("Team Orange", 50.0)],
    }
    for mode, rows in expected.items():
        board = class_board(segments, PEOPLE, TEAMS, mode=mode, best_n=3)
        assert [row.name for row in board.teams] == [name for name, _ in rows]
        assert [row.value for row in board.teams] == pytest.approx([value for _, value in rows])
        assert all(row.shown.endswith(" reps") for row in board.teams)
    average = class_board(segments, PEOPLE, TEAMS, mode=TeamMode.AVERAGE)
    assert [row.members for row in average.teams] == [3, 5]
    assert [row.shown for row in average.teams] == ["23.3 reps", "16 reps"]


# -- movement -----------------------------------------------------------------------------------


def test_movement_counts_places_gained_since_the_previous_board() -> None:
    before = segment_board(reps({1: 30, 2: 20, 4: 10}), PEOPLE, TEAMS)
    after = segment_board(reps({1: 30, 2: 20, 4: 35, 5: 1}), PEOPLE, TEAMS, previous=before)
    assert [(row.id, row.rank, row.movement) for row in after.people] == [
        (4, 1, 2),
        (1, 2, -1),
        (2, 3, -1),
        (5, 4, 0),  # new on the board: no movement
    ]


def test_team_movement_follows_the_previous_board() -> None:
    before = segment_board(reps({1: 30, 4: 10}), PEOPLE, TEAMS)
    after = segment_board(reps({1: 30, 4: 10, 5: 25}), PEOPLE, TEAMS, previous=before)
    assert [(row.name, row.movement) for row in after.teams] == [
        ("Team Orange", 1),
        ("Team Blue", -1),
    ]


def test_class_board_movement() -> None:
    before = class_board([reps({1: 30, 2: 20})], PEOPLE, TEAMS)
    after = class_board(
        [reps({1: 30, 2: 20}), reps({2: 15}, index=1)], PEOPLE, TEAMS, previous=before
    )
    assert [(row.id, row.movement) for row in after.people] == [(2, 1), (1, -1)]


# -- improvement ---------------------------------------------------------------------------------


def test_improvement_ranks_by_percent_above_ones_own_past_average() -> None:
    current = {1: 120.0, 2: 90.0, 4: 150.0, 5: 80.0}
    past = {1: 100.0, 2: 100.0, 4: 125.0, 6: 40.0, 7: 0.0, 99: 10.0}
    rows = improvement_board(current, past, PEOPLE)
    assert [(row.rank, row.id, row.shown) for row in rows] == [
        (1, 1, "+20%"),
        (1, 4, "+20%"),
        (3, 2, "-10%"),
        (4, 6, "-100%"),  # history but nothing today
    ]
    assert rows[0].value == pytest.approx(20.0)
    # Eve (5) has no history, Gus (7) a zero average, 99 isn't on the roster: none listed.


# -- hidden names -------------------------------------------------------------------------------


def every_board(public: bool) -> list[Board | tuple[Row, ...]]:
    segments = [
        reps(UNEVEN, index=0),
        scored(ScoreKind.TIME, {3: Tally(200_000), 1: Tally(250_000)}, index=1),
    ]
    before = segment_board(segments[0], PEOPLE, TEAMS, public=public)
    return [
        before,
        segment_board(segments[1], PEOPLE, TEAMS, public=public),
        segment_board(segments[0], PEOPLE, TEAMS, public=public, previous=before),
        class_board(segments, PEOPLE, TEAMS, public=public, mode=TeamMode.AVERAGE),
        improvement_board({3: 50.0}, {3: 40.0}, PEOPLE, public=public),
    ]


def names(board: Board | tuple[Row, ...]) -> list[str]:
    rows = board.people if isinstance(board, Board) else board
    return [row.name for row in rows]


def test_a_hidden_name_never_appears_on_a_public_board() -> None:
    for board in every_board(public=True):
        assert HIDDEN not in names(board)
        assert ANONYMOUS.format(number=3) in names(board)
        assert "Ann" in names(board) or names(board) == ["Athlete 3"]
        plain = json.dumps(to_plain(board))
        assert HIDDEN not in plain
        assert "Secretname" not in plain and "Cleo" not in plain


def test_the_instructors_boards_show_every_name() -> None:
    for board in every_board(public=False):
        assert HIDDEN in names(board)
        assert "Athlete 3" not in names(board)
        assert HIDDEN in json.dumps(to_plain(board))


def test_the_anonymous_name_is_the_place_in_the_order_of_joining() -> None:
    hidden = Person(id=42, name="Zed", number=7, hidden=True)
    assert hidden.shown_name(public=True) == "Athlete 7"
    assert hidden.shown_name(public=False) == "Zed"
    assert Person(id=1, name="Ann", number=1).shown_name(public=True) == "Ann"


@given(
    st.dictionaries(st.integers(1, 8), st.integers(1, 200), min_size=1),
    st.sampled_from(list(TeamMode)),
)
def test_no_public_board_leaks_a_hidden_name(results: dict[int, int], mode: TeamMode) -> None:
    boards = [
        segment_board(reps(results), PEOPLE, TEAMS, mode=mode),
        class_board([reps(results)], PEOPLE, TEAMS, mode=mode),
    ]
    for board in boards:
        assert HIDDEN not in json.dumps(to_plain(board))
        assert [row.rank for row in board.people] == sorted(row.rank for row in board.people)
        assert len(board.teams) == len(TEAMS)


@given(
    st.dictionaries(
        st.integers(1, 500),
        st.tuples(st.integers(0, 2), st.sampled_from([-3.0, -1.5, 0.0, 2.0, 7.25])),
        max_size=60,
    ),
    st.booleans(),
    st.integers(0, 70),
)
def test_a_standing_ranks_like_counting_who_is_ahead(
    keys: dict[int, tuple[int, float]], grouped: bool, limit: int
) -> None:
    values = {pid: value for pid, (_, value) in keys.items()}
    groups = {pid: group for pid, (group, _) in keys.items()} if grouped else None
    standing = Standing(values, groups)

    def key(pid: int) -> tuple[int, float]:
        return (groups[pid] if groups else 0, values[pid])

    ahead = {pid: sum(key(other) < key(pid) for other in values) for pid in values}
    assert dict(standing) == {pid: count + 1 for pid, count in ahead.items()}
    best_first = sorted(values, key=lambda pid: (key(pid), pid))  # ties by participant id
    assert standing.ranked(limit) == [(ahead[pid] + 1, pid) for pid in best_first[:limit]]
    assert standing.ranked() == [(ahead[pid] + 1, pid) for pid in best_first]


# -- a class with one scored segment, and divisions on the class's board ---------------------


def test_one_scored_segment_is_the_class_total_in_its_own_unit() -> None:
    amrap = scored(
        ScoreKind.ROUNDS_REPS,
        {1: Tally(3, 4), 2: Tally(4, 0), 4: Tally(3, 10)},
        reps_per_round=30,
    )
    effort = scored(ScoreKind.EFFORT, {1: Tally(8)}, index=1)
    board = class_board([amrap, effort], PEOPLE, TEAMS)
    assert board.scope == "class" and board.unit == "rounds + reps"
    assert [(row.rank, row.id, row.shown) for row in board.people] == [
        (1, 2, "4 + 0"),
        (2, 4, "3 + 10"),
        (3, 1, "3 + 4"),
    ]
    # ... and a for-time one ranks less time first, as its segment does.
    timed = scored(ScoreKind.TIME, {1: Tally(300_000), 2: Tally(200_000)})
    board = class_board([timed], PEOPLE, TEAMS)
    assert [(row.id, row.shown) for row in board.people] == [(2, "3:20"), (1, "5:00")]


def test_the_class_board_ranks_rx_above_scaled_above_beginner_and_says_so() -> None:
    # Points per division: the beginner's 10 reps are the best of their division (100
    # points), the Rx's 40 are too; Ben scaled one segment: he ranks as Scaled.
    beginner, scaled, rx = Division.BEGINNER, Division.SCALED, Division.RX
    segments = [
        reps({1: 40, 2: 30, 4: 10}, {2: scaled, 4: beginner}, index=0),
        Scored(
            index=1,
            kind=ScoreKind.TIME,
            results={1: Tally(300_000), 2: Tally(250_000), 4: Tally(400_000)},
            divisions={4: beginner},
        ),
    ]
    assert class_divisions(segments) == {1: rx, 2: scaled, 4: beginner}
    board = class_board(segments, PEOPLE, TEAMS)
    assert [(row.rank, row.id, row.division) for row in board.people] == [
        (1, 1, "rx"),
        (2, 2, "scaled"),
        (3, 4, "beginner"),
    ]
    assert board.people[2].value > board.people[0].value  # more points, a lower division


def test_improvement_in_time_is_going_under_the_past_average() -> None:
    rows = improvement_board(
        {1: 180_000.0, 2: 240_000.0},
        {1: 200_000.0, 2: 200_000.0, 3: 1.0},
        PEOPLE,
        lower_is_better=True,
    )
    assert [(row.id, row.shown) for row in rows] == [(1, "+10%"), (2, "-20%")]
