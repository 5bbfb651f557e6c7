"""The class state machine, stepped command by command on a fake clock.

Times are epoch milliseconds; ``T0`` is when the class opens.
"""

from __future__ import annotations

import pytest

from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.codec import from_plain, to_plain
from classroom.domain.errors import CommandRejected, ValidationError
from classroom.domain.events import (
    CueFired,
    ParticipantFinished,
    PhaseChanged,
    SegmentStarted,
    ShoutOut,
)
from classroom.domain.session import ClassPolicy, ClassState, Phase
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

T0 = 1_700_000_000_000


def timeline(lead_in_ms: int = 3000, lead_in_cues: tuple[Cue, ...] = ()) -> Timeline:
    """Squats 20 s, rest 10 s, lunges 20 s; a halfway, a "next" and a 3-2-1."""
    squats = Exercise(name="Squats", modifications={Level.BEGINNER: "Chair squats"})
    return Timeline(
        title="Test",
        lead_in_ms=lead_in_ms,
        lead_in_cues=lead_in_cues,
        segments=(
            Segment(
                index=0,
                name="Squats",
                kind=SegmentKind.WORK,
                start_ms=0,
                duration_ms=20_000,
                exercise=squats,
                score_kind=ScoreKind.REPS,
            ),
            Segment(
                index=1, name="Rest", kind=SegmentKind.REST, start_ms=20_000, duration_ms=10_000
            ),
            Segment(
                index=2,
                name="Lunges",
                kind=SegmentKind.WORK,
                start_ms=30_000,
                duration_ms=20_000,
                score_kind=ScoreKind.ROUNDS_REPS,
            ),
        ),
        cues=(
            Cue(at_ms=10_000, segment_index=0, kind=CueKind.HALFWAY, text="halfway"),
            Cue(at_ms=17_000, segment_index=0, kind=CueKind.COUNTDOWN, text="3", from_end=True),
            Cue(at_ms=20_000, segment_index=1, kind=CueKind.NEXT, text="next: lunges"),
            Cue(at_ms=47_000, segment_index=2, kind=CueKind.COUNTDOWN, text="3", from_end=True),
        ),
    )


def opened() -> ClassState:
    return session.open_class(T0)


def running(tl: Timeline, at: int = T0) -> ClassState:
    """A class started at ``at`` without a lead-in (use a timeline with lead_in_ms=0)."""
    state = session.handle(tl, opened(), cmd.Start(), at).state
    assert state.phase is Phase.RUNNING
    return state


def texts(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, CueFired)]


# -- starting --------------------------------------------------------------------------


def test_start_counts_down_the_lead_in_then_runs_the_first_segment() -> None:
    tl = timeline()
    outcome = session.handle(tl, opened(), cmd.Start(), T0)
    assert outcome.state.phase is Phase.COUNTDOWN
    assert outcome.state.segment_started_at_ms == T0 + 3000
    assert outcome.events == [
        PhaseChanged(at_ms=T0, phase="countdown", previous="lobby", starts_at_ms=T0 + 3000)
    ]
    assert session.next_deadline(tl, outcome.state) == T0 + 3000

    assert session.tick(tl, outcome.state, T0 + 2999).events == []
    later = session.tick(tl, outcome.state, T0 + 3000)
    assert later.state.phase is Phase.RUNNING and later.state.segment_index == 0
    assert later.events == [
        PhaseChanged(at_ms=T0 + 3000, phase="running", previous="countdown", reason="time"),
        SegmentStarted(at_ms=T0 + 3000, index=0, ends_at_ms=T0 + 23_000, remaining_ms=20_000),
    ]


def test_without_a_lead_in_the_first_segment_starts_at_once() -> None:
    tl = timeline(lead_in_ms=0)
    outcome = session.handle(tl, opened(), cmd.Start(), T0)
    assert outcome.state.phase is Phase.RUNNING
    assert outcome.events[-1] == SegmentStarted(
        at_ms=T0, index=0, ends_at_ms=T0 + 20_000, remaining_ms=20_000
    )


