"""Events: what a class's state machine says happened.

Every event carries ``at_ms``, the wall-clock instant (epoch milliseconds) at
which it was *scheduled* to happen, not when the shell got round to it; the
difference is the cue's lateness, which the shell measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from classroom.domain.timeline import CueKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseChanged(Event):
    """The class entered ``phase``; ``reason`` says who or what moved it.

    Entering the lead-in (``countdown``), ``starts_at_ms`` is when it ends: when the
    first segment starts, so that every screen can count down to it.
    """

    type: ClassVar[str] = "phase"
    phase: str
    previous: str
    reason: str = "instructor"  # "instructor", "time" (the timeline ran out), "idle"
    starts_at_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentStarted(Event):
    """Segment ``index`` is now current, or its timing changed.

    While running it ends at ``ends_at_ms``; while paused ``remaining_ms`` is what
    is left of it. ``reason`` is "time", "next", "previous", "jump", "resume"
    or "extend".
    """

    type: ClassVar[str] = "segment"
    index: int
    ends_at_ms: int
    remaining_ms: int
    reason: str = "time"


@dataclass(frozen=True, slots=True, kw_only=True)
class CueFired(Event):
    type: ClassVar[str] = "cue"
    index: int
    segment_index: int
    kind: CueKind
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShoutOut(Event):
    type: ClassVar[str] = "shout"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantFinished(Event):
    """A participant marked their finish of an AMRAP or For Time segment."""

    type: ClassVar[str] = "finished"
    participant_id: int
    segment_index: int
    elapsed_ms: int
