"""Scores: what a participant logs, and whether the class can take it now.

Every input carries a client-generated id, so the same tap sent twice (a retry
after a dropped connection, a reload) counts once: the shell stores inputs
under (participant, client id) and acknowledges a repeat as a duplicate.

Each scored segment has a score kind (from the routine), and each kind has its
own input on the phone and its own way of adding inputs up into a participant's
**result** for the segment:

========== =================================== ============================
kind       one input                           the segment's result
========== =================================== ============================
reps       reps done (the +1 button sends 1)   the sum
rounds_reps rounds and/or reps                 rounds and reps, each summed
time       "finished" (the server takes time)  the time from the segment's start
load       a weight lifted, kg                 the heaviest
calories   calories                            the sum
distance   metres                              the sum
effort     RPE 1-10                            the latest
========== =================================== ============================

An input can be taken back (the phone's undo): an input that ``undoes`` an
earlier client id withdraws it. The instructor can correct a result; a
correction replaces the result, and every correction is kept (who, when, from
what to what).

An input names the segment it was tapped in, and counts there: a phone that was
offline (a dropped network, a server restart) sends its taps when it is back,
after the class may have moved on. So an input for any scored segment the class
has reached is taken while the class runs, and for :data:`LATE_INPUT_MS` after it
finishes. Only a For Time finish must arrive during its segment, since the
server times it as it arrives.

Implausible inputs (more reps than anyone can do in the time) are stored and
flagged to the instructor, never dropped silently: a flag is the instructor's
call to make, not the server's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from classroom.domain.errors import CommandRejected, ValidationError
from classroom.domain.session import ClassState, Phase, segment_elapsed_ms
from classroom.domain.timeline import ScoreKind, Timeline

# \Z, not $: "$" also matches before a final newline, which would let "abc\n" through.
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


class Division(StrEnum):
    """Rx ranks above scaled, scaled above beginner: scaled work still counts."""

    RX = "rx"
    SCALED = "scaled"
    BEGINNER = "beginner"


DIVISION_ORDER = {Division.RX: 0, Division.SCALED: 1, Division.BEGINNER: 2}
DIVISIONS: dict[str, Division] = {division.value: division for division in Division}
"""Each division by its name (a dictionary lookup: cheaper than ``Division(name)``)."""

# The most one input may carry, per kind: a typo or a forged message above it is
# refused outright. (10^9 reps is not a flag for the instructor, it's an error.)
MAX_INPUT: dict[ScoreKind, int] = {
    ScoreKind.REPS: 500,
    ScoreKind.ROUNDS_REPS: 999,  # reps; rounds are at most MAX_ROUNDS
    ScoreKind.LOAD: 1_000,  # kg
    ScoreKind.CALORIES: 2_000,
    ScoreKind.DISTANCE: 100_000,  # metres
    ScoreKind.EFFORT: 10,
}
MAX_ROUNDS = 100
UNITS: dict[ScoreKind, str] = {
    ScoreKind.REPS: "reps",
    ScoreKind.ROUNDS_REPS: "rounds + reps",
    ScoreKind.TIME: "time",
    ScoreKind.LOAD: "kg",
    ScoreKind.CALORIES: "cal",
    ScoreKind.DISTANCE: "m",
    ScoreKind.EFFORT: "RPE",
}
ADDITIVE = frozenset({ScoreKind.REPS, ScoreKind.CALORIES, ScoreKind.DISTANCE})
"""Kinds whose results add up across segments into one meaningful total."""

PLAUSIBLE_GRACE = 5
"""Reps above the rate a participant may log before a flag (a burst typed at once)."""

LATE_INPUT_MS = 15 * 60_000
"""How long after a class finishes it still takes inputs tapped before the end."""

BAD_CLIENT_ID = "a score needs an id of 1 to 64 letters, digits, - or _"
NOT_RUNNING = "scores can only be logged while the class is running"
TOO_LATE = "this class finished too long ago to take more scores"
NOT_REACHED = "the class hasn't reached that segment"
LATE_FINISH = "that segment is over: a finish counts only while its segment runs"
NOT_SCORED = "this segment isn't scored"
WRONG_KIND = "this segment is scored in {expected}, not {given}"
BAD_VALUE = "{unit} must be a whole number from 1 to {limit:,}"
BAD_ROUNDS = f"rounds must be a whole number from 0 to {MAX_ROUNDS}"
EMPTY_ROUNDS = "log at least one round or one rep"
FINISH_HAS_NO_VALUE = "a finish carries no value: the server takes the time"
UNDO_HAS_NO_VALUE = "an undo carries no value"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreInput:
    """One input from a participant's phone, as the server received it.

    ``at_ms`` is the instant the server received it, on the class's clock: a
    For Time finish is timed from it. ``undoes`` names an earlier input of the
    same participant that this one takes back (value 0).
    """

    participant_id: int
    client_id: str
    segment_index: int
    kind: ScoreKind
    value: int = 0
    rounds: int = 0
    division: Division = Division.RX
    at_ms: int = 0
    undoes: str = ""

    def __post_init__(self) -> None:
        if not _is_client_id(self.client_id):
            raise ValidationError(BAD_CLIENT_ID)
        for number in (self.value, self.rounds, self.segment_index):
            if isinstance(number, bool) or not isinstance(number, int):
                raise ValidationError("scores are whole numbers")
        if self.undoes:
            if not _is_client_id(self.undoes):
                raise ValidationError(BAD_CLIENT_ID)
            if self.value or self.rounds:
                raise ValidationError(UNDO_HAS_NO_VALUE)
            return
        kind = self.kind
        if kind is ScoreKind.NONE:
            raise ValidationError(NOT_SCORED)
        if kind is ScoreKind.TIME:
            if self.value or self.rounds:
                raise ValidationError(FINISH_HAS_NO_VALUE)
            return
        limit = MAX_INPUT[kind]
        if kind is ScoreKind.ROUNDS_REPS:
            if not 0 <= self.rounds <= MAX_ROUNDS:
                raise ValidationError(BAD_ROUNDS)
            if not 0 <= self.value <= limit:
                raise ValidationError(BAD_VALUE.format(unit="reps", limit=limit))
            if self.rounds == 0 and self.value == 0:
                raise ValidationError(EMPTY_ROUNDS)
            return
        if self.rounds:
            raise ValidationError(f"{UNITS[kind]} scores have no rounds")
        if not 1 <= self.value <= limit:
            raise ValidationError(BAD_VALUE.format(unit=UNITS[kind], limit=limit))


def _is_client_id(value: object) -> bool:
    return isinstance(value, str) and CLIENT_ID.match(value) is not None


class CheckedScore(NamedTuple):
    """An input the class can take: its kind, and the value to store.

    For a finish, ``value`` is the time the server took (ms from the segment's
    start); for every other input it is the input's own value. (A named tuple,
    like :class:`Tally`: one is made for every input a class takes.)
    """

    kind: ScoreKind
    value: int
    rounds: int
    elapsed_ms: int  # how far into the segment the input arrived
    max_reps_per_second: float  # the cap that applies (the routine's)


def check_score(timeline: Timeline, state: ClassState, score: ScoreInput) -> CheckedScore:
    """The input as the class takes it; raises if the class can't take it now.

    An input for the current segment is timed from the segment's start; one for
    a segment the class has left (sent late by a phone that was offline) counts
    in that segment as if it came at its end.
    """
    index = score.segment_index
    if state.phase is Phase.FINISHED:
        if state.ended_at_ms is None or score.at_ms > state.ended_at_ms + LATE_INPUT_MS:
            raise CommandRejected(TOO_LATE)
    elif state.phase not in (Phase.RUNNING, Phase.PAUSED):
        raise CommandRejected(NOT_RUNNING)
    if not 0 <= index <= state.segment_index:
        raise CommandRejected(NOT_REACHED)
    segment = timeline.segments[index]
    kind = segment.score_kind
    if kind is ScoreKind.NONE:
        raise CommandRejected(NOT_SCORED)
    if index == state.segment_index:  # finished: as far as the last segment got
        elapsed = max(0, segment_elapsed_ms(state, score.at_ms))
    else:
        elapsed = segment.duration_ms
    current = index == state.segment_index and state.phase is not Phase.FINISHED
    cap = timeline.max_reps_per_second
    if score.undoes:
        return CheckedScore(
            kind=kind, value=0, rounds=0, elapsed_ms=elapsed, max_reps_per_second=cap
        )
    if score.kind is not kind:
        raise CommandRejected(WRONG_KIND.format(expected=UNITS[kind], given=UNITS[score.kind]))
    if kind is ScoreKind.TIME and not current:
        raise CommandRejected(LATE_FINISH)
    value = elapsed if kind is ScoreKind.TIME else score.value
    return CheckedScore(
        kind=kind, value=value, rounds=score.rounds, elapsed_ms=elapsed, max_reps_per_second=cap
    )


def late_scores_until(state: ClassState) -> int | None:
    """The instant a class stops taking late scores (None: it never takes them)."""
    if state.phase is not Phase.FINISHED or state.ended_at_ms is None:
        return None
    return state.ended_at_ms + LATE_INPUT_MS


def takes_late_scores(state: ClassState, now: int) -> bool:
    """Whether a class that has ended still takes scores tapped before its end."""
    until = late_scores_until(state)
    return until is not None and now <= until


def implausible(
    kind: ScoreKind, reps_so_far: int, elapsed_ms: int, max_reps_per_second: float
) -> bool:
    """Whether ``reps_so_far`` in a segment is more than anyone does in ``elapsed_ms``.

    Only rep counts are checked (reps, and the reps of rounds + reps); the
    allowance is the routine's rate times the seconds elapsed, plus a grace for
    a burst typed in at once.
    """
    if kind not in (ScoreKind.REPS, ScoreKind.ROUNDS_REPS):
        return False
    allowed = max_reps_per_second * max(elapsed_ms, 1000) / 1000 + PLAUSIBLE_GRACE
    return reps_so_far > allowed


class Tally(NamedTuple):
    """A participant's result for one segment.

    ``first`` is the value (rounds for rounds + reps; ms for time); ``second``
    the reps of rounds + reps, 0 otherwise. A named tuple: a live class makes
    one for every input it takes (a running sum), and a tuple of numbers costs
    less to make and drops out of the garbage collector's sight.
    """

    first: int
    second: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Logged:
    """A stored input, as results are made from it."""

    value: int
    rounds: int = 0


def tally(kind: ScoreKind, inputs: Iterable[Logged]) -> Tally | None:
    """Add a segment's inputs up into the participant's result (None: nothing logged).

    ``inputs`` come in the order they were received, without withdrawn ones.
    """
    items = list(inputs)
    if not items:
        return None
    if kind is ScoreKind.ROUNDS_REPS:
        return Tally(sum(i.rounds for i in items), sum(i.value for i in items))
    if kind is ScoreKind.LOAD:
        return Tally(max(i.value for i in items))
    if kind is ScoreKind.TIME:
        return Tally(min(i.value for i in items))
    if kind is ScoreKind.EFFORT:
        return Tally(items[-1].value)
    return Tally(sum(i.value for i in items))


def lower_is_better(kind: ScoreKind) -> bool:
    return kind is ScoreKind.TIME


def show(kind: ScoreKind, result: Tally | float) -> str:
    """A result as the screens print it: "12 + 5", "4:07", "85 kg", "120 reps"."""
    if isinstance(result, float):
        return f"{result:,.1f}".removesuffix(".0")
    if kind is ScoreKind.ROUNDS_REPS:
        return f"{result.first} + {result.second}"
    if kind is ScoreKind.TIME:
        seconds = result.first // 1000
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{result.first:,} {UNITS[kind]}"
