"""The live class as a pure state machine.

Theory of operation
-------------------
A class is a value, :class:`ClassState`, beside its frozen :class:`Timeline`.
Two things change it, and both are pure functions returning an
:class:`Outcome` (the new state plus the events it caused):

* :func:`handle` applies a command at the instant ``now``;
* :func:`tick` lets time pass up to ``now``, firing every segment change and
  cue that fell due, each stamped with its *scheduled* instant.

:func:`next_deadline` says when the next tick is due, so the shell sleeps until
exactly then. Time is always an argument (epoch milliseconds); nothing here
reads a clock.

The position is kept per segment: while running, ``segment_started_at_ms`` is
the instant the current segment began counting, so ``now - segment_started_at_ms``
is how far into it the class is, and the segment ends at
``segment_started_at_ms + duration + extra_ms``. Pausing stores how far in the
class was; resuming sets a new start from it, so paused time never counts and
nothing drifts however long the class. Every deadline is an absolute instant,
so a late tick fires what fell due, stamped with when it was due, and never
pushes later cues back.

Which command is legal in which phase is the table :data:`TRANSITIONS`
(``docs/class-lifecycle.md`` is generated from it). An illegal command raises
:class:`CommandRejected` naming the phase, and changes nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from classroom.domain import commands as cmd
from classroom.domain.durations import format_duration
from classroom.domain.errors import CommandRejected
from classroom.domain.events import (
    CueFired,
    Event,
    ParticipantFinished,
    PhaseChanged,
    SegmentStarted,
    ShoutOut,
)
from classroom.domain.timeline import Cue, ScoreKind, Segment, Timeline

MAX_SEGMENT_MS = 6 * 3600_000
MIN_REMAINING_MS = 1000


class Phase(StrEnum):
    LOBBY = "lobby"
    COUNTDOWN = "countdown"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Phase.FINISHED, Phase.CANCELLED})
LIVE = frozenset({Phase.COUNTDOWN, Phase.RUNNING, Phase.PAUSED})
OPEN = frozenset({Phase.LOBBY, *LIVE})


class RestartPolicy(StrEnum):
    """What a class does when the server comes back after stopping mid-class."""

    CONTINUE = "continue"  # run on by the wall clock, as if the server never stopped
    PAUSE = "pause"  # sit paused at the position it had reached


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassPolicy:
    """A class's settings for restarts and for closing when left alone."""

    on_restart: RestartPolicy = RestartPolicy.CONTINUE
    lobby_timeout_ms: int = 6 * 3600_000
    pause_timeout_ms: int = 2 * 3600_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassState:
    phase: Phase = Phase.LOBBY
    opened_at_ms: int = 0
    started_at_ms: int | None = None
    segment_index: int = -1
    segment_started_at_ms: int | None = None  # countdown: when segment 0 will start
    paused_at_ms: int | None = None
    paused_elapsed_ms: int = 0  # while paused: how far into the segment
    extra_ms: int = 0  # the current segment's extension (negative: shortened)
    active_before_ms: int = 0  # time run in the segments before the current one
    next_cue: int = 0
    next_lead_in_cue: int = 0
    ended_at_ms: int | None = None
    finishers: tuple[tuple[int, int], ...] = ()  # (participant id, segment index)
    policy: ClassPolicy = field(default_factory=ClassPolicy)


def open_class(now: int, policy: ClassPolicy | None = None) -> ClassState:
    """The state of a class opened (in the lobby) at ``now``."""
    return ClassState(opened_at_ms=now, policy=policy or ClassPolicy())


@dataclass(frozen=True, slots=True)
class Outcome:
    state: ClassState
    events: list[Event] = field(default_factory=list)


# -- reading a state ------------------------------------------------------------------


def current_segment(timeline: Timeline, state: ClassState) -> Segment | None:
    if state.segment_index < 0:
        return None
    return timeline.segments[state.segment_index]


def segment_length_ms(timeline: Timeline, state: ClassState) -> int:
    """The current segment's length, with its extension."""
    return timeline.segments[state.segment_index].duration_ms + state.extra_ms


