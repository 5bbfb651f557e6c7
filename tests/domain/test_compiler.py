"""The compiler, block by block, and the cues it generates."""

from __future__ import annotations

from typing import Any

import pytest

from classroom.domain import cues as cue_texts
from classroom.domain.codec import from_plain, to_plain
from classroom.domain.compiler import compile_routine
from classroom.domain.errors import TimelineError
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
from classroom.domain.stations import exercise_for_team, station_for_team, station_label
from classroom.domain.targets import Target
from classroom.domain.timeline import (
    Cue,
    CueKind,
    Exercise,
    Level,
    ScoreKind,
    Segment,
    SegmentKind,
    Timeline,
)

BURPEES = Exercise(name="Burpees", modifications={Level.BEGINNER: "Step-back burpees"})
SQUATS = Exercise(name="Air squats", modifications={Level.ADVANCED: "Jump squats"})
ROW = Exercise(name="Row")
QUIET = CueSettings(countdown=False, halfway=False, next=False, last_round=False, lead_in=False)


def compile_blocks(*blocks: Block, auto_cues: CueSettings = QUIET, **fields: Any) -> Timeline:
    return compile_routine(Routine(title="Test", blocks=blocks, auto_cues=auto_cues, **fields))


def layout(timeline: Timeline) -> list[tuple[int, int, str, str]]:
    return [(s.start_ms, s.duration_ms, s.name, s.label) for s in timeline.segments]


def cues_of(timeline: Timeline, kind: CueKind) -> list[tuple[int, int, str]]:
    return [(c.at_ms, c.segment_index, c.text) for c in timeline.cues if c.kind is kind]