def test_lead_in_cues_fire_during_the_countdown_at_their_instants() -> None:
    lead_in = tuple(
        Cue(at_ms=at, segment_index=0, kind=CueKind.LEAD_IN, text=text)
        for at, text in ((0, "get ready"), (1000, "2"), (2000, "1"))
    )
    tl = timeline(lead_in_ms=3000, lead_in_cues=lead_in)
    counting = session.handle(tl, opened(), cmd.Start(), T0)
    assert texts(counting.events) == ["get ready"]
    assert session.next_deadline(tl, counting.state) == T0 + 1000
    later = session.tick(tl, counting.state, T0 + 2500)
    assert [(e.at_ms, e.text) for e in later.events] == [(T0 + 1000, "2"), (T0 + 2000, "1")]
    assert session.next_deadline(tl, later.state) == T0 + 3000
    assert texts(session.tick(tl, later.state, T0 + 3000).events) == []


def test_next_during_the_countdown_skips_the_rest_of_the_lead_in() -> None:
    tl = timeline()
    counting = session.handle(tl, opened(), cmd.Start(), T0).state
    skipped = session.handle(tl, counting, cmd.Next(), T0 + 1000)
    assert skipped.state.phase is Phase.RUNNING
    assert skipped.events == [  # the instructor's doing, not time's
        PhaseChanged(at_ms=T0 + 1000, phase="running", previous="countdown", reason="instructor"),
        SegmentStarted(
            at_ms=T0 + 1000, index=0, ends_at_ms=T0 + 21_000, remaining_ms=20_000, reason="next"
        ),
    ]


# -- time passing ----------------------------------------------------------------------


def test_events_carry_their_scheduled_instant_even_when_ticked_late() -> None:
    tl = timeline(lead_in_ms=0)
    late = session.tick(tl, running(tl), T0 + 25_000)
    assert late.events == [
        CueFired(at_ms=T0 + 10_000, index=0, segment_index=0, kind=CueKind.HALFWAY, text="halfway"),
        CueFired(at_ms=T0 + 17_000, index=1, segment_index=0, kind=CueKind.COUNTDOWN, text="3"),
        SegmentStarted(at_ms=T0 + 20_000, index=1, ends_at_ms=T0 + 30_000, remaining_ms=10_000),
        CueFired(
            at_ms=T0 + 20_000, index=2, segment_index=1, kind=CueKind.NEXT, text="next: lunges"
        ),
    ]
    assert late.state.segment_index == 1 and late.state.next_cue == 3
    assert session.next_deadline(tl, late.state) == T0 + 30_000
    assert session.remaining_ms(tl, late.state, T0 + 25_000) == 5000
    assert session.elapsed_ms(late.state, T0 + 25_000) == 25_000


def test_the_class_finishes_when_the_last_segment_ends() -> None:
    tl = timeline(lead_in_ms=0)
    end = session.tick(tl, running(tl), T0 + 60_000)
    assert end.state.phase is Phase.FINISHED and end.state.ended_at_ms == T0 + 50_000
    assert end.events[-1] == PhaseChanged(
        at_ms=T0 + 50_000, phase="finished", previous="running", reason="time"
    )
    assert session.next_deadline(tl, end.state) is None
    assert session.elapsed_ms(end.state, T0 + 99_000) == 50_000


# -- pause and resume ------------------------------------------------------------------