def segment_elapsed_ms(state: ClassState, now: int) -> int:
    """How far into the current segment the class is at ``now``."""
    if state.phase is Phase.RUNNING and state.segment_started_at_ms is not None:
        return now - state.segment_started_at_ms
    if state.phase in (Phase.PAUSED, Phase.FINISHED, Phase.CANCELLED):
        return state.paused_elapsed_ms
    return 0


def remaining_ms(timeline: Timeline, state: ClassState, now: int) -> int | None:
    """What is left of the current segment at ``now`` (None when no segment runs)."""
    if state.phase not in (Phase.RUNNING, Phase.PAUSED) or state.segment_index < 0:
        return None
    return segment_length_ms(timeline, state) - segment_elapsed_ms(state, now)


def elapsed_ms(state: ClassState, now: int) -> int:
    """Time the class has run, skipped segments and pauses not counted."""
    if state.phase in (Phase.LOBBY, Phase.COUNTDOWN):
        return 0
    return state.active_before_ms + segment_elapsed_ms(state, now)


def _segment_end(timeline: Timeline, state: ClassState) -> int:
    assert state.segment_started_at_ms is not None  # only asked while running
    return state.segment_started_at_ms + segment_length_ms(timeline, state)


def _cue_instant(timeline: Timeline, state: ClassState, cue: Cue) -> int:
    assert state.segment_started_at_ms is not None  # only asked while running
    segment = timeline.segments[cue.segment_index]
    offset = cue.at_ms - segment.start_ms + (state.extra_ms if cue.from_end else 0)
    return state.segment_started_at_ms + offset


# -- moving between segments ------------------------------------------------------------


def _enter(
    timeline: Timeline, state: ClassState, index: int, now: int, reason: str
) -> tuple[ClassState, Event]:
    """Make ``index`` the current segment from ``now``; running or paused as before."""
    spent = segment_elapsed_ms(state, now) if state.segment_index >= 0 else 0
    first_cue = bisect_left(timeline.cues, index, key=lambda cue: cue.segment_index)
    length = timeline.segments[index].duration_ms
    paused = state.phase is Phase.PAUSED
    entered = replace(
        state,
        segment_index=index,
        segment_started_at_ms=None if paused else now,
        paused_at_ms=now if paused else None,
        paused_elapsed_ms=0,
        extra_ms=0,
        active_before_ms=state.active_before_ms + spent,
        next_cue=first_cue,
    )
    event = SegmentStarted(
        at_ms=now, index=index, ends_at_ms=now + length, remaining_ms=length, reason=reason
    )
    return entered, event


def _finished(state: ClassState, now: int, phase: Phase, reason: str) -> Outcome:
    spent = segment_elapsed_ms(state, now) if state.segment_index >= 0 else 0
    ended = replace(
        state,
        phase=phase,
        ended_at_ms=now,
        paused_elapsed_ms=spent,
        segment_started_at_ms=None,
    )
    return Outcome(
        ended, [PhaseChanged(at_ms=now, phase=phase, previous=state.phase, reason=reason)]
    )


def _check_view(state: ClassState, command: cmd.Command) -> None:
    """Refuse a move made from a view of another segment than the current one."""
    seen = getattr(command, "from_segment", None)
    if seen is not None and seen != state.segment_index:
        if state.segment_index < 0:
            raise CommandRejected("the class hasn't reached its first segment yet; nothing changed")
        raise CommandRejected(
            f"the class has already moved on to segment {state.segment_index + 1}; nothing changed"
        )


# -- the transition table -----------------------------------------------------------------

Handler = Callable[[Timeline, ClassState, Any, int], Outcome]


def _start(timeline: Timeline, state: ClassState, _c: cmd.Start, now: int) -> Outcome:
    counting = replace(
        state,
        phase=Phase.COUNTDOWN,
        started_at_ms=now,
        segment_started_at_ms=now + timeline.lead_in_ms,
    )
    changed = PhaseChanged(
        at_ms=now,
        phase=Phase.COUNTDOWN,
        previous=state.phase,
        starts_at_ms=counting.segment_started_at_ms,
    )
    later = tick(timeline, counting, now)  # no lead-in: the first segment starts at once
    return Outcome(later.state, [changed, *later.events])


