"""The live class as a pure state machine.

Theory of operation
-------------------
A class is a value, :class:`ClassState`, beside its frozen :class:`Timeline`.
Two things change it, and both are pure functions returning an
:class:`Outcome` (the new state plus the events it caused):

* :func:`handle` applies an instructor's command at the instant ``now``;
* :func:`tick` lets time pass up to ``now``, firing every segment change and
  cue that fell due, each stamped with its *scheduled* instant.

:func:`next_deadline` says when the next tick is due, so the shell sleeps until
exactly then. Time is always an argument (epoch milliseconds); nothing here
reads a clock.

The position in the timeline is kept as an *anchor*: the wall-clock instant at
which timeline offset 0 happened (or will happen, during the lead-in). While
running, ``offset = now - anchor``. Pausing stores the offset reached; resuming
sets a new anchor from it, so paused time never counts and nothing drifts.

Which command is legal in which phase is the table :data:`TRANSITIONS`; an
illegal one raises :class:`CommandRejected` naming the phase, and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from classroom.domain import commands as cmd
from classroom.domain.errors import CommandRejected
from classroom.domain.events import CueFired, Event, PhaseChanged, SegmentStarted, ShoutOut
from classroom.domain.timeline import Segment, Timeline


class Phase(StrEnum):
    LOBBY = "lobby"
    COUNTDOWN = "countdown"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Phase.FINISHED, Phase.CANCELLED})
LIVE = frozenset({Phase.COUNTDOWN, Phase.RUNNING, Phase.PAUSED})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassState:
    phase: Phase = Phase.LOBBY
    anchor_ms: int | None = None
    paused_offset_ms: int | None = None
    segment_index: int = -1
    next_cue: int = 0
    next_lead_in_cue: int = 0
    ended_at_ms: int | None = None

    def offset_ms(self, now_ms: int) -> int | None:
        """How far into the timeline the class is at ``now_ms`` (None before start)."""
        if self.phase is Phase.PAUSED:
            return self.paused_offset_ms
        if self.anchor_ms is None:
            return None
        return now_ms - self.anchor_ms


@dataclass(frozen=True, slots=True)
class Outcome:
    state: ClassState
    events: list[Event] = field(default_factory=list)


Handler = Callable[[Timeline, ClassState, cmd.Command, int], Outcome]


def _start(timeline: Timeline, state: ClassState, _c: cmd.Command, now: int) -> Outcome:
    anchor = now + timeline.lead_in_ms
    counting = replace(state, phase=Phase.COUNTDOWN, anchor_ms=anchor)
    events: list[Event] = [PhaseChanged(at_ms=now, phase=Phase.COUNTDOWN, previous=state.phase)]
    # A class without a lead-in starts its first segment at once.
    later = tick(timeline, counting, now)
    return Outcome(later.state, events + later.events)


def _pause(_t: Timeline, state: ClassState, _c: cmd.Command, now: int) -> Outcome:
    offset = state.offset_ms(now)
    paused = replace(state, phase=Phase.PAUSED, paused_offset_ms=offset)
    return Outcome(paused, [PhaseChanged(at_ms=now, phase=Phase.PAUSED, previous=state.phase)])


def _resume(timeline: Timeline, state: ClassState, _c: cmd.Command, now: int) -> Outcome:
    assert state.paused_offset_ms is not None  # a paused state always has one
    anchor = now - state.paused_offset_ms
    running = replace(state, phase=Phase.RUNNING, anchor_ms=anchor, paused_offset_ms=None)
    segment = timeline.segments[state.segment_index]
    events: list[Event] = [
        PhaseChanged(at_ms=now, phase=Phase.RUNNING, previous=state.phase),
        SegmentStarted(at_ms=now, index=segment.index, ends_at_ms=anchor + segment.end_ms),
    ]
    return Outcome(running, events)


def _end(phase: Phase) -> Handler:
    def end(_t: Timeline, state: ClassState, _c: cmd.Command, now: int) -> Outcome:
        ended = replace(state, phase=phase, ended_at_ms=now, paused_offset_ms=None)
        return Outcome(ended, [PhaseChanged(at_ms=now, phase=phase, previous=state.phase)])

    return end


def _shout(_t: Timeline, state: ClassState, command: cmd.Command, now: int) -> Outcome:
    assert isinstance(command, cmd.Shout)
    return Outcome(state, [ShoutOut(at_ms=now, text=command.text)])


#: (phase, command) → what happens. Anything absent is rejected.
TRANSITIONS: dict[tuple[Phase, type[cmd.Command]], Handler] = {
    (Phase.LOBBY, cmd.Start): _start,
    (Phase.LOBBY, cmd.Cancel): _end(Phase.CANCELLED),
    (Phase.LOBBY, cmd.Shout): _shout,
    (Phase.COUNTDOWN, cmd.Cancel): _end(Phase.CANCELLED),
    (Phase.COUNTDOWN, cmd.Shout): _shout,
    (Phase.RUNNING, cmd.Pause): _pause,
    (Phase.RUNNING, cmd.Finish): _end(Phase.FINISHED),
    (Phase.RUNNING, cmd.Cancel): _end(Phase.CANCELLED),
    (Phase.RUNNING, cmd.Shout): _shout,
    (Phase.PAUSED, cmd.Resume): _resume,
    (Phase.PAUSED, cmd.Finish): _end(Phase.FINISHED),
    (Phase.PAUSED, cmd.Cancel): _end(Phase.CANCELLED),
    (Phase.PAUSED, cmd.Shout): _shout,
}

_PHASE_WORDS = {
    Phase.LOBBY: "in the lobby",
    Phase.COUNTDOWN: "during the countdown",
    Phase.RUNNING: "that is running",
    Phase.PAUSED: "that is paused",
    Phase.FINISHED: "that has finished",
    Phase.CANCELLED: "that was cancelled",
}


def handle(timeline: Timeline, state: ClassState, command: cmd.Command, now: int) -> Outcome:
    """Apply ``command`` at ``now``; time that has passed is ticked through first."""
    caught_up = tick(timeline, state, now)
    handler = TRANSITIONS.get((caught_up.state.phase, type(command)))
    if handler is None:
        raise CommandRejected(f"can't {command.name} a class {_PHASE_WORDS[caught_up.state.phase]}")
    outcome = handler(timeline, caught_up.state, command, now)
    return Outcome(outcome.state, caught_up.events + outcome.events)


def tick(timeline: Timeline, state: ClassState, now: int) -> Outcome:
    """Let time pass up to ``now``: fire every segment change and cue that fell due."""
    if state.phase not in (Phase.COUNTDOWN, Phase.RUNNING) or state.anchor_ms is None:
        return Outcome(state)
    anchor = state.anchor_ms
    offset = now - anchor
    events: list[Event] = []
    if state.phase is Phase.COUNTDOWN:
        lead_in_start = anchor - timeline.lead_in_ms
        cues_due = timeline.lead_in_cues
        fired = state.next_lead_in_cue
        while fired < len(cues_due) and lead_in_start + cues_due[fired].at_ms <= now:
            cue = cues_due[fired]
            events.append(
                CueFired(
                    at_ms=lead_in_start + cue.at_ms,
                    index=fired,
                    segment_index=cue.segment_index,
                    kind=cue.kind,
                    text=cue.text,
                )
            )
            fired += 1
        state = replace(state, next_lead_in_cue=fired)
        if offset < 0:
            return Outcome(state, events)
        first = timeline.segments[0]
        events.append(PhaseChanged(at_ms=anchor, phase=Phase.RUNNING, previous=Phase.COUNTDOWN))
        events.append(SegmentStarted(at_ms=anchor, index=0, ends_at_ms=anchor + first.end_ms))
        state = replace(state, phase=Phase.RUNNING, segment_index=0)

    index, next_cue = state.segment_index, state.next_cue
    cues, segments = timeline.cues, timeline.segments
    while True:
        segment_end = segments[index].end_ms
        cue_at = cues[next_cue].at_ms if next_cue < len(cues) else None
        if cue_at is not None and cue_at < segment_end:
            if cue_at > offset:
                break
            cue = cues[next_cue]
            events.append(
                CueFired(
                    at_ms=anchor + cue.at_ms,
                    index=next_cue,
                    segment_index=cue.segment_index,
                    kind=cue.kind,
                    text=cue.text,
                )
            )
            next_cue += 1
            continue
        if segment_end > offset:
            break
        if index + 1 == len(segments):
            ended = replace(
                state,
                phase=Phase.FINISHED,
                segment_index=index,
                next_cue=next_cue,
                ended_at_ms=anchor + segment_end,
            )
            events.append(
                PhaseChanged(at_ms=anchor + segment_end, phase=Phase.FINISHED, previous=state.phase)
            )
            return Outcome(ended, events)
        index += 1
        events.append(
            SegmentStarted(
                at_ms=anchor + segment_end, index=index, ends_at_ms=anchor + segments[index].end_ms
            )
        )
    return Outcome(replace(state, segment_index=index, next_cue=next_cue), events)


def next_deadline(timeline: Timeline, state: ClassState) -> int | None:
    """The instant (epoch ms) of the next tick that will change something, if any."""
    if state.anchor_ms is None:
        return None
    if state.phase is Phase.COUNTDOWN:
        if state.next_lead_in_cue < len(timeline.lead_in_cues):
            cue = timeline.lead_in_cues[state.next_lead_in_cue]
            return min(state.anchor_ms, state.anchor_ms - timeline.lead_in_ms + cue.at_ms)
        return state.anchor_ms
    if state.phase is not Phase.RUNNING:
        return None
    due = timeline.segments[state.segment_index].end_ms
    if state.next_cue < len(timeline.cues):
        due = min(due, timeline.cues[state.next_cue].at_ms)
    return state.anchor_ms + due


def current_segment(timeline: Timeline, state: ClassState) -> Segment | None:
    if state.segment_index < 0:
        return None
    return timeline.segments[state.segment_index]