def test_pause_freezes_the_remaining_time_and_resume_continues_from_it() -> None:
    tl = timeline(lead_in_ms=0)
    paused = session.handle(tl, running(tl), cmd.Pause(), T0 + 5_000).state
    assert paused.phase is Phase.PAUSED and paused.paused_elapsed_ms == 5_000
    assert session.remaining_ms(tl, paused, T0 + 600_000) == 15_000
    assert session.tick(tl, paused, T0 + 600_000).events == []

    resumed = session.handle(tl, paused, cmd.Resume(), T0 + 65_000)
    assert resumed.events[-1] == SegmentStarted(
        at_ms=T0 + 65_000, index=0, ends_at_ms=T0 + 80_000, remaining_ms=15_000, reason="resume"
    )
    halfway = session.tick(tl, resumed.state, T0 + 70_000).events
    assert [e.at_ms for e in halfway] == [T0 + 70_000]
    assert session.elapsed_ms(resumed.state, T0 + 70_000) == 10_000  # the pause didn't count


def test_a_class_left_paused_too_long_finishes_by_itself() -> None:
    tl = timeline(lead_in_ms=0)
    policy = ClassPolicy(pause_timeout_ms=60_000)
    state = session.handle(tl, session.open_class(T0, policy), cmd.Start(), T0).state
    paused = session.handle(tl, state, cmd.Pause(), T0 + 1000).state
    assert session.next_deadline(tl, paused) == T0 + 61_000
    idle = session.tick(tl, paused, T0 + 61_000)
    assert idle.state.phase is Phase.FINISHED
    assert idle.events == [
        PhaseChanged(at_ms=T0 + 61_000, phase="finished", previous="paused", reason="idle")
    ]


def test_a_class_abandoned_in_the_lobby_is_cancelled_by_itself() -> None:
    state = session.open_class(T0, ClassPolicy(lobby_timeout_ms=3_600_000))
    tl = timeline()
    assert session.next_deadline(tl, state) == T0 + 3_600_000
    assert session.tick(tl, state, T0 + 3_599_999).events == []
    gone = session.tick(tl, state, T0 + 3_600_000)
    assert gone.state.phase is Phase.CANCELLED
    assert gone.events[0].reason == "idle"  # type: ignore[attr-defined]


# -- moving between segments -----------------------------------------------------------


def test_next_ends_the_segment_now_and_skips_its_remaining_cues() -> None:
    tl = timeline(lead_in_ms=0)
    moved = session.handle(tl, running(tl), cmd.Next(from_segment=0), T0 + 4000)
    assert moved.events == [
        SegmentStarted(
            at_ms=T0 + 4000, index=1, ends_at_ms=T0 + 14_000, remaining_ms=10_000, reason="next"
        ),
        # The rest's own cue at its start fires at once; segment 0's halfway and 3 never do.
        CueFired(at_ms=T0 + 4000, index=2, segment_index=1, kind=CueKind.NEXT, text="next: lunges"),
    ]
    assert moved.state.next_cue == 3
    assert session.tick(tl, moved.state, T0 + 13_999).events == []
    assert session.elapsed_ms(moved.state, T0 + 4000) == 4000


def test_next_pressed_twice_for_the_same_segment_advances_once() -> None:
    tl = timeline(lead_in_ms=0)
    first = session.handle(tl, running(tl), cmd.Next(from_segment=0), T0 + 1000).state
    with pytest.raises(CommandRejected, match="already moved on to segment 2"):
        session.handle(tl, first, cmd.Next(from_segment=0), T0 + 1001)
    assert first.segment_index == 1


def test_next_on_the_last_segment_finishes_the_class() -> None:
    tl = timeline(lead_in_ms=0)
    state = session.handle(tl, running(tl), cmd.Jump(index=2), T0 + 1000).state
    done = session.handle(tl, state, cmd.Next(), T0 + 2000)
    assert done.state.phase is Phase.FINISHED
    assert done.events[-1] == PhaseChanged(at_ms=T0 + 2000, phase="finished", previous="running")


