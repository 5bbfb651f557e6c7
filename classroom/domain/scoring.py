"""Scores: what a participant logs, and whether the class can take it now.

Every score carries a client-generated id, so the same tap sent twice (a
retry after a dropped connection, a reload) counts once: the shell stores
scores under (participant, client id) and acknowledges a repeat as a duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from classroom.domain.errors import CommandRejected, ValidationError
from classroom.domain.session import ClassState, Phase
from classroom.domain.timeline import ScoreKind, Timeline

MAX_VALUE = 10_000
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

BAD_CLIENT_ID = "a score needs an id of 1 to 64 letters, digits, - or _"
BAD_VALUE = f"a score is a whole number from 1 to {MAX_VALUE:,}"
NOT_RUNNING = "scores can only be logged while the class is running"
WRONG_SEGMENT = "that segment is over; scores go to the current one"
NOT_SCORED = "this segment isn't scored"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreInput:
    """One logged input from a participant's phone."""

    participant_id: int
    client_id: str
    segment_index: int
    value: int

    def __post_init__(self) -> None:
        if not CLIENT_ID.match(self.client_id):
            raise ValidationError(BAD_CLIENT_ID)
        if isinstance(self.value, bool) or not 1 <= self.value <= MAX_VALUE:
            raise ValidationError(BAD_VALUE)


def check_score(timeline: Timeline, state: ClassState, score: ScoreInput) -> ScoreKind:
    """The kind the score counts as; raises if the class can't take it now."""
    if state.phase not in (Phase.RUNNING, Phase.PAUSED):
        raise CommandRejected(NOT_RUNNING)
    if score.segment_index != state.segment_index:
        raise CommandRejected(WRONG_SEGMENT)
    kind = timeline.segments[state.segment_index].score_kind
    if kind is ScoreKind.NONE:
        raise CommandRejected(NOT_SCORED)
    return kind
