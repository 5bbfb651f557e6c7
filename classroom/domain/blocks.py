"""Blocks: the parts a routine is made of.

- :class:`Step` — a single segment: warm-up, work, rest, transition or cool-down;
- :class:`Intervals` — work and rest, repeated for a number of rounds, with an
  optional list of exercises that take turns round by round;
- :class:`Tabata` — intervals with Tabata's defaults: 8 rounds of 20 s on, 10 s off;
- :class:`Emom` — every minute on the minute (or every N seconds) for N rounds,
  the moves taking turns;
- :class:`Amrap` — as many rounds as possible in a time box, scored in rounds + reps;
- :class:`ForTime` — work through the moves as fast as possible, under a time cap;
- :class:`Circuit` — K stations x R rounds; teams rotate, each at its own station;
- :class:`Repeat` — any blocks, repeated N times with optional rest between rounds.

Each block knows how many segments it makes and how long it lasts without being
expanded, so limits are checked by arithmetic. Every value checks itself when
built and raises :class:`RoutineError` with a message that names the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from classroom.domain import limits
from classroom.domain.durations import format_duration
from classroom.domain.errors import RoutineError
from classroom.domain.targets import Target
from classroom.domain.timeline import Exercise, ScoreKind, SegmentKind


def check_duration(what: str, ms: int, *, maximum: int = limits.MAX_SEGMENT_MS) -> None:
    """Refuse a duration that is not a positive whole number of seconds up to ``maximum``."""
    if ms <= 0:
        raise RoutineError(f"{what} must be longer than zero")
    if ms % 1000:
        raise RoutineError(f"{what} must be a whole number of seconds")
    if ms > maximum:
        raise RoutineError(f"{what} can't be longer than {format_duration(maximum)}")


def check_count(what: str, count: int, maximum: int = limits.MAX_ROUNDS) -> None:
    if not 1 <= count <= maximum:
        raise RoutineError(f"{what} must be between 1 and {maximum:,}, not {count:,}")


def check_text(what: str, text: str, maximum: int = limits.MAX_TEXT) -> None:
    if len(text) > maximum:
        raise RoutineError(f"{what} is longer than {maximum} characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthoredCue:
    """A cue written by the routine's author: ``at`` an offset, or ``before_end``.

    Offsets count from the start of whatever holds the cue (a segment, a block,
    the routine); ``before_end`` counts back from its end.
    """

    text: str
    at_ms: int | None = None
    before_end_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise RoutineError("a cue needs some text")
        check_text("a cue's text", self.text)
        if (self.at_ms is None) == (self.before_end_ms is None):
            raise RoutineError("a cue needs either 'at' or 'before_end', not both")
        offset = self.at_ms if self.at_ms is not None else self.before_end_ms
        if offset is not None and (offset < 0 or offset % 1000):
            raise RoutineError("a cue's time must be zero or more whole seconds")
        if self.before_end_ms == 0:
            raise RoutineError("a cue can't come 0 s before the end; the segment is over")

    def offset_in(self, duration_ms: int) -> int:
        """The cue's offset from the start of a part lasting ``duration_ms``."""
        if self.at_ms is not None:
            return self.at_ms
        return duration_ms - (self.before_end_ms or 0)


def check_moves(moves: tuple[Move, ...], block: str) -> None:
    if not moves:
        raise RoutineError(f"moves: {block} needs at least one move")
    if len(moves) > limits.MAX_MOVES:
        raise RoutineError(f"moves: at most {limits.MAX_MOVES}")