class TestBlocks:
    def test_single_segments_keep_their_kind_name_and_exercise(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WARMUP, duration_ms=300_000),
            Step(
                kind=SegmentKind.WORK,
                duration_ms=60_000,
                exercise=BURPEES,
                target=Target(reps=20),
                score=ScoreKind.REPS,
            ),
            Step(kind=SegmentKind.TRANSITION, duration_ms=15_000, name="Grab a kettlebell"),
            Step(kind=SegmentKind.COOLDOWN, duration_ms=120_000),
        )
        assert layout(timeline) == [
            (0, 300_000, "Warm-up", ""),
            (300_000, 60_000, "Burpees", ""),
            (360_000, 15_000, "Grab a kettlebell", ""),
            (375_000, 120_000, "Cool-down", ""),
        ]
        work = timeline.segments[1]
        assert work.exercise == BURPEES
        assert work.exercise.for_level(Level.BEGINNER) == "Step-back burpees"
        assert work.target == Target(reps=20)
        assert work.score_kind is ScoreKind.REPS
        assert [s.kind for s in timeline.segments] == [
            SegmentKind.WARMUP,
            SegmentKind.WORK,
            SegmentKind.TRANSITION,
            SegmentKind.COOLDOWN,
        ]
        assert timeline.total_ms == 495_000

    def test_intervals_alternate_work_and_rest_with_round_labels(self) -> None:
        timeline = compile_blocks(
            Intervals(
                rounds=3,
                work=Step(kind=SegmentKind.WORK, duration_ms=40_000),
                rest=Step(kind=SegmentKind.REST, duration_ms=20_000),
                exercises=(BURPEES, SQUATS),
            )
        )
        assert layout(timeline) == [
            (0, 40_000, "Burpees", "Round 1 of 3"),
            (40_000, 20_000, "Rest", "Round 1 of 3"),
            (60_000, 40_000, "Air squats", "Round 2 of 3"),
            (100_000, 20_000, "Rest", "Round 2 of 3"),
            (120_000, 40_000, "Burpees", "Round 3 of 3"),
            (160_000, 20_000, "Rest", "Round 3 of 3"),
        ]

    def test_tabata_defaults_to_eight_rounds_of_20_on_10_off(self) -> None:
        timeline = compile_blocks(Tabata(exercises=(BURPEES,)))
        assert len(timeline.segments) == 16
        assert timeline.total_ms == 4 * 60_000
        assert layout(timeline)[:2] == [
            (0, 20_000, "Burpees", "Round 1 of 8"),
            (20_000, 10_000, "Rest", "Round 1 of 8"),
        ]
        assert timeline.segments[0].score_kind is ScoreKind.REPS
        assert timeline.segments[-1].label == "Round 8 of 8"

    def test_emom_runs_every_minute_and_alternates_moves(self) -> None:
        timeline = compile_blocks(
            Emom(rounds=4, moves=(Move(exercise=BURPEES, reps=10), Move(exercise=SQUATS, reps=15)))
        )
        assert layout(timeline) == [
            (0, 60_000, "Burpees", "EMOM · Minute 1 of 4"),
            (60_000, 60_000, "Air squats", "EMOM · Minute 2 of 4"),
            (120_000, 60_000, "Burpees", "EMOM · Minute 3 of 4"),
            (180_000, 60_000, "Air squats", "EMOM · Minute 4 of 4"),
        ]
        assert timeline.segments[1].target == Target(reps=15)

    def test_emom_every_two_minutes_counts_rounds(self) -> None:
        timeline = compile_blocks(Emom(rounds=2, every_ms=120_000, moves=(Move(exercise=ROW),)))
        assert layout(timeline) == [
            (0, 120_000, "Row", "EMOM · Round 1 of 2"),
            (120_000, 120_000, "Row", "EMOM · Round 2 of 2"),
        ]

    def test_amrap_is_one_time_box_scored_in_rounds_and_reps(self) -> None:
        timeline = compile_blocks(
            Amrap(
                duration_ms=900_000,
                name="Cindy",
                moves=(Move(exercise=BURPEES, reps=5), Move(exercise=SQUATS, reps=15)),
            )
        )
        (segment,) = timeline.segments
        assert (segment.name, segment.label, segment.duration_ms) == (
            "Cindy",
            "AMRAP 15:00",
            900_000,
        )
        assert segment.score_kind is ScoreKind.ROUNDS_REPS
        assert not segment.open_ended
        assert segment.exercise is not None
        assert segment.exercise.name == "5 Burpees · 15 Air squats"
        assert segment.exercise.for_level(Level.BEGINNER) == "5 Step-back burpees · 15 Air squats"
        assert segment.exercise.for_level(Level.ADVANCED) == "5 Burpees · 15 Jump squats"

    def test_for_time_is_open_ended_and_lasts_its_cap(self) -> None:
        timeline = compile_blocks(
            ForTime(cap_ms=1_200_000, rounds=3, moves=(Move(exercise=ROW, reps=500),))
        )
        (segment,) = timeline.segments
        assert segment.open_ended
        assert segment.duration_ms == 1_200_000
        assert segment.score_kind is ScoreKind.TIME
        assert segment.label == "3 rounds for time · cap 20:00"

    def test_circuit_rotates_every_team_to_its_own_station(self) -> None:
        stations = (BURPEES, SQUATS, ROW)
        timeline = compile_blocks(
            Circuit(
                stations=stations, rounds=2, work_ms=45_000, rotate_ms=15_000, round_rest_ms=60_000
            )
        )
        assert layout(timeline)[:6] == [
            (0, 45_000, "Burpees", "Round 1 of 2 · Station 1 of 3"),
            (45_000, 15_000, "Rotate stations", "Round 1 of 2 · Station 1 of 3"),
            (60_000, 45_000, "Air squats", "Round 1 of 2 · Station 2 of 3"),
            (105_000, 15_000, "Rotate stations", "Round 1 of 2 · Station 2 of 3"),
            (120_000, 45_000, "Row", "Round 1 of 2 · Station 3 of 3"),
            (165_000, 60_000, "Rest", "Round 1 of 2"),
        ]
        work = [s for s in timeline.segments if s.stations]
        assert len(work) == 6
        second_slot = work[1]
        assert second_slot.stations == stations and second_slot.rotation == 1
        assert [station_for_team(second_slot, team) for team in range(4)] == [1, 2, 0, 1]
        assert exercise_for_team(second_slot, 2) == BURPEES
        assert station_label(second_slot, 1) == "Station 3 of 3: Row"
        assert station_for_team(timeline.segments[1], 0) is None
        assert timeline.total_ms == 2 * (3 * 45_000 + 2 * 15_000) + 60_000

    def test_every_team_visits_every_station_once_per_round(self) -> None:
        stations = (BURPEES, SQUATS, ROW)
        timeline = compile_blocks(Circuit(stations=stations, rounds=1, rotate_ms=0))
        for team in range(3):
            visited = [station_for_team(s, team) for s in timeline.segments]
            assert sorted(visited) == [0, 1, 2]  # type: ignore[type-var]

    def test_repeat_nests_blocks_with_rest_between_rounds(self) -> None:
        timeline = compile_blocks(
            Repeat(
                times=2,
                rest=Step(kind=SegmentKind.REST, duration_ms=60_000),
                blocks=(
                    Intervals(
                        rounds=2,
                        work=Step(kind=SegmentKind.WORK, duration_ms=30_000, exercise=BURPEES),
                    ),
                    Step(kind=SegmentKind.WORK, duration_ms=30_000, exercise=ROW),
                ),
            )
        )
        assert layout(timeline) == [
            (0, 30_000, "Burpees", "Set 1 of 2 · Round 1 of 2"),
            (30_000, 30_000, "Burpees", "Set 1 of 2 · Round 2 of 2"),
            (60_000, 30_000, "Row", "Set 1 of 2"),
            (90_000, 60_000, "Rest", "Set 1 of 2"),
            (150_000, 30_000, "Burpees", "Set 2 of 2 · Round 1 of 2"),
            (180_000, 30_000, "Burpees", "Set 2 of 2 · Round 2 of 2"),
            (210_000, 30_000, "Row", "Set 2 of 2"),
        ]


