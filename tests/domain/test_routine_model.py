"""Routines check themselves when built: limits, durations, cues."""

from __future__ import annotations

import pytest

from classroom.domain import limits
from classroom.domain.errors import RoutineError
from classroom.domain.routine import (
    AuthoredCue,
    Circuit,
    Intervals,
    Repeat,
    Routine,
    Step,
    Tabata,
)
from classroom.domain.targets import Target
from classroom.domain.timeline import Exercise, SegmentKind

WORK = Step(kind=SegmentKind.WORK, duration_ms=30_000)


@pytest.mark.parametrize("duration_ms", [0, -1000, 1500, limits.MAX_SEGMENT_MS + 1000])
def test_a_segment_needs_a_positive_whole_number_of_seconds(duration_ms: int) -> None:
    with pytest.raises(RoutineError, match="duration"):
        Step(kind=SegmentKind.WORK, duration_ms=duration_ms)


def test_100_000_rounds_are_refused_without_building_them() -> None:
    with pytest.raises(RoutineError, match="rounds must be between 1 and 1,000, not 100,000"):
        Intervals(rounds=100_000, work=WORK)


def test_too_many_segments_are_refused_by_arithmetic() -> None:
    block = Intervals(rounds=1_000, work=WORK, rest=Step(kind=SegmentKind.REST, duration_ms=1000))
    with pytest.raises(RoutineError, match="segments"):
        Repeat(times=3, blocks=(block,))


def test_a_routine_longer_than_six_hours_is_refused() -> None:
    long = Step(kind=SegmentKind.WORK, duration_ms=limits.MAX_SEGMENT_MS)
    with pytest.raises(RoutineError, match="the longest a routine can last is 6:00:00"):
        Routine(title="Marathon", blocks=(long, long, WORK))


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    block: Repeat = Repeat(times=1, blocks=(WORK,))
    for _ in range(limits.MAX_NESTING - 2):
        block = Repeat(times=1, blocks=(block,))
    with pytest.raises(RoutineError, match="nested"):
        Repeat(times=1, blocks=(block,))


def test_an_exercise_needs_a_name() -> None:
    with pytest.raises(Exception, match="name"):
        Exercise(name="  ")


def test_a_cue_must_fall_inside_its_segment() -> None:
    with pytest.raises(RoutineError, match="falls outside the segment"):
        Step(
            kind=SegmentKind.WORK,
            duration_ms=30_000,
            cues=(AuthoredCue(text="Late", at_ms=30_000),),
        )
    with pytest.raises(RoutineError, match="falls outside the segment"):
        Step(
            kind=SegmentKind.WORK,
            duration_ms=30_000,
            cues=(AuthoredCue(text="Early", before_end_ms=40_000),),
        )


def test_a_cue_needs_exactly_one_time() -> None:
    with pytest.raises(RoutineError, match="either"):
        AuthoredCue(text="Go")
    with pytest.raises(RoutineError, match="either"):
        AuthoredCue(text="Go", at_ms=0, before_end_ms=1000)


def test_a_tabata_needs_an_exercise_and_a_circuit_stations() -> None:
    with pytest.raises(RoutineError, match="exercise"):
        Tabata(exercises=())
    with pytest.raises(RoutineError, match="stations"):
        Circuit(stations=())


def test_targets_are_checked() -> None:
    assert Target(rpe=8, ftp_percent=90.0, cadence=95).describe() == "RPE 8 · 90% FTP · 95 rpm"
    with pytest.raises(RoutineError, match="RPE"):
        Target(rpe=11)
    with pytest.raises(RoutineError, match="zone"):
        Target(heart_rate_zone=0)


def test_counts_and_totals_are_known_before_compiling() -> None:
    block = Circuit(
        stations=(Exercise(name="A"), Exercise(name="B")),
        rounds=3,
        work_ms=40_000,
        rotate_ms=20_000,
        round_rest_ms=60_000,
    )
    routine = Routine(title="T", blocks=(block, WORK))
    assert routine.segment_count() == 3 * 3 + 2 + 1
    assert routine.total_ms() == 3 * 100_000 + 2 * 60_000 + 30_000