def check_cues(cues: tuple[AuthoredCue, ...], duration_ms: int, where: str) -> None:
    if len(cues) > limits.MAX_CUES_PER_PART:
        raise RoutineError(f"{where} has more than {limits.MAX_CUES_PER_PART} cues")
    for cue in cues:
        offset = cue.offset_in(duration_ms)
        if not 0 <= offset < duration_ms:
            raise RoutineError(
                f"the cue {cue.text!r} falls outside {where} ({format_duration(duration_ms)} long)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """An exercise in a whiteboard workout, with an optional number of reps."""

    exercise: Exercise
    reps: int | None = None

    def __post_init__(self) -> None:
        if self.reps is not None:
            check_count("reps", self.reps, 10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """A single segment: a warm-up, work, rest, transition or cool-down."""

    kind: SegmentKind
    duration_ms: int
    name: str = ""
    exercise: Exercise | None = None
    target: Target | None = None
    score: ScoreKind = ScoreKind.NONE
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        check_duration("duration", self.duration_ms)
        check_text("name", self.name)
        check_cues(self.cues, self.duration_ms, "the segment")

    @property
    def title(self) -> str:
        """The segment's name: its own, its exercise's, or its kind's."""
        if self.name:
            return self.name
        if self.exercise is not None:
            return self.exercise.name
        return KIND_TITLES[self.kind]

    def segment_count(self) -> int:
        return 1

    def total_ms(self) -> int:
        return self.duration_ms

    def depth(self) -> int:
        return 1


KIND_TITLES = {
    SegmentKind.WARMUP: "Warm-up",
    SegmentKind.WORK: "Work",
    SegmentKind.REST: "Rest",
    SegmentKind.TRANSITION: "Transition",
    SegmentKind.COOLDOWN: "Cool-down",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Intervals:
    """Work then rest, for ``rounds`` rounds.

    If ``exercises`` is set, round ``r`` (from 0) works on
    ``exercises[r % len(exercises)]`` instead of the work step's exercise.
    """

    rounds: int
    work: Step
    rest: Step | None = None
    exercises: tuple[Exercise, ...] = ()
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        check_count("rounds", self.rounds)
        if len(self.exercises) > limits.MAX_MOVES:
            raise RoutineError(f"exercises: at most {limits.MAX_MOVES} can take turns")
        check_cues(self.cues, self.total_ms(), "the block")

    def segment_count(self) -> int:
        return self.rounds * (1 if self.rest is None else 2)

    def total_ms(self) -> int:
        rest = 0 if self.rest is None else self.rest.duration_ms
        return self.rounds * (self.work.duration_ms + rest)

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Tabata:
    """Tabata: 8 rounds of 20 s work, 10 s rest; the exercises take turns."""

    exercises: tuple[Exercise, ...]
    rounds: int = 8
    work_ms: int = 20_000
    rest_ms: int = 10_000
    score: ScoreKind = ScoreKind.REPS
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        if not self.exercises:
            raise RoutineError("exercises: a Tabata needs at least one exercise")
        if len(self.exercises) > limits.MAX_MOVES:
            raise RoutineError(f"exercises: at most {limits.MAX_MOVES} can take turns")
        check_count("rounds", self.rounds)
        check_duration("work", self.work_ms)
        check_duration("rest", self.rest_ms)
        check_cues(self.cues, self.total_ms(), "the block")

    def segment_count(self) -> int:
        return 2 * self.rounds

    def total_ms(self) -> int:
        return self.rounds * (self.work_ms + self.rest_ms)

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Emom:
    """Every minute on the minute (or every ``every_ms``), for ``rounds`` rounds.

    Round ``r`` (from 0) does ``moves[r % len(moves)]``: one move means the same
    move every minute; several alternate.
    """

    rounds: int
    moves: tuple[Move, ...]
    every_ms: int = 60_000
    score: ScoreKind = ScoreKind.NONE
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        check_moves(self.moves, "an EMOM")
        check_count("rounds", self.rounds)
        check_duration("every", self.every_ms)
        check_cues(self.cues, self.total_ms(), "the block")

    def segment_count(self) -> int:
        return self.rounds

    def total_ms(self) -> int:
        return self.rounds * self.every_ms

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Amrap:
    """As many rounds as possible of ``moves`` in ``duration_ms``; scored rounds + reps."""

    duration_ms: int
    moves: tuple[Move, ...]
    name: str = ""
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        check_moves(self.moves, "an AMRAP")
        check_duration("duration", self.duration_ms)
        check_text("name", self.name)
        check_cues(self.cues, self.duration_ms, "the AMRAP")

    def segment_count(self) -> int:
        return 1

    def total_ms(self) -> int:
        return self.duration_ms

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ForTime:
    """``rounds`` rounds of ``moves`` as fast as possible, stopped at the time cap.

    The segment is open-ended: it ends when the instructor (or each participant)
    finishes, or at ``cap_ms``.
    """

    cap_ms: int
    moves: tuple[Move, ...]
    rounds: int = 1
    name: str = ""
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        check_moves(self.moves, "a For Time")
        check_duration("cap", self.cap_ms)
        check_count("rounds", self.rounds)
        check_text("name", self.name)
        check_cues(self.cues, self.cap_ms, "the time cap")

    def segment_count(self) -> int:
        return 1

    def total_ms(self) -> int:
        return self.cap_ms

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Circuit:
    """K stations x R rounds. Every team works at once, each at its own station.

    Each round is K work segments (one per rotation) separated by ``rotate_ms``
    transitions; ``round_rest_ms`` (if any) is a rest between rounds.
    """

    stations: tuple[Exercise, ...]
    rounds: int = 1
    work_ms: int = 45_000
    rotate_ms: int = 15_000
    round_rest_ms: int = 0
    score: ScoreKind = ScoreKind.REPS
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.stations) <= limits.MAX_STATIONS:
            raise RoutineError(f"stations: a circuit needs 1 to {limits.MAX_STATIONS} stations")
        check_count("rounds", self.rounds)
        check_count("stations x rounds", self.rounds * len(self.stations))
        check_duration("work", self.work_ms)
        if self.rotate_ms:
            check_duration("rotate", self.rotate_ms)
        if self.round_rest_ms:
            check_duration("round_rest", self.round_rest_ms)
        check_cues(self.cues, self.total_ms(), "the block")

    def segment_count(self) -> int:
        stations = len(self.stations)
        per_round = stations + (stations - 1 if self.rotate_ms else 0)
        between = (self.rounds - 1) * (1 if (self.round_rest_ms or self.rotate_ms) else 0)
        return self.rounds * per_round + between

    def total_ms(self) -> int:
        stations = len(self.stations)
        per_round = stations * self.work_ms + (stations - 1) * self.rotate_ms
        between = self.round_rest_ms or self.rotate_ms
        return self.rounds * per_round + (self.rounds - 1) * between

    def depth(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Repeat:
    """Any blocks, ``times`` times over, with an optional rest between rounds."""

    times: int
    blocks: tuple[Block, ...]
    rest: Step | None = None
    cues: tuple[AuthoredCue, ...] = ()

    def __post_init__(self) -> None:
        if not self.blocks:
            raise RoutineError("blocks: a repeat needs at least one block")
        check_count("times", self.times)
        if self.depth() > limits.MAX_NESTING:
            raise RoutineError(f"blocks can be nested at most {limits.MAX_NESTING} deep")
        if self.segment_count() > limits.MAX_SEGMENTS:
            raise RoutineError(f"this repeat makes more than {limits.MAX_SEGMENTS:,} segments")
        if self.total_ms() > limits.MAX_TOTAL_MS:
            limit = format_duration(limits.MAX_TOTAL_MS)
            raise RoutineError(f"this repeat lasts longer than {limit}")
        check_cues(self.cues, self.total_ms(), "the block")

    def segment_count(self) -> int:
        inner = sum(block.segment_count() for block in self.blocks)
        return self.times * inner + (self.times - 1) * (self.rest is not None)

    def total_ms(self) -> int:
        inner = sum(block.total_ms() for block in self.blocks)
        rest = 0 if self.rest is None else self.rest.duration_ms
        return self.times * inner + (self.times - 1) * rest

    def depth(self) -> int:
        return 1 + max(block.depth() for block in self.blocks)


Block = Step | Intervals | Tabata | Emom | Amrap | ForTime | Circuit | Repeat