class TestGeneratedCues:
    def test_countdown_3_2_1_before_every_segment_change_but_not_the_end(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WORK, duration_ms=20_000),
            Step(kind=SegmentKind.REST, duration_ms=2_000),
            Step(kind=SegmentKind.WORK, duration_ms=10_000),
            auto_cues=CueSettings(halfway=False, next=False, last_round=False, lead_in=False),
        )
        assert cues_of(timeline, CueKind.COUNTDOWN) == [
            (17_000, 0, "3"),
            (18_000, 0, "2"),
            (19_000, 0, "1"),
            (21_000, 1, "1"),  # a 2 s rest only has room for "1"
        ]

    def test_halfway_in_segments_of_a_minute_or_more(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WORK, duration_ms=59_000),
            Step(kind=SegmentKind.WORK, duration_ms=60_000),
            Step(kind=SegmentKind.WORK, duration_ms=91_000),
            ForTime(cap_ms=600_000, moves=(Move(exercise=ROW),)),
            auto_cues=CueSettings(countdown=False, next=False, last_round=False, lead_in=False),
        )
        assert cues_of(timeline, CueKind.HALFWAY) == [
            (89_000, 1, cue_texts.HALFWAY_TEXT),
            (164_500, 2, cue_texts.HALFWAY_TEXT),
            (510_000, 3, cue_texts.HALFWAY_CAP_TEXT),
        ]

    def test_next_names_the_coming_move_during_rests(self) -> None:
        timeline = compile_blocks(
            Tabata(exercises=(BURPEES, SQUATS), rounds=2),
            auto_cues=CueSettings(countdown=False, halfway=False, last_round=False, lead_in=False),
        )
        assert cues_of(timeline, CueKind.NEXT) == [(20_000, 1, "Next: Air squats")]

    def test_next_in_a_circuit_sends_teams_to_their_next_station(self) -> None:
        timeline = compile_blocks(
            Circuit(stations=(BURPEES, ROW), rotate_ms=10_000),
            auto_cues=CueSettings(countdown=False, halfway=False, last_round=False, lead_in=False),
        )
        assert cues_of(timeline, CueKind.NEXT) == [(45_000, 1, cue_texts.NEXT_STATION_TEXT)]

    def test_last_round_at_the_start_of_every_block_s_last_round(self) -> None:
        timeline = compile_blocks(
            Intervals(
                rounds=3,
                work=Step(kind=SegmentKind.WORK, duration_ms=10_000),
                rest=Step(kind=SegmentKind.REST, duration_ms=5_000),
            ),
            Intervals(rounds=1, work=Step(kind=SegmentKind.WORK, duration_ms=10_000)),
            Emom(rounds=2, moves=(Move(exercise=ROW),)),
            auto_cues=CueSettings(countdown=False, halfway=False, next=False, lead_in=False),
        )
        assert cues_of(timeline, CueKind.LAST_ROUND) == [
            (30_000, 4, cue_texts.LAST_ROUND_TEXT),
            (115_000, 8, cue_texts.LAST_ROUND_TEXT),
        ]

    def test_lead_in_counts_down_before_the_first_segment(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WARMUP, duration_ms=60_000, name="Easy jog"),
            auto_cues=CueSettings(countdown=False, halfway=False),
            lead_in_ms=10_000,
        )
        assert timeline.lead_in_ms == 10_000
        assert [(c.at_ms, c.segment_index, c.kind, c.text) for c in timeline.lead_in_cues] == [
            (0, 0, CueKind.LEAD_IN, "Get ready: Easy jog"),
            (7_000, 0, CueKind.LEAD_IN, "3"),
            (8_000, 0, CueKind.LEAD_IN, "2"),
            (9_000, 0, CueKind.LEAD_IN, "1"),
        ]
        assert not any(c.kind is CueKind.LEAD_IN for c in timeline.cues)

    @pytest.mark.parametrize(
        "lead_in_ms, auto_cues", [(0, CueSettings()), (10_000, CueSettings(lead_in=False))]
    )
    def test_no_lead_in_when_switched_off_or_zero(
        self, lead_in_ms: int, auto_cues: CueSettings
    ) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WORK, duration_ms=5_000),
            auto_cues=auto_cues,
            lead_in_ms=lead_in_ms,
        )
        assert timeline.lead_in_ms == 0
        assert timeline.lead_in_cues == ()

    def test_all_generated_cues_can_be_switched_off(self) -> None:
        timeline = compile_blocks(
            Tabata(exercises=(BURPEES,)), Amrap(duration_ms=600_000, moves=(Move(exercise=ROW),))
        )
        assert timeline.cues == ()
        assert timeline.lead_in_cues == ()


