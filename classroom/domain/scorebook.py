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
from dataclasses import dataclass, field, replace

from classroom.domain.errors import CommandRejected
from classroom.domain.scoring import (
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """An input the book took: what the shell stores for it."""

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


@dataclass(slots=True)
class _Line:
    """One participant's inputs in one segment."""

    kind: ScoreKind
    inputs: dict[str, Entry] = field(default_factory=dict)  # by client id, in arrival order
    reps: int = 0  # live rep count, for plausibility
    known: bool = False  # whether ``result`` is up to date with ``inputs``
    result: Tally | None = None

    def keep(self, entry: Entry) -> None:
        """Add an input; a sum is kept up to date as it goes (boards read it many times)."""
        self.inputs[entry.client_id] = entry
        if entry.withdrawn or entry.undoes:
            return
        if self.known and self.kind in RUNNING_SUMS:
            self.result = _plus(self.kind, self.result, entry)
        else:
            self.known = False

    def tally(self) -> Tally | None:
        if not self.known:
            self.result = tally(self.kind, _counted(self))
            self.known = True
        return self.result

    @property
    def division(self) -> Division:
        """The division of the latest input that counts (Rx when none does).

        Read from the inputs rather than kept as a field, so that an undo (or an
        input withdrawn on arrival) can't leave the division of an input that no
        longer counts, and a restored book agrees with the live one.
        """
        for entry in reversed(self.inputs.values()):
            if not entry.withdrawn and not entry.undoes:
                return entry.division
        return Division.RX


@dataclass(frozen=True, slots=True)
class Taken:
    """What taking an input did: ``entry`` to store (None: a duplicate), ``withdraws`` to mark."""

    entry: Entry | None
    withdraws: str = ""


class ScoreBook:
    def __init__(self) -> None:
        self._seen: set[tuple[int, str]] = set()
        self._lines: dict[tuple[int, int], _Line] = {}
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
            return Taken(None)
        line = self._lines.get((pid, score.segment_index))
        if line is None:
            line = _Line(kind=checked.kind)
        if score.undoes:
            entry = self._entry(score, checked, undoes=score.undoes)
            withdraws = self._withdraw(pid, line, score.undoes, score.client_id)
            self._keep(line, entry, score)
            return Taken(entry, withdraws)
        if checked.kind is ScoreKind.TIME and any(
            not e.withdrawn and not e.undoes for e in line.inputs.values()
        ):
            raise CommandRejected(ALREADY_FINISHED)
        withdrawn = self._early_undos.pop((pid, score.client_id), None) is not None
        reps = line.reps + (0 if withdrawn else _reps(checked))
        flagged = not withdrawn and implausible(
            checked.kind, reps, checked.elapsed_ms, checked.max_reps_per_second
        )
        entry = self._entry(score, checked, withdrawn=withdrawn, flagged=flagged)
        line.reps = reps
        self._keep(line, entry, score)
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
        entry = line.inputs.get(target)
        if entry is None:
            if (pid, target) in self._seen:  # an input of another segment: over, can't change
                raise CommandRejected("that input was in another segment and can't be undone now")
            self._early_undos[(pid, target)] = undo_id
            return ""
        if entry.withdrawn or entry.undoes:
            return ""
        line.inputs[target] = replace(entry, withdrawn=True)
        line.known = False
        line.reps -= _reps(entry)
        return target

    def _keep(self, line: _Line, entry: Entry, score: ScoreInput) -> None:
        self._seen.add((entry.participant_id, entry.client_id))
        line.keep(entry)
        self._lines[(entry.participant_id, score.segment_index)] = line
        self.version += 1

    # -- rebuilding and correcting ----------------------------------------------------

    def restore(self, entries: Iterable[Entry], fixes: Iterable[Fix] = ()) -> None:
        """Load stored inputs (in the order they were taken) and corrections.

        An undo whose input hasn't arrived yet is remembered again, so that the
        input is still withdrawn when it comes after the restart.
        """
        undos: list[Entry] = []
        for entry in entries:
            line = self._lines.setdefault(
                (entry.participant_id, entry.segment_index), _Line(kind=entry.kind)
            )
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
        pids = {pid for pid, index in self._lines if index == segment_index}
        pids |= {pid for pid, index in self._fixes if index == segment_index}
        for pid in pids - self.removed:
            result = self.result(pid, segment_index)
            if result is not None:
                results[pid] = result
                line = self._lines.get((pid, segment_index))
                divisions[pid] = line.division if line else Division.RX
        return results, divisions

    def segments(self) -> set[int]:
        return {index for _, index in self._lines} | {index for _, index in self._fixes}

    def flagged(self) -> list[Entry]:
        return [
            entry
            for line in self._lines.values()
            for entry in line.inputs.values()
            if entry.flagged and not entry.withdrawn
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


def _counted(line: _Line) -> list[Logged]:
    return [
        Logged(value=e.value, rounds=e.rounds)
        for e in line.inputs.values()
        if not e.withdrawn and not e.undoes
    ]


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