def _pause(timeline: Timeline, state: ClassState, _c: cmd.Pause, now: int) -> Outcome:
    paused = replace(
        state,
        phase=Phase.PAUSED,
        paused_at_ms=now,
        paused_elapsed_ms=segment_elapsed_ms(state, now),
        segment_started_at_ms=None,
    )
    return Outcome(paused, [PhaseChanged(at_ms=now, phase=Phase.PAUSED, previous=state.phase)])


def _resume(timeline: Timeline, state: ClassState, _c: cmd.Resume, now: int) -> Outcome:
    running = replace(
        state,
        phase=Phase.RUNNING,
        segment_started_at_ms=now - state.paused_elapsed_ms,
        paused_at_ms=None,
        paused_elapsed_ms=0,
    )
    left = segment_length_ms(timeline, running) - state.paused_elapsed_ms
    events: list[Event] = [
        PhaseChanged(at_ms=now, phase=Phase.RUNNING, previous=state.phase),
        SegmentStarted(
            at_ms=now,
            index=state.segment_index,
            ends_at_ms=now + left,
            remaining_ms=left,
            reason="resume",
        ),
    ]
    return Outcome(running, events)


def _next(timeline: Timeline, state: ClassState, command: cmd.Next, now: int) -> Outcome:
    _check_view(state, command)
    if state.phase is Phase.COUNTDOWN:  # skip the rest of the lead-in
        skipped = replace(
            state, segment_started_at_ms=now, next_lead_in_cue=len(timeline.lead_in_cues)
        )
        started = tick(timeline, skipped, now)
        return Outcome(started.state, [_by_instructor(event) for event in started.events])
    if state.segment_index + 1 == len(timeline.segments):
        return _finished(state, now, Phase.FINISHED, "instructor")
    entered, event = _enter(timeline, state, state.segment_index + 1, now, "next")
    return Outcome(entered, [event])


def _by_instructor(event: Event) -> Event:
    """The end of a lead-in that the instructor cut short: their doing, not time's."""
    if isinstance(event, PhaseChanged) and event.previous == Phase.COUNTDOWN:
        return replace(event, reason="instructor")
    if isinstance(event, SegmentStarted) and event.reason == "time":
        return replace(event, reason="next")
    return event


def _previous(timeline: Timeline, state: ClassState, command: cmd.Previous, now: int) -> Outcome:
    _check_view(state, command)
    entered, event = _enter(timeline, state, max(0, state.segment_index - 1), now, "previous")
    return Outcome(entered, [event])


def _jump(timeline: Timeline, state: ClassState, command: cmd.Jump, now: int) -> Outcome:
    _check_view(state, command)
    if command.index >= len(timeline.segments):
        raise CommandRejected(
            f"there is no segment {command.index + 1}; the class has {len(timeline.segments)}"
        )
    entered, event = _enter(timeline, state, command.index, now, "jump")
    return Outcome(entered, [event])


def _extend(timeline: Timeline, state: ClassState, command: cmd.Extend, now: int) -> Outcome:
    length = segment_length_ms(timeline, state) + command.by_ms
    left = length - segment_elapsed_ms(state, now)
    if left < MIN_REMAINING_MS:
        have = format_duration(max(0, left - command.by_ms))
        raise CommandRejected(
            f"only {have} is left; can't shorten it by {format_duration(-command.by_ms)}"
        )
    if length > MAX_SEGMENT_MS:
        raise CommandRejected("a segment can last at most 6 hours")
    extended = replace(state, extra_ms=state.extra_ms + command.by_ms)
    event = SegmentStarted(
        at_ms=now,
        index=state.segment_index,
        ends_at_ms=now + left,
        remaining_ms=left,
        reason="extend",
    )
    return Outcome(extended, [event])


def _mark_finished(
    timeline: Timeline, state: ClassState, command: cmd.MarkFinished, now: int
) -> Outcome:
    segment = timeline.segments[state.segment_index]
    if not (segment.open_ended or segment.score_kind is ScoreKind.ROUNDS_REPS):
        raise CommandRejected(f"{segment.name} is not an AMRAP or For Time segment")
    key = (command.participant_id, state.segment_index)
    if key in state.finishers:
        raise CommandRejected("you have already finished this segment")
    marked = replace(state, finishers=(*state.finishers, key))
    event = ParticipantFinished(
        at_ms=now,
        participant_id=command.participant_id,
        segment_index=state.segment_index,
        elapsed_ms=segment_elapsed_ms(state, now),
    )
    return Outcome(marked, [event])