def test_previous_goes_back_to_the_start_of_the_previous_segment() -> None:
    tl = timeline(lead_in_ms=0)
    state = session.tick(tl, running(tl), T0 + 25_000).state
    back = session.handle(tl, state, cmd.Previous(), T0 + 25_000)
    assert back.state.segment_index == 0 and back.state.next_cue == 0
    assert back.events[-1].remaining_ms == 20_000  # type: ignore[attr-defined]
    assert texts(session.tick(tl, back.state, T0 + 35_000).events) == ["halfway"]
    first = session.handle(tl, back.state, cmd.Previous(), T0 + 26_000)
    assert first.state.segment_index == 0  # back from the first restarts it


def test_jump_goes_to_any_segment_and_refuses_one_that_does_not_exist() -> None:
    tl = timeline(lead_in_ms=0)
    jumped = session.handle(tl, running(tl), cmd.Jump(index=2), T0 + 1000).state
    assert jumped.segment_index == 2 and jumped.next_cue == 3
    with pytest.raises(CommandRejected, match="there is no segment 4"):
        session.handle(tl, jumped, cmd.Jump(index=3), T0 + 2000)


def test_moving_while_paused_stays_paused_at_the_start_of_the_new_segment() -> None:
    tl = timeline(lead_in_ms=0)
    paused = session.handle(tl, running(tl), cmd.Pause(), T0 + 3000).state
    moved = session.handle(tl, paused, cmd.Next(), T0 + 9000).state
    assert moved.phase is Phase.PAUSED and moved.segment_index == 1
    assert session.remaining_ms(tl, moved, T0 + 99_000) == 10_000
    assert session.elapsed_ms(moved, T0 + 99_000) == 3000


# -- extend ----------------------------------------------------------------------------


def test_extend_moves_the_end_and_the_cues_that_count_to_it() -> None:
    tl = timeline(lead_in_ms=0)
    extended = session.handle(tl, running(tl), cmd.Extend(by_ms=30_000), T0 + 5000)
    assert extended.events == [
        SegmentStarted(
            at_ms=T0 + 5000, index=0, ends_at_ms=T0 + 50_000, remaining_ms=45_000, reason="extend"
        )
    ]
    later = session.tick(tl, extended.state, T0 + 50_000)
    fired = [(e.at_ms, e.text) for e in later.events if isinstance(e, CueFired)]
    # "halfway" keeps its place from the start; the 3-2-1 moves with the end.
    assert fired[:2] == [(T0 + 10_000, "halfway"), (T0 + 47_000, "3")]
    assert later.state.segment_index == 1


def test_shortening_below_what_is_left_is_refused() -> None:
    tl = timeline(lead_in_ms=0)
    state = running(tl)
    shorter = session.handle(tl, state, cmd.Extend(by_ms=-10_000), T0 + 5000).state
    assert session.remaining_ms(tl, shorter, T0 + 5000) == 5000
    with pytest.raises(CommandRejected, match="only 0:05 is left"):
        session.handle(tl, shorter, cmd.Extend(by_ms=-5000), T0 + 5000)


@pytest.mark.parametrize("by_ms", [0, 1500, 11 * 60_000, -11 * 60_000])
def test_an_extension_out_of_range_is_refused_when_built(by_ms: int) -> None:
    with pytest.raises(ValidationError):
        cmd.Extend(by_ms=by_ms)


# -- participants finishing ------------------------------------------------------------


def test_a_participant_marks_their_finish_once_in_an_amrap() -> None:
    tl = timeline(lead_in_ms=0)
    state = session.handle(tl, running(tl), cmd.Jump(index=2), T0).state
    marked = session.handle(tl, state, cmd.MarkFinished(participant_id=7), T0 + 12_345)
    assert marked.events == [
        ParticipantFinished(at_ms=T0 + 12_345, participant_id=7, segment_index=2, elapsed_ms=12_345)
    ]
    with pytest.raises(CommandRejected, match="already finished"):
        session.handle(tl, marked.state, cmd.MarkFinished(participant_id=7), T0 + 13_000)
    with pytest.raises(CommandRejected, match="not an AMRAP or For Time"):
        session.handle(tl, running(tl), cmd.MarkFinished(participant_id=7), T0 + 1000)


