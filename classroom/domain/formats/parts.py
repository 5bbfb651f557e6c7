"""Reading the parts of a routine: exercises, moves, targets, cues and segments.

:class:`PartReader` builds on :class:`ValueReader`: each method reads one part
of a routine from plain values, notes every problem at its path, and returns
the part, or None when something in it is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from classroom.domain import limits
from classroom.domain.durations import DurationSyntaxError, parse_duration
from classroom.domain.formats.source import child_path
from classroom.domain.formats.values import MISSING, ValueReader
from classroom.domain.routine import AuthoredCue, Move, Step
from classroom.domain.targets import Target
from classroom.domain.timeline import Exercise, Level, SegmentKind

STEP_KEYS = ("name", "duration", "exercise", "target", "score", "cues")
EXERCISE_KEYS = ("name", "beginner", "standard", "advanced", "equipment", "notes")
MOVE_KEYS = (*EXERCISE_KEYS, "reps")
TARGET_KEYS = ("reps", "rpe", "heart_rate_zone", "power", "power_end", "cadence")
CUE_KEYS = ("at", "before_end", "text")

_CUE_AT = re.compile(r"^at\s+(\S+)\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)
_CUE_BEFORE_END = re.compile(r"^(\S+)\s+before\s+the\s+end\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)


class PartReader(ValueReader):
    """Reads exercises, moves, targets, cues and single segments."""

    def exercise(self, value: object, path: str, *, reps: bool = False) -> Move | None:
        """An exercise (or, with ``reps``, a move): a name alone, or a mapping."""
        if isinstance(value, str):
            short = self.text(value, path)
            if not short:
                self.problem(path, "an exercise needs a name")
                return None
            return Move(exercise=Exercise(name=short))
        data = self.mapping(
            value, path, MOVE_KEYS if reps else EXERCISE_KEYS, "a move" if reps else "an exercise"
        )
        if data is None:
            return None
        name: str | None = None
        if data.get("name") is None:
            self.problem(path, "an exercise needs a name")
        else:
            name = self.text(data["name"], child_path(path, "name"))
            if name == "":
                self.problem(child_path(path, "name"), "an exercise needs a name")
        modifications: dict[Level, str] = {}
        for level in Level:
            if level.value in data:
                variant = self.text(data[level.value], child_path(path, level.value))
                if variant:
                    modifications[level] = variant
        equipment: list[str] = []
        if "equipment" in data:
            sub = child_path(path, "equipment")
            items = data["equipment"]
            items = [items] if isinstance(items, str) else items
            if not isinstance(items, list) or len(items) > limits.MAX_MOVES:
                self.problem(sub, "expected a list of equipment")
            else:
                for i, item in enumerate(items):
                    piece = self.text(item, child_path(sub, i))
                    if piece:
                        equipment.append(piece)
        notes = ""
        if "notes" in data:
            notes = (
                self.text(data["notes"], child_path(path, "notes"), maximum=limits.MAX_DESCRIPTION)
                or ""
            )
        count = None
        if reps and "reps" in data:
            count = self.integer(data["reps"], child_path(path, "reps"), 1, 10_000)
        if not isinstance(name, str) or not name:
            return None
        exercise = self.build(
            path,
            Exercise,
            name=name,
            modifications=modifications,
            equipment=tuple(equipment),
            notes=notes,
        )
        if exercise is None:
            return None
        return Move(exercise=exercise, reps=count)

    def exercises(self, value: object, path: str, what: str = "exercises") -> list[Exercise]:
        items = self.listing(value, path, what, limits.MAX_MOVES) or []
        found = [self.exercise(item, child_path(path, i)) for i, item in enumerate(items)]
        return [move.exercise for move in found if move is not None]

    def moves(self, value: object, path: str) -> list[Move] | None:
        items = self.listing(value, path, "moves", limits.MAX_MOVES)
        if items is None:
            return None
        found = [
            self.exercise(item, child_path(path, i), reps=True) for i, item in enumerate(items)
        ]
        moves = [move for move in found if move is not None]
        return moves if len(moves) == len(found) else None

    def target(self, value: object, path: str) -> Target | None:
        data = self.mapping(value, path, TARGET_KEYS, "a target")
        if data is None:
            return None
        fields: dict[str, Any] = {}
        bounds = {
            "reps": (1, 10_000),
            "rpe": (1, 10),
            "heart_rate_zone": (1, 5),
            "cadence": (1, 250),
        }
        for key, (low, high) in bounds.items():
            if key in data:
                fields[key] = self.integer(data[key], child_path(path, key), low, high)
        for key, name in (("power", "ftp_percent"), ("power_end", "ftp_percent_end")):
            if key in data:
                fields[name] = self.number(data[key], child_path(path, key), 0, 1000)
        if any(value is None for value in fields.values()):
            return None
        return self.build(path, Target, **fields)

    def cue(self, value: object, path: str) -> AuthoredCue | None:
        if isinstance(value, str):
            for pattern, key in ((_CUE_AT, "at_ms"), (_CUE_BEFORE_END, "before_end_ms")):
                match = pattern.match(value.strip())
                if match:
                    offset = self.offset(match.group(1), path)
                    text = self.text(match.group(2), path)
                    if offset is None or not text:
                        return None
                    return self.build(path, AuthoredCue, text=text, **{key: offset})
            self.problem(
                path, 'write a cue as "at 0:30: switch sides" or "10s before the end: last push"'
            )
            return None
        data = self.mapping(value, path, CUE_KEYS, "a cue")
        if data is None:
            return None
        text = self.text(self.require(data, "text", path, "a cue"), child_path(path, "text"))
        if ("at" in data) == ("before_end" in data):
            self.problem(path, "a cue needs either 'at' or 'before_end'")
            return None
        key = "at" if "at" in data else "before_end"
        offset = self.offset(data[key], child_path(path, key))
        if offset is None or not text:
            return None
        name = "at_ms" if key == "at" else "before_end_ms"
        return self.build(path, AuthoredCue, text=text, **{name: offset})

    def offset(self, value: object, path: str) -> int | None:
        try:
            ms = parse_duration(value)
        except DurationSyntaxError as error:
            self.problem(path, str(error))
            return None
        if ms < 0:
            self.problem(path, "a cue's time can't be negative")
            return None
        return ms

    def cues(self, data: dict[str, object], path: str) -> tuple[AuthoredCue, ...] | None:
        if "cues" not in data:
            return ()
        sub = child_path(path, "cues")
        items = self.listing(data["cues"], sub, "cues", limits.MAX_CUES_PER_PART)
        if items is None:
            return None
        found = [self.cue(item, child_path(sub, i)) for i, item in enumerate(items)]
        cues = [cue for cue in found if cue is not None]
        return tuple(cues) if len(cues) == len(found) else None

    def step(
        self,
        value: object,
        path: str,
        kind: SegmentKind,
        *,
        short: bool = True,
        keys: tuple[str, ...] = STEP_KEYS,
    ) -> Step | None:
        """A single segment; with ``short``, a bare duration is enough (``rest: 20s``)."""
        if short and not isinstance(value, dict):
            ms = self.duration(value, path)
            return None if ms is None else self.build(path, Step, kind=kind, duration_ms=ms)
        data = self.mapping(value, path, keys, "a segment")
        if data is None:
            return None
        ok = True
        fields: dict[str, Any] = {"kind": kind}
        raw = self.require(data, "duration", path, "a segment")
        if raw is not MISSING:
            fields["duration_ms"] = self.duration(raw, child_path(path, "duration"))
        if "name" in data:
            fields["name"] = self.text(data["name"], child_path(path, "name"))
        if "exercise" in data:
            move = self.exercise(data["exercise"], child_path(path, "exercise"))
            fields["exercise"] = move.exercise if move else None
            ok = ok and move is not None
        if "target" in data:
            fields["target"] = self.target(data["target"], child_path(path, "target"))
            ok = ok and fields["target"] is not None
        if "score" in data:
            fields["score"] = self.score(data["score"], child_path(path, "score"))
        fields["cues"] = self.cues(data, path)
        required = ("duration_ms", "name", "score", "cues")
        if (
            not ok
            or "duration_ms" not in fields
            or any(fields.get(key, "") is None for key in required)
        ):
            return None
        return self.build(path, Step, **fields)