def _end(phase: Phase) -> Handler:
    def end(_t: Timeline, state: ClassState, _c: cmd.Command, now: int) -> Outcome:
        return _finished(state, now, phase, "instructor")

    end.__name__ = f"end_{phase.value}"
    return end


def _shout(_t: Timeline, state: ClassState, command: cmd.Shout, now: int) -> Outcome:
    return Outcome(state, [ShoutOut(at_ms=now, text=command.text)])


_cancel, _finish = _end(Phase.CANCELLED), _end(Phase.FINISHED)

#: (phase, command) → handler. Anything absent is rejected, naming the phase.
TRANSITIONS: dict[tuple[Phase, type[cmd.Command]], Handler] = {
    (Phase.LOBBY, cmd.Start): _start,
    (Phase.LOBBY, cmd.Cancel): _cancel,
    (Phase.LOBBY, cmd.Shout): _shout,
    (Phase.COUNTDOWN, cmd.Next): _next,
    (Phase.COUNTDOWN, cmd.Cancel): _cancel,
    (Phase.COUNTDOWN, cmd.Shout): _shout,
    (Phase.RUNNING, cmd.Pause): _pause,
    (Phase.RUNNING, cmd.Next): _next,
    (Phase.RUNNING, cmd.Previous): _previous,
    (Phase.RUNNING, cmd.Jump): _jump,
    (Phase.RUNNING, cmd.Extend): _extend,
    (Phase.RUNNING, cmd.MarkFinished): _mark_finished,
    (Phase.RUNNING, cmd.Finish): _finish,
    (Phase.RUNNING, cmd.Cancel): _cancel,
    (Phase.RUNNING, cmd.Shout): _shout,
    (Phase.PAUSED, cmd.Resume): _resume,
    (Phase.PAUSED, cmd.Next): _next,
    (Phase.PAUSED, cmd.Previous): _previous,
    (Phase.PAUSED, cmd.Jump): _jump,
    (Phase.PAUSED, cmd.Extend): _extend,
    (Phase.PAUSED, cmd.MarkFinished): _mark_finished,
    (Phase.PAUSED, cmd.Finish): _finish,
    (Phase.PAUSED, cmd.Cancel): _cancel,
    (Phase.PAUSED, cmd.Shout): _shout,
}

#: What time alone does: (phase) → (the phase it leads to, why).
TIMED_TRANSITIONS: dict[Phase, tuple[Phase, str]] = {
    Phase.LOBBY: (Phase.CANCELLED, "left in the lobby past its time limit"),
    Phase.COUNTDOWN: (Phase.RUNNING, "the lead-in ends"),
    Phase.RUNNING: (Phase.FINISHED, "the last segment ends"),
    Phase.PAUSED: (Phase.FINISHED, "left paused past its time limit"),
}