# -- illegal commands ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "command", "message"),
    [
        (Phase.LOBBY, cmd.Pause(), "can't pause a class in the lobby"),
        (Phase.LOBBY, cmd.Next(), "can't next a class in the lobby"),
        (Phase.LOBBY, cmd.Resume(), "can't resume a class in the lobby"),
        (Phase.RUNNING, cmd.Start(), "can't start a class that is running"),
        (Phase.RUNNING, cmd.Resume(), "can't resume a class that is running"),
        (Phase.PAUSED, cmd.Pause(), "can't pause a class that is paused"),
        (Phase.FINISHED, cmd.Next(), "can't next a class that has finished"),
        (Phase.FINISHED, cmd.Start(), "can't start a class that has finished"),
        (Phase.CANCELLED, cmd.Shout(text="hi"), "can't shout a class that was cancelled"),
    ],
)
def test_an_illegal_command_is_rejected_naming_the_phase_and_changes_nothing(
    phase: Phase, command: cmd.Command, message: str
) -> None:
    tl = timeline(lead_in_ms=0)
    states = {
        Phase.LOBBY: opened(),
        Phase.RUNNING: running(tl),
        Phase.PAUSED: session.handle(tl, running(tl), cmd.Pause(), T0 + 1).state,
        Phase.FINISHED: session.handle(tl, running(tl), cmd.Finish(), T0 + 1).state,
        Phase.CANCELLED: session.handle(tl, opened(), cmd.Cancel(), T0 + 1).state,
    }
    state = states[phase]
    before = to_plain(state)
    with pytest.raises(CommandRejected, match=message):
        session.handle(tl, state, command, T0 + 2)
    assert to_plain(state) == before


def test_a_shout_out_changes_nothing_but_is_an_event() -> None:
    tl = timeline(lead_in_ms=0)
    state = running(tl)
    outcome = session.handle(tl, state, cmd.Shout(text="  Blue team,   push!  "), T0 + 1000)
    assert outcome.state == state
    assert outcome.events == [ShoutOut(at_ms=T0 + 1000, text="Blue team, push!")]


def test_state_and_timeline_survive_the_json_codec() -> None:
    tl = timeline()
    state = session.handle(tl, opened(), cmd.Start(), T0).state
    state = session.tick(tl, state, T0 + 13_000).state
    assert from_plain(ClassState, to_plain(state)) == state
    assert from_plain(Timeline, to_plain(tl)) == tl


# -- no drift --------------------------------------------------------------------------


def test_a_90_minute_class_with_a_cue_every_10_s_fires_each_at_its_exact_offset() -> None:
    minute = 60_000
    segments = tuple(
        Segment(
            index=i,
            name=f"Block {i + 1}",
            kind=SegmentKind.WORK if i % 2 == 0 else SegmentKind.REST,
            start_ms=i * minute,
            duration_ms=minute,
        )
        for i in range(90)
    )
    cues = tuple(
        Cue(at_ms=at, segment_index=at // minute, kind=CueKind.AUTHORED, text=str(at))
        for at in range(10_000, 90 * minute, 10_000)
    )
    tl = Timeline(title="90 minutes", segments=segments, cues=cues)
    state = running(tl)
    fired: list[CueFired] = []
    jitter = [0, 3, 17, 1, 9]  # the shell wakes a few ms late, never early
    now = T0
    for step in range(100_000):
        deadline = session.next_deadline(tl, state)
        if deadline is None:
            break
        now = deadline + jitter[step % len(jitter)]
        outcome = session.tick(tl, state, now)
        state = outcome.state
        fired += [e for e in outcome.events if isinstance(e, CueFired)]
    assert state.phase is Phase.FINISHED and state.ended_at_ms == T0 + 90 * minute
    assert [e.at_ms - T0 for e in fired] == [c.at_ms for c in cues]
