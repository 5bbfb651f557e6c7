"""A live class's scores, kept in memory by the class's single writer.

The book decides, without touching storage, whether an input is new (its
client id unseen for that participant), what it withdraws (an undo), whether
it is plausible, and what each participant's result for each segment is now.
The shell writes what the book took, in batches, and rebuilds the book from
the stored inputs when a class resumes after a restart.

Reordered inputs work out the same as ordered ones: an undo that arrives
before the input it takes back is remembered, and that input is withdrawn as
soon as it comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from classroom.domain.errors import CommandRejected
from classroom.domain.scoring import (
    DIVISIONS,
    CheckedScore,
    Division,
    Logged,
    ScoreInput,
    Tally,
    implausible,
    tally,
)
from classroom.domain.timeline import ScoreKind

ALREADY_FINISHED = "you have already finished this segment"
NOT_IN_CLASS = "you are not in this class any more"


class Entry(NamedTuple):
    """An input the book took: what the shell stores for it (one for every input)."""

    participant_id: int
    client_id: str
    segment_index: int
    kind: ScoreKind
    value: int
    rounds: int
    division: Division
    elapsed_ms: int
    undoes: str = ""
    withdrawn: bool = False
    flagged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Fix:
    """An instructor's correction: it replaces a result (None: removes it)."""

    participant_id: int
    segment_index: int
    result: Tally | None


#: An input as the book keeps it: (value, rounds, division, elapsed_ms, undoes,
#: withdrawn, flagged). A plain tuple of plain values rather than an :class:`Entry`:
#: a live class keeps every input it took, and the garbage collector stops tracking
#: such a tuple the first time it sees it, while every Entry would be scanned again
#: in every full collection (a pause of every socket, longer as the class goes on).
_Kept = tuple[int, int, str, int, str, bool, bool]
_VALUE: Final = 0
_ROUNDS: Final = 1
_DIVISION: Final = 2
_ELAPSED: Final = 3
_UNDOES: Final = 4
_WITHDRAWN: Final = 5
_FLAGGED: Final = 6


def _kept(entry: Entry) -> _Kept:
    return (
        entry.value,
        entry.rounds,
        entry.division.value,
        entry.elapsed_ms,
        entry.undoes,
        entry.withdrawn,
        entry.flagged,
    )


def _counts(kept: _Kept) -> bool:
    """Whether a kept input counts (neither withdrawn nor an undo)."""
    return not kept[_WITHDRAWN] and not kept[_UNDOES]


@dataclass(slots=True)
class _Line:
    """One participant's inputs in one segment."""

    kind: ScoreKind
    inputs: dict[str, _Kept] = field(default_factory=dict)  # by client id, in arrival order
    reps: int = 0  # live rep count, for plausibility
    known: bool = False  # whether ``result`` is up to date with ``inputs``
    result: Tally | None = None
    # The division of the latest input that counts (Rx when none does). It follows
    # the inputs: an undo (or an input withdrawn on arrival) can't leave the division
    # of an input that no longer counts, and a restored book agrees with the live one.
    division: Division = Division.RX

    def keep(self, entry: Entry) -> None:
        """Add an input; a sum is kept up to date as it goes (boards read it many times)."""
        self.inputs[entry.client_id] = _kept(entry)
        if entry.withdrawn or entry.undoes:
            return
        self.division = entry.division
        if self.known and self.kind in RUNNING_SUMS:
            self.result = _plus(self.kind, self.result, entry)
        else:
            self.known = False

    def tally(self) -> Tally | None:
        if not self.known:
            counted = [kept for kept in self.inputs.values() if _counts(kept)]
            logged = [Logged(value=kept[_VALUE], rounds=kept[_ROUNDS]) for kept in counted]
            self.result = tally(self.kind, logged)
            self.known = True
        return self.result

    def counted(self) -> bool:
        """Whether any input of the line counts."""
        return any(_counts(kept) for kept in self.inputs.values())

    def reps_of(self, kept: _Kept) -> int:
        return kept[_VALUE] if self.kind in (ScoreKind.REPS, ScoreKind.ROUNDS_REPS) else 0

    def entry(self, participant_id: int, segment_index: int, client_id: str) -> Entry:
        """A kept input as an :class:`Entry` again."""
        kept = self.inputs[client_id]
        return Entry(
            participant_id=participant_id,
            client_id=client_id,
            segment_index=segment_index,
            kind=self.kind,
            value=kept[_VALUE],
            rounds=kept[_ROUNDS],
            division=DIVISIONS[kept[_DIVISION]],
            elapsed_ms=kept[_ELAPSED],
            undoes=kept[_UNDOES],
            withdrawn=kept[_WITHDRAWN],
            flagged=kept[_FLAGGED],
        )

    def withdraw(self, client_id: str) -> None:
        """Take an input back: it no longer counts, nor does its division."""
        kept = self.inputs[client_id]
        value, rounds, division, elapsed, undoes, _, flagged = kept
        self.inputs[client_id] = (value, rounds, division, elapsed, undoes, True, flagged)
        self.known = False
        self.reps -= self.reps_of(kept)
        counted = (kept for kept in reversed(self.inputs.values()) if _counts(kept))
        latest = next(counted, None)
        self.division = Division.RX if latest is None else DIVISIONS[latest[_DIVISION]]


