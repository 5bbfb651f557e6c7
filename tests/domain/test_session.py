"""The class state machine, stepped on a fake clock (times are epoch milliseconds)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.codec import from_plain, to_plain
from classroom.domain.errors import CommandRejected
from classroom.domain.events import CueFired, PhaseChanged, SegmentStarted, ShoutOut
from classroom.domain.session import ClassState, Phase
from classroom.domain.timeline import Cue, CueKind, Exercise, Level, Segment, SegmentKind, Timeline

T0 = 1_700_000_000_000


def timeline(lead_in_ms: int = 3000) -> Timeline:
    squats = Exercise(name="Squats", modifications={Level.BEGINNER: "Chair squats"})
    return Timeline(
        title="Test",
        lead_in_ms=lead_in_ms,
        segments=(
            Segment(
                index=0,
                name="Squats",
                kind=SegmentKind.WORK,
                start_ms=0,
                duration_ms=20_000,
                exercise=squats,
            ),
            Segment(
                index=1, name="Rest", kind=SegmentKind.REST, start_ms=20_000, duration_ms=10_000
            ),
            Segment(
                index=2, name="Lunges", kind=SegmentKind.WORK, start_ms=30_000, duration_ms=20_000
            ),
        ),
        cues=(
            Cue(at_ms=10_000, segment_index=0, kind=CueKind.HALFWAY, text="halfway"),
            Cue(at_ms=20_000, segment_index=1, kind=CueKind.NEXT, text="next: lunges"),
            Cue(at_ms=47_000, segment_index=2, kind=CueKind.COUNTDOWN, text="3"),
        ),
    )


def started(tl: Timeline) -> ClassState:
    return session.handle(tl, ClassState(), cmd.Start(), T0).state


def test_start_counts_down_the_lead_in_then_runs_the_first_segment() -> None:
    tl = timeline()
    outcome = session.handle(tl, ClassState(), cmd.Start(), T0)
    assert outcome.state == ClassState(phase=Phase.COUNTDOWN, anchor_ms=T0 + 3000)
    assert outcome.events == [PhaseChanged(at_ms=T0, phase="countdown", previous="lobby")]
    assert session.next_deadline(tl, outcome.state) == T0 + 3000

    assert session.tick(tl, outcome.state, T0 + 2999).events == []
    running = session.tick(tl, outcome.state, T0 + 3000)
    assert running.state.phase is Phase.RUNNING and running.state.segment_index == 0
    assert running.events == [
        PhaseChanged(at_ms=T0 + 3000, phase="running", previous="countdown"),
        SegmentStarted(at_ms=T0 + 3000, index=0, ends_at_ms=T0 + 23_000),
    ]


def test_without_a_lead_in_the_first_segment_starts_at_once() -> None:
    tl = timeline(lead_in_ms=0)
    outcome = session.handle(tl, ClassState(), cmd.Start(), T0)
    assert outcome.state.phase is Phase.RUNNING
    assert outcome.events[-1] == SegmentStarted(at_ms=T0, index=0, ends_at_ms=T0 + 20_000)


def test_cues_and_segment_changes_carry_their_scheduled_instant_even_when_ticked_late() -> None:
    tl = timeline(lead_in_ms=0)
    state = started(tl)
    late = session.tick(tl, state, T0 + 25_000)
    assert late.events == [
        CueFired(at_ms=T0 + 10_000, index=0, segment_index=0, kind=CueKind.HALFWAY, text="halfway"),
        SegmentStarted(at_ms=T0 + 20_000, index=1, ends_at_ms=T0 + 30_000),
        CueFired(
            at_ms=T0 + 20_000, index=1, segment_index=1, kind=CueKind.NEXT, text="next: lunges"
        ),
    ]
    assert late.state.segment_index == 1 and late.state.next_cue == 2
    assert session.next_deadline(tl, late.state) == T0 + 30_000


def test_the_class_finishes_when_the_last_segment_ends() -> None:
    tl = timeline(lead_in_ms=0)
    end = session.tick(tl, started(tl), T0 + 60_000)
    assert end.state.phase is Phase.FINISHED and end.state.ended_at_ms == T0 + 50_000
    assert end.events[-1] == PhaseChanged(at_ms=T0 + 50_000, phase="finished", previous="running")
    assert session.next_deadline(tl, end.state) is None


def test_pause_freezes_the_remaining_time_and_resume_continues_from_it() -> None:
    tl = timeline(lead_in_ms=0)
    paused = session.handle(tl, started(tl), cmd.Pause(), T0 + 5_000).state
    assert paused.phase is Phase.PAUSED and paused.paused_offset_ms == 5_000
    assert session.next_deadline(tl, paused) is None
    assert session.tick(tl, paused, T0 + 600_000).events == []

    resumed = session.handle(tl, paused, cmd.Resume(), T0 + 65_000)
    assert resumed.state.anchor_ms == T0 + 60_000
    assert resumed.events[-1] == SegmentStarted(at_ms=T0 + 65_000, index=0, ends_at_ms=T0 + 80_000)
    halfway = session.tick(tl, resumed.state, T0 + 70_000).events
    assert [e.at_ms for e in halfway] == [T0 + 70_000]


@pytest.mark.parametrize(
    ("state", "command", "message"),
    [
        (ClassState(), cmd.Pause(), "can't pause a class in the lobby"),
        (ClassState(), cmd.Resume(), "can't resume a class in the lobby"),
        (ClassState(phase=Phase.FINISHED), cmd.Start(), "can't start a class that has finished"),
        (
            ClassState(phase=Phase.CANCELLED),
            cmd.Shout(text="hi"),
            "can't shout a class that was cancelled",
        ),
    ],
)
def test_an_illegal_command_is_rejected_naming_the_phase(
    state: ClassState, command: cmd.Command, message: str
) -> None:
    with pytest.raises(CommandRejected, match=message):
        session.handle(timeline(), state, command, T0)


def test_a_shout_out_changes_nothing_but_is_an_event() -> None:
    tl = timeline(lead_in_ms=0)
    state = started(tl)
    outcome = session.handle(tl, state, cmd.Shout(text="  Blue team, push!  "), T0 + 1000)
    assert outcome.state == state
    assert outcome.events == [ShoutOut(at_ms=T0 + 1000, text="Blue team, push!")]


def test_every_command_in_the_table_names_a_real_phase_pair() -> None:
    phases = {phase for phase, _ in session.TRANSITIONS}
    assert Phase.FINISHED not in phases and Phase.CANCELLED not in phases  # terminal


def test_state_and_timeline_survive_the_json_codec() -> None:
    tl = timeline()
    state = session.tick(tl, started(tl), T0 + 13_000).state
    assert from_plain(ClassState, to_plain(state)) == state
    assert from_plain(Timeline, to_plain(tl)) == tl


@given(st.lists(st.integers(min_value=0, max_value=60_000), min_size=1, max_size=30))
def test_ticking_in_any_steps_fires_each_cue_once_in_order_never_early(steps: list[int]) -> None:
    tl = timeline(lead_in_ms=0)
    state = started(tl)
    fired: list[CueFired] = []
    now = T0
    for step in sorted(steps):
        now = T0 + step
        outcome = session.tick(tl, state, now)
        state = outcome.state
        for event in outcome.events:
            assert event.at_ms <= now
            if isinstance(event, CueFired):
                fired.append(event)
    due = [c for c in tl.cues if T0 + c.at_ms <= now]
    assert [e.index for e in fired] == list(range(len(due)))
    assert [e.at_ms for e in fired] == [T0 + c.at_ms for c in due]


def test_lead_in_cues_fire_during_the_countdown_at_their_instants() -> None:
    base = timeline(lead_in_ms=3000)
    tl = Timeline(
        title=base.title,
        segments=base.segments,
        cues=base.cues,
        lead_in_ms=3000,
        lead_in_cues=tuple(
            Cue(at_ms=at, segment_index=0, kind=CueKind.LEAD_IN, text=text)
            for at, text in ((0, "3"), (1000, "2"), (2000, "1"))
        ),
    )
    counting = session.handle(tl, ClassState(), cmd.Start(), T0)
    assert [e.text for e in counting.events if isinstance(e, CueFired)] == ["3"]
    assert session.next_deadline(tl, counting.state) == T0 + 1000
    later = session.tick(tl, counting.state, T0 + 2500)
    assert [(e.at_ms, e.text) for e in later.events] == [(T0 + 1000, "2"), (T0 + 2000, "1")]
    assert session.next_deadline(tl, later.state) == T0 + 3000
    running = session.tick(tl, later.state, T0 + 3000)
    assert running.state.phase is Phase.RUNNING
    assert not any(isinstance(e, CueFired) for e in running.events)
