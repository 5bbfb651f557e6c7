"""Routines: what an instructor brings to class, as a list of blocks.

A :class:`Routine` has a title, its blocks (see :mod:`classroom.domain.blocks`
for every kind), the cues its author wrote and which generated cues it wants.
Routines count time in whole seconds (stored as milliseconds); the compiler
(:mod:`classroom.domain.compiler`) turns a routine into a timeline.

The block classes are re-exported here, so ``from classroom.domain.routine
import Routine, Tabata`` works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from classroom.domain import limits
from classroom.domain.blocks import (
    KIND_TITLES,
    Amrap,
    AuthoredCue,
    Block,
    Circuit,
    Emom,
    ForTime,
    Intervals,
    Move,
    Repeat,
    Step,
    Tabata,
    check_cues,
    check_text,
)
from classroom.domain.durations import format_duration
from classroom.domain.errors import RoutineError

__all__ = [
    "KIND_TITLES",
    "Amrap",
    "AuthoredCue",
    "Block",
    "Circuit",
    "CueSettings",
    "Emom",
    "ForTime",
    "Intervals",
    "Move",
    "Repeat",
    "Routine",
    "Step",
    "Tabata",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CueSettings:
    """Which generated cues a routine wants; each can be switched off."""

    countdown: bool = True  # 3-2-1 before every segment change
    halfway: bool = True  # in segments of 60 s or more
    next: bool = True  # "Next: …" at the start of every rest
    last_round: bool = True  # at the start of a block's last round
    lead_in: bool = True  # the countdown before the class starts


@dataclass(frozen=True, slots=True, kw_only=True)
class Routine:
    """A reusable workout: a title, its blocks, and how it is cued."""

    title: str
    blocks: tuple[Block, ...]
    description: str = ""
    author: str = ""
    lead_in_ms: int = 10_000
    auto_cues: CueSettings = field(default_factory=CueSettings)
    cues: tuple[AuthoredCue, ...] = ()  # offsets from the start of the class
    # Reps a participant can plausibly log per second; more is flagged to the instructor.
    max_reps_per_second: float = limits.DEFAULT_MAX_REPS_PER_SECOND

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise RoutineError("title: a routine needs a title")
        check_text("title", self.title)
        check_text("description", self.description, limits.MAX_DESCRIPTION)
        check_text("author", self.author)
        if not self.blocks:
            raise RoutineError("blocks: a routine needs at least one block")
        if not 0 <= self.lead_in_ms <= limits.MAX_LEAD_IN_MS or self.lead_in_ms % 1000:
            limit = limits.MAX_LEAD_IN_MS // 1000
            raise RoutineError(f"lead_in must be whole seconds from 0 to {limit}")
        if not 0 < self.max_reps_per_second <= limits.MAX_REPS_PER_SECOND:
            raise RoutineError(
                f"max_reps_per_second must be above 0 and at most {limits.MAX_REPS_PER_SECOND:g}"
            )
        if max(block.depth() for block in self.blocks) > limits.MAX_NESTING:
            raise RoutineError(f"blocks can be nested at most {limits.MAX_NESTING} deep")
        if self.segment_count() > limits.MAX_SEGMENTS:
            raise RoutineError(
                f"this routine makes {self.segment_count():,} segments;"
                f" the most a routine can have is {limits.MAX_SEGMENTS:,}"
            )
        if self.total_ms() > limits.MAX_TOTAL_MS:
            raise RoutineError(
                f"this routine lasts {format_duration(self.total_ms())};"
                f" the longest a routine can last is {format_duration(limits.MAX_TOTAL_MS)}"
            )
        check_cues(self.cues, self.total_ms(), "the routine")

    def segment_count(self) -> int:
        return sum(block.segment_count() for block in self.blocks)

    def total_ms(self) -> int:
        return sum(block.total_ms() for block in self.blocks)
