"""Properties every compiled timeline has, explored with Hypothesis.

- segments tile the timeline: each starts where the previous ended, from 0;
- offsets strictly increase, and the total is the sum of the durations;
- every cue falls inside its segment, and cues are in time order;
- the same routine always compiles the same way;
- a routine survives a round trip through its text (YAML and JSON).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from classroom.domain.compiler import compile_routine
from classroom.domain.errors import RoutineError
from classroom.domain.formats.text import dump_json, dump_yaml, parse_routine
from classroom.domain.routine import (
    Amrap,
    AuthoredCue,
    Block,
    Circuit,
    CueSettings,
    Emom,
    ForTime,
    Intervals,
    Move,
    Repeat,
    Routine,
    Step,
    Tabata,
)
from classroom.domain.targets import Target
from classroom.domain.timeline import Exercise, Level, ScoreKind, SegmentKind

names = st.from_regex(r"[A-Z][a-z]{1,8}( [a-z0-9]{1,6}){0,2}", fullmatch=True)
seconds = st.integers(min_value=1, max_value=150).map(lambda s: s * 1000)
short = st.integers(min_value=1, max_value=90).map(lambda s: s * 1000)

exercises = st.builds(
    Exercise,
    name=names,
    modifications=st.dictionaries(st.sampled_from(list(Level)), names, max_size=3),
    equipment=st.lists(names, max_size=2, unique=True).map(tuple),
    notes=st.one_of(st.just(""), names),
)
targets = st.builds(
    Target,
    reps=st.none() | st.integers(1, 50),
    rpe=st.none() | st.integers(1, 10),
    heart_rate_zone=st.none() | st.integers(1, 5),
    ftp_percent=st.none() | st.integers(40, 150).map(float),
    cadence=st.none() | st.integers(60, 120),
)
moves = st.builds(Move, exercise=exercises, reps=st.none() | st.integers(1, 30))
scores = st.sampled_from(list(ScoreKind))


@st.composite
def steps(draw: st.DrawFn, kind: SegmentKind | None = None) -> Step:
    duration = draw(seconds)
    cue_offsets = st.integers(0, duration // 1000 - 1).map(lambda s: s * 1000)
    cues = draw(
        st.lists(
            st.one_of(
                st.builds(AuthoredCue, text=names, at_ms=cue_offsets),
                st.builds(
                    AuthoredCue, text=names, before_end_ms=cue_offsets.map(lambda o: o or 1000)
                ),
            ),
            max_size=2,
        )
    )
    cues = [c for c in cues if c.before_end_ms is None or c.before_end_ms <= duration]
    return Step(
        kind=kind or draw(st.sampled_from(list(SegmentKind))),
        duration_ms=duration,
        name=draw(st.just("") | names),
        exercise=draw(st.none() | exercises),
        target=draw(st.none() | targets),
        score=draw(scores),
        cues=tuple(cues),
    )


def leaf_blocks() -> st.SearchStrategy[Block]:
    return st.one_of(
        steps(),
        st.builds(
            Intervals,
            rounds=st.integers(1, 6),
            work=steps(SegmentKind.WORK),
            rest=st.none() | steps(SegmentKind.REST),
            exercises=st.lists(exercises, max_size=3).map(tuple),
        ),
        st.builds(
            Tabata,
            exercises=st.lists(exercises, min_size=1, max_size=2).map(tuple),
            rounds=st.integers(1, 8),
            work_ms=short,
            rest_ms=short,
            score=scores,
        ),
        st.builds(
            Emom,
            rounds=st.integers(1, 8),
            moves=st.lists(moves, min_size=1, max_size=3).map(tuple),
            every_ms=st.sampled_from([30_000, 60_000, 120_000]),
            score=scores,
        ),
        st.builds(
            Amrap,
            duration_ms=seconds,
            moves=st.lists(moves, min_size=1, max_size=3).map(tuple),
            name=st.just("") | names,
        ),
        st.builds(
            ForTime,
            cap_ms=seconds,
            moves=st.lists(moves, min_size=1, max_size=3).map(tuple),
            rounds=st.integers(1, 5),
            name=st.just("") | names,
        ),
        st.builds(
            Circuit,
            stations=st.lists(exercises, min_size=1, max_size=5).map(tuple),
            rounds=st.integers(1, 3),
            work_ms=short,
            rotate_ms=st.just(0) | short,
            round_rest_ms=st.just(0) | short,
            score=scores,
        ),
    )


@st.composite
def repeats(draw: st.DrawFn, children: st.SearchStrategy[Block]) -> Repeat:
    try:
        return Repeat(
            times=draw(st.integers(1, 3)),
            blocks=tuple(draw(st.lists(children, min_size=1, max_size=3))),
            rest=draw(st.none() | steps(SegmentKind.REST)),
        )
    except RoutineError:  # over a limit: not an interesting routine
        reject()


@st.composite
def valid_routines(draw: st.DrawFn, /, **strategies: st.SearchStrategy[Any]) -> Routine:
    try:
        return Routine(**{name: draw(strategy) for name, strategy in strategies.items()})
    except RoutineError:
        reject()


blocks = st.recursive(leaf_blocks(), repeats, max_leaves=5)

routines = valid_routines(
    title=names,
    blocks=st.lists(blocks.filter(lambda b: b.total_ms() < 3_600_000), min_size=1, max_size=3).map(
        tuple
    ),
    description=st.just("") | names,
    author=st.just("") | names,
    lead_in_ms=st.integers(0, 60).map(lambda s: s * 1000),
    auto_cues=st.builds(
        CueSettings,
        countdown=st.booleans(),
        halfway=st.booleans(),
        next=st.booleans(),
        last_round=st.booleans(),
        lead_in=st.booleans(),
    ),
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(routines)
def test_segments_tile_the_timeline_without_gaps_or_overlaps(routine: Routine) -> None:
    timeline = compile_routine(routine)
    expected_start = 0
    for index, segment in enumerate(timeline.segments):
        assert segment.index == index
        assert segment.start_ms == expected_start
        assert segment.duration_ms > 0
        expected_start = segment.end_ms
    assert timeline.total_ms == expected_start


@SETTINGS
@given(routines)
def test_offsets_strictly_increase_and_the_total_is_the_sum(routine: Routine) -> None:
    timeline = compile_routine(routine)
    starts = [segment.start_ms for segment in timeline.segments]
    assert all(a < b for a, b in pairwise(starts))
    assert timeline.total_ms == sum(s.duration_ms for s in timeline.segments)
    assert timeline.total_ms == routine.total_ms()
    assert len(timeline.segments) == routine.segment_count()


@SETTINGS
@given(routines)
def test_every_cue_falls_inside_its_segment(routine: Routine) -> None:
    timeline = compile_routine(routine)
    for cue in timeline.cues:
        segment = timeline.segments[cue.segment_index]
        assert segment.start_ms <= cue.at_ms < segment.end_ms
    assert [c.at_ms for c in timeline.cues] == sorted(c.at_ms for c in timeline.cues)
    for cue in timeline.lead_in_cues:
        assert 0 <= cue.at_ms < timeline.lead_in_ms


@SETTINGS
@given(routines)
def test_the_same_routine_always_compiles_the_same_way(routine: Routine) -> None:
    assert compile_routine(routine) == compile_routine(routine)


@SETTINGS
@given(routines)
def test_a_routine_survives_a_round_trip_through_yaml_and_json(routine: Routine) -> None:
    yaml_text = dump_yaml(routine)
    assert parse_routine(yaml_text) == routine
    assert dump_yaml(parse_routine(yaml_text)) == yaml_text
    assert parse_routine(dump_json(routine), "json") == routine
