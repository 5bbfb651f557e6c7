"""Live boards: rank moves count from the boards last sent, per segment and for the class."""

from __future__ import annotations

from classroom.db.scores import Roster
from classroom.domain.boards import Person, Row
from classroom.domain.scorebook import ScoreBook
from classroom.domain.scoring import CheckedScore, ScoreInput
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind, Segment, SegmentKind, Timeline
from classroom.live.scoring import live_boards

TIMELINE = Timeline(
    title="Two rounds",
    segments=tuple(
        Segment(
            index=i,
            name=f"Round {i + 1}",
            kind=SegmentKind.WORK,
            start_ms=i * 60_000,
            duration_ms=60_000,
            score_kind=ScoreKind.REPS,
        )
        for i in range(2)
    ),
)
MODE = (TeamMode.TOTAL, 3)
ROSTER = Roster(
    people={pid: Person(id=pid, name=name, number=pid) for pid, name in ((1, "Ana"), (2, "Bo"))},
    teams=(),
)


def add(book: ScoreBook, pid: int, client_id: str, segment: int, reps: int) -> None:
    score = ScoreInput(
        participant_id=pid,
        client_id=client_id,
        segment_index=segment,
        kind=ScoreKind.REPS,
        value=reps,
    )
    checked = CheckedScore(
        kind=ScoreKind.REPS, value=reps, rounds=0, elapsed_ms=60_000, max_reps_per_second=3.0
    )
    book.take(score, checked)


def ranks(rows: tuple[Row, ...]) -> dict[str, tuple[int, int]]:
    return {row.name: (row.rank, row.movement) for row in rows}


def test_moves_on_the_segment_board_count_from_the_last_board_of_that_segment() -> None:
    book = ScoreBook()
    add(book, 1, "a1", 0, 10)
    add(book, 2, "b1", 0, 5)
    first = live_boards(book, TIMELINE, ROSTER, 0, MODE, public=True)
    add(book, 2, "b2", 0, 10)  # Bo passes Ana
    second = live_boards(book, TIMELINE, ROSTER, 0, MODE, public=True, previous=first)
    assert second[0] is not None and second[1] is not None
    assert ranks(second[0].people) == {"Bo": (1, 1), "Ana": (2, -1)}
    assert ranks(second[1].people) == {"Bo": (1, 1), "Ana": (2, -1)}


def test_a_new_segment_board_starts_without_moves() -> None:
    book = ScoreBook()
    add(book, 1, "a1", 0, 10)
    add(book, 2, "b1", 0, 5)
    first = live_boards(book, TIMELINE, ROSTER, 0, MODE, public=True)
    add(book, 2, "b2", 1, 1)
    second = live_boards(book, TIMELINE, ROSTER, 1, MODE, public=True, previous=first)
    assert second[0] is not None
    assert ranks(second[0].people) == {"Bo": (1, 0)}


def test_a_limited_board_ranks_everyone_and_counts_moves_from_past_the_limit() -> None:
    people = {pid: Person(id=pid, name=f"P{pid}", number=pid) for pid in range(1, 31)}
    roster = Roster(people=people, teams=())
    book = ScoreBook()
    for pid in people:
        add(book, pid, f"c{pid}", 0, pid)  # P30 leads, P1 is last
    first = live_boards(book, TIMELINE, roster, 0, MODE, public=True, limit=10)
    assert first[1] is not None
    assert len(first[1].people) == 10 and len(first[1].ranks) == 30
    assert first[1].ranks[1] == 30
    add(book, 1, "big", 0, 100)  # P1 jumps from 30th to 1st
    second = live_boards(book, TIMELINE, roster, 0, MODE, public=True, previous=first, limit=10)
    assert second[0] is not None and second[1] is not None
    assert ranks(second[1].people)["P1"] == (1, 29)
    assert ranks(second[0].people)["P1"] == (1, 29)
