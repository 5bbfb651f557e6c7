"""The compiler: a routine in, a timeline out.

Compiling is pure and deterministic: the same routine always gives the same
timeline, to the millisecond. It runs in two passes:

1. **Expand** every block into segments, in order, keeping a running
   offset. Blocks inside a :class:`Repeat` are expanded once per round. Labels
   say where a segment sits ("Set 2 of 3 · Round 5 of 8", "Station 2 of 6").
   Authored cues are placed at absolute offsets as they are met.
2. **Cue** the timeline: every cue
   (generated ones from :mod:`classroom.domain.cues`, then authored ones, each
   attached to the segment it falls in), sorted by time.

The routine has already checked its own limits (segments, duration, nesting)
by arithmetic when it was built, so expansion is bounded.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from classroom.domain.cues import lead_in_cues, segment_cues
from classroom.domain.durations import format_duration
from classroom.domain.routine import (
    Amrap,
    AuthoredCue,
    Block,
    Circuit,
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


@dataclass(slots=True)
class _Plan:
    segments: list[Segment] = field(default_factory=list)
    offset_ms: int = 0
    # (offset, text, end of the part it counts back from, or None)
    authored: list[tuple[int, str, int | None]] = field(default_factory=list)
    last_round_starts: set[int] = field(default_factory=set)

    def add(self, fields: dict[str, Any], cues: tuple[AuthoredCue, ...] = ()) -> None:
        """Append a segment, starting where the last one ended, and place its cues."""
        segment = Segment(index=len(self.segments), start_ms=self.offset_ms, **fields)
        self.place(cues, segment.duration_ms)
        self.segments.append(segment)
        self.offset_ms += segment.duration_ms

    def place(self, cues: tuple[AuthoredCue, ...], duration_ms: int) -> None:
        """Place cues of a part starting now and lasting ``duration_ms``."""
        end = self.offset_ms + duration_ms
        for cue in cues:
            counts_back = end if cue.before_end_ms is not None else None
            self.authored.append(
                (self.offset_ms + cue.offset_in(duration_ms), cue.text, counts_back)
            )

    def mark_last_round(self) -> None:
        self.last_round_starts.add(len(self.segments))


def compile_routine(routine: Routine) -> Timeline:
    """The timeline a live class runs for ``routine``."""
    plan = _Plan()
    plan.place(routine.cues, routine.total_ms())
    for block in routine.blocks:
        _expand(block, plan, ())
    segments = plan.segments
    cues = segment_cues(segments, routine.auto_cues, plan.last_round_starts)
    if plan.authored:
        # Authored cues follow generated ones at the same instant; both lists
        # are in time order once the authored one is sorted (stably). A cue
        # written "before the end" of the segment it falls in moves with that
        # end when the instructor extends the segment.
        starts = [segment.start_ms for segment in segments]
        authored = []
        for at_ms, text, end in sorted(plan.authored, key=itemgetter(0)):
            index = bisect_right(starts, at_ms) - 1
            authored.append(
                Cue(
                    at_ms=at_ms,
                    segment_index=index,
                    kind=CueKind.AUTHORED,
                    text=text,
                    from_end=end == segments[index].end_ms,
                )
            )
        cues.extend(authored)
        cues.sort(key=attrgetter("at_ms"))  # two sorted runs: a linear, stable merge
    lead_in = routine.lead_in_ms if routine.auto_cues.lead_in else 0
    return Timeline(
        title=routine.title,
        segments=tuple(segments),
        cues=tuple(cues),
        lead_in_ms=lead_in,
        lead_in_cues=lead_in_cues(lead_in, segments[0]),
        max_reps_per_second=routine.max_reps_per_second,
    )


def _expand(block: Block, plan: _Plan, labels: tuple[str, ...]) -> None:
    match block:
        case Step():
            plan.add(_step(block, _label(labels)), block.cues)
        case Intervals():
            _intervals(block, plan, labels)
        case Tabata():
            _tabata(block, plan, labels)
        case Emom():
            _emom(block, plan, labels)
        case Amrap():
            _amrap(block, plan, labels)
        case ForTime():
            _for_time(block, plan, labels)
        case Circuit():
            _circuit(block, plan, labels)
        case Repeat():
            _repeat(block, plan, labels)


def _label(labels: tuple[str, ...], *more: str) -> str:
    return " · ".join((*labels, *more))


def _round(number: int, rounds: int, word: str = "Round") -> str:
    return f"{word} {number} of {rounds}"


def _step(step: Step, label: str, exercise: Exercise | None = None) -> dict[str, Any]:
    exercise = exercise or step.exercise
    return dict(
        name=exercise.name if exercise is not None and not step.name else step.title,
        kind=step.kind,
        duration_ms=step.duration_ms,
        label=label,
        exercise=exercise,
        target=step.target,
        score_kind=step.score,
    )


def _intervals(block: Intervals, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.place(block.cues, block.total_ms())
    for r in range(block.rounds):
        label = _label(labels, _round(r + 1, block.rounds))
        if r == block.rounds - 1 and block.rounds > 1:
            plan.mark_last_round()
        exercise = block.exercises[r % len(block.exercises)] if block.exercises else None
        plan.add(_step(block.work, label, exercise), block.work.cues)
        if block.rest is not None:
            plan.add(_step(block.rest, label), block.rest.cues)


def _tabata(block: Tabata, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.place(block.cues, block.total_ms())
    for r in range(block.rounds):
        label = _label(labels, _round(r + 1, block.rounds))
        if r == block.rounds - 1 and block.rounds > 1:
            plan.mark_last_round()
        exercise = block.exercises[r % len(block.exercises)]
        plan.add(
            dict(
                name=exercise.name,
                kind=SegmentKind.WORK,
                duration_ms=block.work_ms,
                label=label,
                exercise=exercise,
                score_kind=block.score,
            )
        )
        plan.add(dict(name="Rest", kind=SegmentKind.REST, duration_ms=block.rest_ms, label=label))


def _emom(block: Emom, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.place(block.cues, block.total_ms())
    word = "Minute" if block.every_ms == 60_000 else "Round"
    for r in range(block.rounds):
        if r == block.rounds - 1 and block.rounds > 1:
            plan.mark_last_round()
        move = block.moves[r % len(block.moves)]
        target = Target(reps=move.reps) if move.reps is not None else None
        plan.add(
            dict(
                name=move.exercise.name,
                kind=SegmentKind.WORK,
                duration_ms=block.every_ms,
                label=_label(labels, "EMOM", _round(r + 1, block.rounds, word)),
                exercise=move.exercise,
                target=target,
                score_kind=block.score,
            )
        )


def _amrap(block: Amrap, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.add(
        dict(
            name=block.name or "AMRAP",
            kind=SegmentKind.WORK,
            duration_ms=block.duration_ms,
            label=_label(labels, f"AMRAP {format_duration(block.duration_ms)}"),
            exercise=compose_moves(block.moves),
            score_kind=ScoreKind.ROUNDS_REPS,
        ),
        block.cues,
    )


def _for_time(block: ForTime, plan: _Plan, labels: tuple[str, ...]) -> None:
    rounds = f"{block.rounds} rounds for time" if block.rounds > 1 else "For Time"
    plan.add(
        dict(
            name=block.name or "For Time",
            kind=SegmentKind.WORK,
            duration_ms=block.cap_ms,
            label=_label(labels, f"{rounds} · cap {format_duration(block.cap_ms)}"),
            exercise=compose_moves(block.moves),
            score_kind=ScoreKind.TIME,
            open_ended=True,
        ),
        block.cues,
    )


def _circuit(block: Circuit, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.place(block.cues, block.total_ms())
    count = len(block.stations)
    for r in range(block.rounds):
        round_label = (_round(r + 1, block.rounds),) if block.rounds > 1 else ()
        if r == block.rounds - 1 and block.rounds > 1:
            plan.mark_last_round()
        for s in range(count):
            label = _label(labels, *round_label, f"Station {s + 1} of {count}")
            exercise = block.stations[s]
            plan.add(
                dict(
                    name=exercise.name,
                    kind=SegmentKind.WORK,
                    duration_ms=block.work_ms,
                    label=label,
                    exercise=exercise,
                    score_kind=block.score,
                    stations=block.stations,
                    rotation=s,
                )
            )
            if s < count - 1 and block.rotate_ms:
                plan.add(
                    dict(
                        name="Rotate stations",
                        kind=SegmentKind.TRANSITION,
                        duration_ms=block.rotate_ms,
                        label=label,
                    )
                )
        if r < block.rounds - 1:
            if block.round_rest_ms:
                plan.add(
                    dict(
                        name="Rest",
                        kind=SegmentKind.REST,
                        duration_ms=block.round_rest_ms,
                        label=_label(labels, *round_label),
                    )
                )
            elif block.rotate_ms:
                plan.add(
                    dict(
                        name="Rotate stations",
                        kind=SegmentKind.TRANSITION,
                        duration_ms=block.rotate_ms,
                        label=_label(labels, *round_label),
                    )
                )


def _repeat(block: Repeat, plan: _Plan, labels: tuple[str, ...]) -> None:
    plan.place(block.cues, block.total_ms())
    for r in range(block.times):
        if r == block.times - 1 and block.times > 1:
            plan.mark_last_round()
        inner = (*labels, _round(r + 1, block.times, "Set")) if block.times > 1 else labels
        for child in block.blocks:
            _expand(child, plan, inner)
        if block.rest is not None and r < block.times - 1:
            plan.add(_step(block.rest, _label(inner)), block.rest.cues)


def compose_moves(moves: tuple[Move, ...]) -> Exercise:
    """One exercise standing for a whiteboard of moves: "5 Pull-ups · 10 Push-ups".

    Each level's modification lists every move as that level performs it.
    """

    def line(level: Level | None) -> str:
        parts = []
        for move in moves:
            name = move.exercise.name if level is None else move.exercise.for_level(level)
            parts.append(name if move.reps is None else f"{move.reps} {name}")
        return " · ".join(parts)

    if len(moves) == 1 and moves[0].reps is None:
        return moves[0].exercise
    name = line(None)
    modifications = {level: text for level in Level if (text := line(level)) != name}
    equipment: dict[str, None] = {}
    for move in moves:
        equipment.update(dict.fromkeys(move.exercise.equipment))
    notes = " ".join(move.exercise.notes for move in moves if move.exercise.notes)
    return Exercise(name=name, modifications=modifications, equipment=tuple(equipment), notes=notes)
