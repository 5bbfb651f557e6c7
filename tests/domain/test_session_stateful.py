"""Random command sequences on a fake clock, checking the class's invariants.

Hypothesis drives a class through starts, pauses, skips, extensions and time
passing in steps of any size, and after every step checks what must always hold.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.errors import CommandRejected
from classroom.domain.events import CueFired, Event, SegmentStarted
from classroom.domain.session import TERMINAL, ClassState, Phase
from classroom.domain.timeline import Cue, CueKind, ScoreKind, Segment, SegmentKind, Timeline

T0 = 1_800_000_000_000


def build_timeline() -> Timeline:
    lengths = [20_000, 10_000, 45_000, 15_000, 60_000, 5_000]
    segments, cues, start = [], [], 0
    for i, length in enumerate(lengths):
        segments.append(
            Segment(
                index=i,
                name=f"S{i}",
                kind=SegmentKind.WORK if i % 2 == 0 else SegmentKind.REST,
                start_ms=start,
                duration_ms=length,
                score_kind=ScoreKind.ROUNDS_REPS if i == 4 else ScoreKind.REPS,
            )
        )
        for at in range(start, start + length, 7_000):
            cues.append(Cue(at_ms=at, segment_index=i, kind=CueKind.AUTHORED, text=f"{i}@{at}"))
        for left in (3000, 2000, 1000):
            cues.append(
                Cue(
                    at_ms=start + length - left,
                    segment_index=i,
                    kind=CueKind.COUNTDOWN,
                    text=str(left // 1000),
                    from_end=True,
                )
            )
        start += length
    cues.sort(key=lambda c: c.at_ms)
    lead_in = tuple(
        Cue(at_ms=at, segment_index=0, kind=CueKind.LEAD_IN, text="lead") for at in (0, 2000)
    )
    return Timeline(
        title="Random",
        segments=tuple(segments),
        cues=tuple(cues),
        lead_in_ms=3000,
        lead_in_cues=lead_in,
    )


TIMELINE = build_timeline()


class LiveClass(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = session.open_class(T0)
        self.now = T0
        self.last_tick = T0
        self.elapsed = 0
        self.moved = False  # a next/previous/jump/extend happened
        self.fired_this_visit: set[int] = set()
        self.last_event_at = T0

    # -- stepping ----------------------------------------------------------------------

    def record(self, events: list[Event], previous_tick: int) -> None:
        for event in events:
            assert event.at_ms <= self.now, "an event from the future"
            assert event.at_ms >= self.last_event_at, "events out of order"
            self.last_event_at = event.at_ms
            if isinstance(event, SegmentStarted):
                self.fired_this_visit = set()
            if isinstance(event, CueFired) and event.kind is not CueKind.LEAD_IN:
                assert event.index not in self.fired_this_visit, "a cue fired twice"
                self.fired_this_visit.add(event.index)
                # Due after the previous tick: had it been due earlier, that tick fires it.
                assert event.at_ms > previous_tick or event.at_ms == self.now

    def apply(self, command: cmd.Command) -> bool:
        before = self.state
        previous_tick = self.last_tick
        caught_up = session.tick(TIMELINE, self.state, self.now)
        try:
            outcome = session.handle(TIMELINE, self.state, command, self.now)
        except CommandRejected:
            assert self.state == before  # a rejection changes nothing
            # Time still passed: keep the caught-up state, as the class actor would not.
            return False
        self.record(outcome.events, previous_tick)
        assert caught_up.state.phase is outcome.state.phase or outcome.events
        self.state = outcome.state
        self.last_tick = self.now
        return True

    @rule(ms=st.integers(min_value=0, max_value=40_000))
    def time_passes(self, ms: int) -> None:
        before_elapsed = session.elapsed_ms(self.state, self.now)
        was_paused = self.state.phase is Phase.PAUSED
        previous_tick = self.last_tick
        self.now += ms
        outcome = session.tick(TIMELINE, self.state, self.now)
        self.record(outcome.events, previous_tick)
        self.state = outcome.state
        self.last_tick = self.now
        if was_paused:
            assert session.elapsed_ms(self.state, self.now) == before_elapsed, "paused time counted"

    @rule()
    def start(self) -> None:
        self.apply(cmd.Start())

    @rule()
    def pause(self) -> None:
        self.apply(cmd.Pause())

    @rule()
    def resume(self) -> None:
        self.apply(cmd.Resume())

    @rule(stale=st.booleans())
    def next(self, stale: bool) -> None:
        seen = self.state.segment_index - 1 if stale else self.state.segment_index
        index = self.state.segment_index
        if self.apply(cmd.Next(from_segment=seen)):
            self.moved = True
        elif stale and self.state.phase in (Phase.RUNNING, Phase.PAUSED):
            assert self.state.segment_index == index

    @rule()
    def previous(self) -> None:
        if self.apply(cmd.Previous()):
            self.moved = True

    @rule(index=st.integers(min_value=0, max_value=len(TIMELINE.segments)))
    def jump(self, index: int) -> None:
        if self.apply(cmd.Jump(index=index)):
            self.moved = True

    @rule(seconds=st.integers(min_value=-60, max_value=120).filter(bool))
    def extend(self, seconds: int) -> None:
        left = session.remaining_ms(
            TIMELINE, session.tick(TIMELINE, self.state, self.now).state, self.now
        )
        if self.apply(cmd.Extend(by_ms=seconds * 1000)):
            self.moved = True
            assert left is not None
            assert session.remaining_ms(TIMELINE, self.state, self.now) == left + seconds * 1000

    @rule(participant=st.integers(min_value=1, max_value=3))
    def mark_finished(self, participant: int) -> None:
        self.apply(cmd.MarkFinished(participant_id=participant))

    @precondition(lambda self: self.state.phase not in TERMINAL)
    @rule(cancel=st.booleans())
    def end(self, cancel: bool) -> None:
        self.apply(cmd.Cancel() if cancel else cmd.Finish())

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def elapsed_is_never_negative_and_never_goes_back(self) -> None:
        elapsed = session.elapsed_ms(self.state, self.now)
        assert elapsed >= 0
        assert elapsed >= self.elapsed
        self.elapsed = elapsed

    @invariant()
    def the_reported_segment_matches_the_elapsed_time(self) -> None:
        state: ClassState = self.state
        left = session.remaining_ms(TIMELINE, state, self.now)
        if state.phase in (Phase.RUNNING, Phase.PAUSED):
            assert left is not None
            assert 0 < left <= session.segment_length_ms(TIMELINE, state)
            if not self.moved:
                segment = TIMELINE.segment_at(session.elapsed_ms(state, self.now))
                assert segment is not None and segment.index == state.segment_index
        else:
            assert left is None

    @invariant()
    def the_next_deadline_is_never_in_the_past(self) -> None:
        caught_up = session.tick(TIMELINE, self.state, self.now).state
        deadline = session.next_deadline(TIMELINE, caught_up)
        if deadline is not None:
            assert deadline > self.now

    @invariant()
    def finished_and_cancelled_are_terminal(self) -> None:
        if self.state.phase in TERMINAL:
            assert session.next_deadline(TIMELINE, self.state) is None
            assert session.tick(TIMELINE, self.state, self.now + 10**9).events == []
            for command in (cmd.Start(), cmd.Resume(), cmd.Next(), cmd.Shout(text="x")):
                try:
                    session.handle(TIMELINE, self.state, command, self.now)
                except CommandRejected:
                    continue
                raise AssertionError(f"{command.name} was accepted after the end")

    def teardown(self) -> None:
        # Left alone, a class that never moved fires every cue exactly once, on time.
        if self.moved or self.state.phase is not Phase.RUNNING:
            return
        remaining = [cue.at_ms for cue in TIMELINE.cues[self.state.next_cue :]]
        fired = []
        while (deadline := session.next_deadline(TIMELINE, self.state)) is not None:
            self.now = deadline
            outcome = session.tick(TIMELINE, self.state, self.now)
            self.state = outcome.state
            fired += [e for e in outcome.events if isinstance(e, CueFired)]
            assert all(e.at_ms == self.now for e in outcome.events), "a cue was late"
        assert self.state.phase is Phase.FINISHED
        assert sorted(e.at_ms - (self.state.ended_at_ms or 0) for e in fired) == sorted(
            at - TIMELINE.total_ms for at in remaining
        )


TestLiveClass = LiveClass.TestCase
TestLiveClass.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
