"""Timelines: a routine compiled to a flat list of segments with exact offsets.

A timeline is what a live class runs. It is a value: built once when a class
opens (the routine is frozen into the class), never mutated afterwards.

All times are whole **milliseconds**, relative to the start of the timeline
(the end of the lead-in countdown). Integers keep the arithmetic exact over a
class of any length: no float rounding, no drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from classroom.domain.errors import TimelineError
from classroom.domain.limits import DEFAULT_MAX_REPS_PER_SECOND
from classroom.domain.targets import Target


class SegmentKind(StrEnum):
    WARMUP = "warmup"
    WORK = "work"
    REST = "rest"
    TRANSITION = "transition"
    COOLDOWN = "cooldown"


class ScoreKind(StrEnum):
    NONE = "none"
    REPS = "reps"
    ROUNDS_REPS = "rounds_reps"
    TIME = "time"
    LOAD = "load"
    CALORIES = "calories"
    DISTANCE = "distance"
    EFFORT = "effort"


class Level(StrEnum):
    BEGINNER = "beginner"
    STANDARD = "standard"
    ADVANCED = "advanced"


class CueKind(StrEnum):
    """Where a cue came from; screens pick sound and look by kind."""

    LEAD_IN = "lead_in"  # the countdown before the class starts
    COUNTDOWN = "countdown"  # 3-2-1 before a segment change
    HALFWAY = "halfway"
    NEXT = "next"  # "next: mountain climbers", during rests
    LAST_ROUND = "last_round"
    AUTHORED = "authored"  # written into the routine by its author


@dataclass(frozen=True, slots=True, kw_only=True)
class Exercise:
    """A move, with the variant a participant of each level performs."""

    name: str
    modifications: dict[Level, str] = field(default_factory=dict)
    equipment: tuple[str, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise TimelineError("an exercise needs a name")

    def for_level(self, level: Level) -> str:
        """The name of the move as a participant of ``level`` performs it."""
        return self.modifications.get(level) or self.name


class Cue(NamedTuple):
    """Something every screen shows or plays at an instant.

    ``at_ms`` is the offset from the start of the timeline, and always falls
    inside the segment ``segment_index`` (start <= at_ms < end); the
    :class:`Timeline` that holds a cue checks this.

    A cue is a named tuple rather than a frozen dataclass because a long class
    has thousands of them and a tuple is built several times faster: compiling
    a 2-hour routine spends most of its time making cues. Build it with
    keywords, like the dataclasses around it.
    """

    at_ms: int
    segment_index: int
    kind: CueKind
    text: str
    # True for cues that count to the segment's end (3-2-1, "10 s before the end"):
    # when the instructor extends or shortens the segment, they move with its end.
    from_end: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One step of a timeline: a stretch of time with one move and one score kind.

    An ``open_ended`` segment (For Time) runs until the instructor advances it;
    its ``duration_ms`` is then the time cap.
    """

    index: int
    name: str
    kind: SegmentKind
    start_ms: int
    duration_ms: int
    label: str = ""
    exercise: Exercise | None = None
    score_kind: ScoreKind = ScoreKind.NONE
    open_ended: bool = False
    target: Target | None = None
    # A circuit segment: every team works at once, each at its own station.
    # ``stations`` lists the station exercises in order; team ``t`` (0-based,
    # in the order the class lists its teams) works at station
    # ``(t + rotation) % len(stations)``. See classroom.domain.stations.
    stations: tuple[Exercise, ...] = ()
    rotation: int = 0

    def __post_init__(self) -> None:
        if self.duration_ms <= 0:
            raise TimelineError(f"segment {self.index} ({self.name!r}) has no duration")
        if self.start_ms < 0:
            raise TimelineError(f"segment {self.index} ({self.name!r}) starts before zero")

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """A routine compiled for a live class.

    Segments tile ``[0, total_ms)`` with no gaps or overlaps; cues are sorted by
    time. ``lead_in_ms`` is the countdown that runs before segment 0 starts.
    """

    title: str
    segments: tuple[Segment, ...]
    cues: tuple[Cue, ...] = ()
    lead_in_ms: int = 0
    # Cues of the lead-in countdown. Their ``at_ms`` counts from the start of
    # the lead-in (0 <= at_ms < lead_in_ms), and ``segment_index`` is 0: the
    # segment they lead into. They are kept apart from ``cues`` because no
    # segment is running yet.
    lead_in_cues: tuple[Cue, ...] = ()
    # Reps a second a participant can plausibly log (the routine's cap).
    max_reps_per_second: float = DEFAULT_MAX_REPS_PER_SECOND

    def __post_init__(self) -> None:
        segments = self.segments
        if not segments:
            raise TimelineError("a timeline needs at least one segment")
        starts: list[int] = []
        expected = 0
        for i, segment in enumerate(segments):
            if segment.index != i:
                raise TimelineError(f"segment {i} is numbered {segment.index}")
            if segment.start_ms != expected:
                raise TimelineError(
                    f"segment {i} starts at {segment.start_ms} ms, expected {expected} ms"
                )
            starts.append(expected)
            expected += segment.duration_ms
        starts.append(expected)  # the end of the last segment
        count = len(segments)
        previous = -1
        for cue in self.cues:  # a compiled class can have thousands: keep this loop lean
            at, index = cue.at_ms, cue.segment_index
            if at < previous:
                raise TimelineError("cues must be sorted by time")
            previous = at
            if not 0 <= index < count:
                raise TimelineError(f"cue {cue.text!r} names no segment")
            if not starts[index] <= at < starts[index + 1]:
                raise TimelineError(f"cue {cue.text!r} falls outside its segment")
        if self.lead_in_ms < 0:
            raise TimelineError("the lead-in can't be negative")
        for cue in self.lead_in_cues:
            if not 0 <= cue.at_ms < self.lead_in_ms:
                raise TimelineError(f"lead-in cue {cue.text!r} falls outside the lead-in")

    @property
    def total_ms(self) -> int:
        return self.segments[-1].end_ms

    def segment_at(self, offset_ms: int) -> Segment | None:
        """The segment running ``offset_ms`` after the start, or None past the end."""
        if offset_ms < 0:
            return None
        lo, hi = 0, len(self.segments)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.segments[mid].end_ms <= offset_ms:
                lo = mid + 1
            else:
                hi = mid
        return self.segments[lo] if lo < len(self.segments) else None