class TestAuthoredCues:
    def test_segment_cues_at_an_offset_and_before_the_end(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WARMUP, duration_ms=30_000),
            Step(
                kind=SegmentKind.WORK,
                duration_ms=60_000,
                exercise=BURPEES,
                cues=(
                    AuthoredCue(text="Switch sides", at_ms=30_000),
                    AuthoredCue(text="Last push", before_end_ms=10_000),
                ),
            ),
        )
        assert cues_of(timeline, CueKind.AUTHORED) == [
            (60_000, 1, "Switch sides"),
            (80_000, 1, "Last push"),
        ]

    def test_cues_inside_repeated_work_fire_every_round(self) -> None:
        timeline = compile_blocks(
            Intervals(
                rounds=2,
                work=Step(
                    kind=SegmentKind.WORK,
                    duration_ms=20_000,
                    cues=(AuthoredCue(text="Breathe", at_ms=5_000),),
                ),
                rest=Step(kind=SegmentKind.REST, duration_ms=10_000),
            )
        )
        assert cues_of(timeline, CueKind.AUTHORED) == [
            (5_000, 0, "Breathe"),
            (35_000, 2, "Breathe"),
        ]

    def test_block_and_routine_cues_land_in_the_segment_they_fall_in(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WARMUP, duration_ms=60_000),
            Intervals(
                rounds=3,
                work=Step(kind=SegmentKind.WORK, duration_ms=20_000),
                rest=Step(kind=SegmentKind.REST, duration_ms=10_000),
                cues=(AuthoredCue(text="Halfway through the block", at_ms=45_000),),
            ),
            cues=(
                AuthoredCue(text="Two minutes in", at_ms=120_000),
                AuthoredCue(text="Nearly done", before_end_ms=5_000),
            ),
        )
        assert cues_of(timeline, CueKind.AUTHORED) == [
            (105_000, 3, "Halfway through the block"),
            (120_000, 5, "Two minutes in"),
            (145_000, 6, "Nearly done"),
        ]

    def test_cues_of_one_instant_keep_a_stable_order(self) -> None:
        routine = Routine(
            title="T",
            blocks=(
                Step(
                    kind=SegmentKind.WORK,
                    duration_ms=60_000,
                    cues=(AuthoredCue(text="Go", at_ms=30_000),),
                ),
                Step(kind=SegmentKind.REST, duration_ms=60_000),
            ),
        )
        first = compile_routine(routine)
        assert [c.text for c in first.cues if c.at_ms == 30_000] == ["Halfway", "Go"]
        assert compile_routine(routine) == first