PHASE_WORDS = {
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
    phase = caught_up.state.phase
    handler = TRANSITIONS.get((phase, type(command)))
    if handler is None:
        words = command.name.replace("_", " ")
        raise CommandRejected(f"can't {words} a class {PHASE_WORDS[phase]}")
    outcome = handler(timeline, caught_up.state, command, now)
    # A segment entered now may have cues due at once (a "Next: …" at its start).
    settled = tick(timeline, outcome.state, now)
    return Outcome(settled.state, caught_up.events + outcome.events + settled.events)


# -- time -------------------------------------------------------------------------------


def next_deadline(timeline: Timeline, state: ClassState) -> int | None:
    """The instant (epoch ms) of the next tick that will change something, if any."""
    if state.phase is Phase.LOBBY:
        return state.opened_at_ms + state.policy.lobby_timeout_ms
    if state.phase is Phase.PAUSED:
        assert state.paused_at_ms is not None  # a paused state always has one
        return state.paused_at_ms + state.policy.pause_timeout_ms
    if state.phase is Phase.COUNTDOWN:
        assert state.segment_started_at_ms is not None
        due = state.segment_started_at_ms
        if state.next_lead_in_cue < len(timeline.lead_in_cues):
            lead_in_cue = timeline.lead_in_cues[state.next_lead_in_cue]
            due = min(due, state.segment_started_at_ms - timeline.lead_in_ms + lead_in_cue.at_ms)
        return due
    if state.phase is Phase.RUNNING:
        due = _segment_end(timeline, state)
        cue = _pending_cue(timeline, state)
        if cue is not None:
            due = min(due, _cue_instant(timeline, state, cue))
        return due
    return None


def _pending_cue(timeline: Timeline, state: ClassState) -> Cue | None:
    """The next cue of the current segment that hasn't fired, if any."""
    if state.next_cue < len(timeline.cues):
        cue = timeline.cues[state.next_cue]
        if cue.segment_index == state.segment_index:
            return cue
    return None


def tick(timeline: Timeline, state: ClassState, now: int) -> Outcome:
    """Let time pass up to ``now``: fire every segment change and cue that fell due."""
    events: list[Event] = []
    if state.phase is Phase.LOBBY:
        if now >= state.opened_at_ms + state.policy.lobby_timeout_ms:
            return _finished(state, now, Phase.CANCELLED, "idle")
        return Outcome(state)
    if state.phase is Phase.PAUSED:
        assert state.paused_at_ms is not None
        if now >= state.paused_at_ms + state.policy.pause_timeout_ms:
            return _finished(state, now, Phase.FINISHED, "idle")
        return Outcome(state)
    if state.phase is Phase.COUNTDOWN:
        state = _lead_in(timeline, state, now, events)
        if state.phase is Phase.COUNTDOWN:
            return Outcome(state, events)
    if state.phase is not Phase.RUNNING:
        return Outcome(state, events)
    return _run(timeline, state, now, events)


def _lead_in(timeline: Timeline, state: ClassState, now: int, events: list[Event]) -> ClassState:
    assert state.segment_started_at_ms is not None
    first_start = state.segment_started_at_ms
    lead_in_start = first_start - timeline.lead_in_ms
    fired = state.next_lead_in_cue
    cues = timeline.lead_in_cues
    while fired < len(cues) and lead_in_start + cues[fired].at_ms <= min(now, first_start - 1):
        cue = cues[fired]
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
    if now < first_start:
        return replace(state, next_lead_in_cue=fired)
    length = timeline.segments[0].duration_ms
    events.append(
        PhaseChanged(
            at_ms=first_start, phase=Phase.RUNNING, previous=Phase.COUNTDOWN, reason="time"
        )
    )
    events.append(
        SegmentStarted(
            at_ms=first_start, index=0, ends_at_ms=first_start + length, remaining_ms=length
        )
    )
    return replace(state, phase=Phase.RUNNING, segment_index=0, next_lead_in_cue=len(cues))


def _run(timeline: Timeline, state: ClassState, now: int, events: list[Event]) -> Outcome:
    cues, segments = timeline.cues, timeline.segments
    while True:
        end = _segment_end(timeline, state)
        cue = _pending_cue(timeline, state)
        if cue is not None and (at := _cue_instant(timeline, state, cue)) < end:
            if at > now:
                break
            events.append(
                CueFired(
                    at_ms=at,
                    index=state.next_cue,
                    segment_index=cue.segment_index,
                    kind=cue.kind,
                    text=cue.text,
                )
            )
            state = replace(state, next_cue=state.next_cue + 1)
            continue
        if end > now:
            break
        index = state.segment_index
        if index + 1 == len(segments):
            done = replace(
                state,
                phase=Phase.FINISHED,
                ended_at_ms=end,
                paused_elapsed_ms=segment_length_ms(timeline, state),
                segment_started_at_ms=None,
                next_cue=len(cues),
            )
            events.append(
                PhaseChanged(at_ms=end, phase=Phase.FINISHED, previous=Phase.RUNNING, reason="time")
            )
            return Outcome(done, events)
        state, started = _enter(timeline, state, index + 1, end, "time")
        events.append(started)
    return Outcome(state, events)