@dataclass(frozen=True, slots=True)
class Taken:
    """What taking an input did: ``entry`` to store (None: a duplicate), ``withdraws`` to mark."""

    entry: Entry | None
    withdraws: str = ""


_REPEAT = Taken(None)


class ScoreBook:
    def __init__(self) -> None:
        self._seen: set[tuple[int, str]] = set()
        self._lines: dict[tuple[int, int], _Line] = {}
        self._segments: dict[int, dict[int, _Line]] = {}  # the same lines, by segment
        self._early_undos: dict[tuple[int, str], str] = {}  # target -> undo's client id
        self._fixes: dict[tuple[int, int], Tally | None] = {}
        self.removed: set[int] = set()
        self.version = 0  # grows with every change: boards redraw when it moves

    # -- taking inputs --------------------------------------------------------------

    def take(self, score: ScoreInput, checked: CheckedScore) -> Taken:
        """Take a checked input; raises :class:`CommandRejected` if it can't count."""
        pid = score.participant_id
        if pid in self.removed:
            raise CommandRejected(NOT_IN_CLASS)
        if (pid, score.client_id) in self._seen:
            return _REPEAT
        line = self._lines.get((pid, score.segment_index))
        new = line is None
        if line is None:
            line = _Line(kind=checked.kind)
        if score.undoes:
            entry = self._entry(score, checked, undoes=score.undoes)
            withdraws = self._withdraw(pid, line, score.undoes, score.client_id)
            self._keep(line, entry, new)
            return Taken(entry, withdraws)
        if checked.kind is ScoreKind.TIME and line.counted():
            raise CommandRejected(ALREADY_FINISHED)
        withdrawn = self._early_undos.pop((pid, score.client_id), None) is not None
        reps = line.reps + (0 if withdrawn else _reps(checked))
        flagged = not withdrawn and implausible(
            checked.kind, reps, checked.elapsed_ms, checked.max_reps_per_second
        )
        entry = self._entry(score, checked, withdrawn=withdrawn, flagged=flagged)
        line.reps = reps
        self._keep(line, entry, new)
        return Taken(entry)

    def _entry(
        self,
        score: ScoreInput,
        checked: CheckedScore,
        *,
        undoes: str = "",
        withdrawn: bool = False,
        flagged: bool = False,
    ) -> Entry:
        return Entry(
            participant_id=score.participant_id,
            client_id=score.client_id,
            segment_index=score.segment_index,
            kind=checked.kind,
            value=checked.value,
            rounds=checked.rounds,
            division=score.division,
            elapsed_ms=checked.elapsed_ms,
            undoes=undoes,
            withdrawn=withdrawn,
            flagged=flagged,
        )

    def _withdraw(self, pid: int, line: _Line, target: str, undo_id: str) -> str:
        kept = line.inputs.get(target)
        if kept is None:
            if (pid, target) in self._seen:  # an input of another segment: over, can't change
                raise CommandRejected("that input was in another segment and can't be undone now")
            self._early_undos[(pid, target)] = undo_id
            return ""
        if not _counts(kept):
            return ""
        line.withdraw(target)
        return target

    def _keep(self, line: _Line, entry: Entry, new: bool) -> None:
        self._seen.add((entry.participant_id, entry.client_id))
        line.keep(entry)
        if new:
            self._line_up(entry.participant_id, entry.segment_index, line)
        self.version += 1

    def _line_up(self, participant_id: int, segment_index: int, line: _Line) -> None:
        """File a participant's new line for a segment."""
        self._lines[(participant_id, segment_index)] = line
        self._segments.setdefault(segment_index, {})[participant_id] = line

    # -- rebuilding and correcting ----------------------------------------------------

    def restore(self, entries: Iterable[Entry], fixes: Iterable[Fix] = ()) -> None:
        """Load stored inputs (in the order they were taken) and corrections.

        An undo whose input hasn't arrived yet is remembered again, so that the
        input is still withdrawn when it comes after the restart.
        """
        undos: list[Entry] = []
        for entry in entries:
            line = self._lines.get((entry.participant_id, entry.segment_index))
            if line is None:
                line = _Line(kind=entry.kind)
                self._line_up(entry.participant_id, entry.segment_index, line)
            line.keep(entry)
            self._seen.add((entry.participant_id, entry.client_id))
            if entry.undoes:
                undos.append(entry)
            elif not entry.withdrawn:
                line.reps += _reps(entry)
        for undo in undos:
            if (undo.participant_id, undo.undoes) not in self._seen:
                self._early_undos[(undo.participant_id, undo.undoes)] = undo.client_id
        for fix in fixes:
            self._fixes[(fix.participant_id, fix.segment_index)] = fix.result
        self.version += 1

    def correct(self, fix: Fix) -> None:
        self._fixes[(fix.participant_id, fix.segment_index)] = fix.result
        self.version += 1

    def corrected(self, participant_id: int, segment_index: int) -> bool:
        """Whether the instructor's correction decides this result."""
        return (participant_id, segment_index) in self._fixes

    def dismiss(self, participant_id: int, segment_index: int) -> int:
        """The instructor judged a participant's flagged inputs in a segment plausible:
        they are flagged no more. Returns how many were."""
        line = self._lines.get((participant_id, segment_index))
        if line is None:
            return 0
        dismissed = 0
        for client_id, kept in line.inputs.items():
            if kept[_FLAGGED]:
                value, rounds, division, elapsed, undoes, withdrawn, _ = kept
                kept = (value, rounds, division, elapsed, undoes, withdrawn, False)
                line.inputs[client_id] = kept
                dismissed += 1
        if dismissed:
            self.version += 1
        return dismissed

    def remove(self, participant_id: int) -> None:
        self.removed.add(participant_id)
        self.version += 1

    # -- reading results ---------------------------------------------------------------

    def result(self, participant_id: int, segment_index: int) -> Tally | None:
        key = (participant_id, segment_index)
        if key in self._fixes:
            return self._fixes[key]
        line = self._lines.get(key)
        if line is None:
            return None
        return line.tally()

    def segment(
        self, segment_index: int, kind: ScoreKind
    ) -> tuple[dict[int, Tally], dict[int, Division]]:
        """Every participant's result for a segment, and the division they logged it in."""
        results: dict[int, Tally] = {}
        divisions: dict[int, Division] = {}
        removed = self.removed
        for pid, line in self._segments.get(segment_index, {}).items():
            if pid not in removed:
                result = line.result if line.known else line.tally()
                if result is not None:
                    results[pid] = result
                    divisions[pid] = line.division
        for (pid, index), fixed in self._fixes.items():  # corrections replace results
            if index != segment_index or pid in removed:
                continue
            if fixed is None:
                results.pop(pid, None)
                divisions.pop(pid, None)
            else:
                results[pid] = fixed
                divisions.setdefault(pid, Division.RX)
        return results, divisions

    def segments(self) -> set[int]:
        return set(self._segments) | {index for _, index in self._fixes}

    def flagged(self) -> list[Entry]:
        return [
            line.entry(pid, index, client_id)
            for (pid, index), line in self._lines.items()
            for client_id, kept in line.inputs.items()
            if kept[_FLAGGED] and not kept[_WITHDRAWN]
        ]

    def totals(self, kinds: Mapping[int, ScoreKind]) -> dict[int, int]:
        """Each participant's sum of first values over the segments in ``kinds``."""
        out: dict[int, int] = {}
        keys = dict.fromkeys([*self._lines, *self._fixes])  # a correction may be all there is
        for pid, index in keys:
            if index in kinds and pid not in self.removed:
                result = self.result(pid, index)
                if result is not None:
                    out[pid] = out.get(pid, 0) + result.first
        return out


RUNNING_SUMS = frozenset(
    {ScoreKind.REPS, ScoreKind.ROUNDS_REPS, ScoreKind.CALORIES, ScoreKind.DISTANCE}
)
"""Kinds whose result is a sum, kept up to date input by input (see :func:`tally`)."""


def _plus(kind: ScoreKind, result: Tally | None, entry: Entry) -> Tally:
    """``result`` with one more counted input of a summed kind, as :func:`tally` adds up."""
    before = result or Tally(0)
    if kind is ScoreKind.ROUNDS_REPS:
        return Tally(before.first + entry.rounds, before.second + entry.value)
    return Tally(before.first + entry.value)


def _reps(entry: Entry | CheckedScore) -> int:
    return entry.value if entry.kind in (ScoreKind.REPS, ScoreKind.ROUNDS_REPS) else 0