class TestCuesThatCountBackFromTheEnd:
    def test_countdown_cues_move_with_the_segment_end(self) -> None:
        timeline = compile_blocks(
            Step(kind=SegmentKind.WORK, duration_ms=60_000),
            Step(kind=SegmentKind.REST, duration_ms=10_000),
            Step(kind=SegmentKind.WORK, duration_ms=10_000),
            auto_cues=CueSettings(lead_in=False),
        )
        assert {(c.kind, c.from_end) for c in timeline.cues} == {
            (CueKind.COUNTDOWN, True),
            (CueKind.HALFWAY, False),
            (CueKind.NEXT, False),
        }

    def test_authored_before_end_cues_count_back_only_from_their_own_segment(self) -> None:
        timeline = compile_blocks(
            Step(
                kind=SegmentKind.WORK,
                duration_ms=30_000,
                cues=(
                    AuthoredCue(text="Last push", before_end_ms=10_000),
                    AuthoredCue(text="Form check", at_ms=5_000),
                ),
            ),
            Intervals(
                rounds=2,
                work=Step(kind=SegmentKind.WORK, duration_ms=20_000),
                rest=Step(kind=SegmentKind.REST, duration_ms=10_000),
                cues=(
                    AuthoredCue(text="Block ends soon", before_end_ms=5_000),
                    AuthoredCue(text="Mid-block", before_end_ms=45_000),
                ),
            ),
        )
        authored = [
            (c.text, c.segment_index, c.from_end)
            for c in timeline.cues
            if c.kind is CueKind.AUTHORED
        ]
        assert authored == [
            ("Form check", 0, False),
            ("Last push", 0, True),
            ("Mid-block", 1, False),
            ("Block ends soon", 4, True),
        ]


class TestTimelineChecksItsCues:
    """A timeline refuses cues that fall outside their segment or the lead-in."""

    def segment(self) -> Segment:
        return Segment(index=0, name="Work", kind=SegmentKind.WORK, start_ms=0, duration_ms=10_000)

    @pytest.mark.parametrize("at_ms", [-1, 10_000])
    def test_a_cue_outside_its_segment_is_refused(self, at_ms: int) -> None:
        cue = Cue(at_ms=at_ms, segment_index=0, kind=CueKind.AUTHORED, text="Go")
        with pytest.raises(TimelineError, match="outside its segment"):
            Timeline(title="T", segments=(self.segment(),), cues=(cue,))

    @pytest.mark.parametrize("at_ms", [-1, 5_000])
    def test_a_lead_in_cue_outside_the_lead_in_is_refused(self, at_ms: int) -> None:
        cue = Cue(at_ms=at_ms, segment_index=0, kind=CueKind.LEAD_IN, text="3")
        with pytest.raises(TimelineError, match="outside the lead-in"):
            Timeline(title="T", segments=(self.segment(),), lead_in_ms=5_000, lead_in_cues=(cue,))

    def test_cues_survive_the_codec(self) -> None:
        timeline = compile_routine(
            Routine(
                title="T",
                blocks=(Step(kind=SegmentKind.WORK, duration_ms=90_000),),
            )
        )
        assert timeline.cues and timeline.lead_in_cues
        assert from_plain(Timeline, to_plain(timeline)) == timeline
        assert isinstance(from_plain(Timeline, to_plain(timeline)).cues[0], Cue)
