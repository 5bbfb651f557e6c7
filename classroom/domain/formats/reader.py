"""The text format, read: plain values (from YAML or JSON) into a :class:`Routine`.

The reader never stops at the first problem. It checks everything it can and
raises one :class:`RoutineFormatError` listing every problem, each with the
path it sits at (``blocks[2].rounds``) and, for YAML, the line. docs/routines.md
describes the format; ``routine.schema.json`` publishes it as a JSON Schema.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, cast

from classroom.domain import limits
from classroom.domain.durations import DurationSyntaxError, parse_duration
from classroom.domain.errors import Problem, RoutineFormatError
from classroom.domain.formats.source import Document, child_path
from classroom.domain.formats.values import MISSING, ValueReader
from classroom.domain.routine import (
    Amrap,
    AuthoredCue,
    Block,
    Circuit,
    CueSettings,
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
from classroom.domain.timeline import Exercise, Level, SegmentKind

FORMAT_VERSION = 1

STEP_TYPES = {kind.value: kind for kind in SegmentKind}
BLOCK_TYPES = (*STEP_TYPES, "intervals", "tabata", "emom", "amrap", "for_time", "circuit", "repeat")
ROUTINE_KEYS = (
    "version",
    "title",
    "description",
    "author",
    "lead_in",
    "auto_cues",
    "cues",
    "blocks",
)
STEP_KEYS = ("name", "duration", "exercise", "target", "score", "cues")
EXERCISE_KEYS = ("name", "beginner", "standard", "advanced", "equipment", "notes")
MOVE_KEYS = (*EXERCISE_KEYS, "reps")
TARGET_KEYS = ("reps", "rpe", "heart_rate_zone", "power", "power_end", "cadence")
CUE_KEYS = ("at", "before_end", "text")
AUTO_CUE_KEYS = ("countdown", "halfway", "next", "last_round", "lead_in")
BLOCK_KEYS: dict[str, tuple[str, ...]] = {
    "intervals": ("rounds", "work", "rest", "exercises", "cues"),
    "tabata": ("exercises", "exercise", "rounds", "work", "rest", "score", "cues"),
    "emom": ("minutes", "rounds", "every", "moves", "score", "cues"),
    "amrap": ("name", "duration", "moves", "cues"),
    "for_time": ("name", "cap", "rounds", "moves", "cues"),
    "circuit": ("stations", "rounds", "work", "rotate", "round_rest", "score", "cues"),
    "repeat": ("times", "blocks", "rest", "cues"),
} | dict.fromkeys(STEP_TYPES, STEP_KEYS)

_CUE_AT = re.compile(r"^at\s+(\S+)\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)
_CUE_BEFORE_END = re.compile(r"^(\S+)\s+before\s+the\s+end\s*:\s*(.+)$", re.IGNORECASE | re.DOTALL)


def routine_from_document(document: Document) -> Routine:
    """The routine a document describes; raise :class:`RoutineFormatError` listing all problems."""
    reader = _Reader(document.lines)
    routine = reader.routine(document.value)
    if reader.problems or routine is None:
        raise RoutineFormatError(reader.problems or [Problem("", "this isn't a routine")])
    return routine


class _Reader(ValueReader):
    """Reads a routine's parts into the model."""

    # -- parts of a routine ------------------------------------------------------

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

    # -- blocks and the routine ----------------------------------------------------

    def block(self, value: object, path: str, depth: int) -> Block | None:
        if not isinstance(value, dict):
            self.problem(path, "expected a block (a set of 'key: value' lines starting with type)")
            return None
        kind = value.get("type")
        if not isinstance(kind, str) or kind not in BLOCK_TYPES:
            hint = difflib.get_close_matches(str(kind), BLOCK_TYPES, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            given = "no type" if kind is None else f"unknown type {kind!r}"
            self.problem(
                child_path(path, "type"), f"{given}{suggestion} (one of: {', '.join(BLOCK_TYPES)})"
            )
            return None
        data = self.mapping(value, path, ("type", *BLOCK_KEYS[kind]), f"a {kind} block")
        if data is None:
            return None
        if kind in STEP_TYPES:
            return self.step(data, path, STEP_TYPES[kind], short=False, keys=("type", *STEP_KEYS))
        fields: dict[str, Any] = {"cues": self.cues(data, path)}
        get = self._getter(data, path, fields)
        factory: Callable[..., Block]
        if kind == "intervals":
            factory = Intervals
            get(
                "rounds",
                "rounds",
                lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS),
                required=True,
            )
            get("work", "work", lambda v, p: self.step(v, p, SegmentKind.WORK), required=True)
            get("rest", "rest", lambda v, p: self.step(v, p, SegmentKind.REST))
            get("exercises", "exercises", lambda v, p: tuple(self.exercises(v, p)) or None)
        elif kind == "tabata":
            factory = Tabata
            if ("exercise" in data) == ("exercises" in data):
                self.problem(path, "a Tabata needs 'exercise' (one) or 'exercises' (a list)")
                return None
            if "exercise" in data:
                move = self.exercise(data["exercise"], child_path(path, "exercise"))
                fields["exercises"] = (move.exercise,) if move else None
            get("exercises", "exercises", lambda v, p: tuple(self.exercises(v, p)) or None)
            get("rounds", "rounds", lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS))
            get("work", "work_ms", self.duration)
            get("rest", "rest_ms", self.duration)
            get("score", "score", self.score)
        elif kind == "emom":
            factory = Emom
            if ("minutes" in data) == ("rounds" in data):
                self.problem(path, "an EMOM needs 'minutes' or 'rounds' (with 'every')")
                return None
            if "minutes" in data and "every" in data:
                self.problem(child_path(path, "every"), "use 'rounds' with 'every', not 'minutes'")
                return None
            for key in ("minutes", "rounds"):
                get(key, "rounds", lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS))
            get("every", "every_ms", self.duration)
            get("moves", "moves", self._moves, required=True)
            get("score", "score", self.score)
        elif kind == "amrap":
            factory = Amrap
            get("name", "name", self.text)
            get("duration", "duration_ms", self.duration, required=True)
            get("moves", "moves", self._moves, required=True)
        elif kind == "for_time":
            factory = ForTime
            get("name", "name", self.text)
            get("cap", "cap_ms", self.duration, required=True)
            get("rounds", "rounds", lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS))
            get("moves", "moves", self._moves, required=True)
        elif kind == "circuit":
            factory = Circuit
            get(
                "stations",
                "stations",
                lambda v, p: self._all(self.exercises(v, p, "stations"), v),
                required=True,
            )
            get("rounds", "rounds", lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS))
            get("work", "work_ms", self.duration)
            get("rotate", "rotate_ms", self._optional_duration)
            get("round_rest", "round_rest_ms", self._optional_duration)
            get("score", "score", self.score)
        else:
            factory = Repeat
            get(
                "times",
                "times",
                lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS),
                required=True,
            )
            get("rest", "rest", lambda v, p: self.step(v, p, SegmentKind.REST))
            if depth >= limits.MAX_NESTING:
                self.problem(
                    child_path(path, "blocks"),
                    f"blocks can be nested at most {limits.MAX_NESTING} deep",
                )
                return None
            get("blocks", "blocks", lambda v, p: self.blocks(v, p, depth + 1), required=True)
        if any(value is None for value in fields.values()):
            return None
        return cast("Block | None", self.build(path, factory, **fields))

    def _getter(
        self, data: dict[str, object], path: str, fields: dict[str, Any]
    ) -> Callable[..., None]:
        def get(
            key: str, name: str, read: Callable[[object, str], Any], *, required: bool = False
        ) -> None:
            if key in data:
                fields[name] = read(data[key], child_path(path, key))
            elif required:
                self.problem(path, f"this block needs '{key}'")
                fields[name] = None

        return get

    def _moves(self, value: object, path: str) -> tuple[Move, ...] | None:
        moves = self.moves(value, path)
        return None if moves is None else tuple(moves)

    def _all(self, exercises: list[Exercise], value: object) -> tuple[Exercise, ...] | None:
        complete = isinstance(value, list) and len(exercises) == len(value) and exercises
        return tuple(exercises) if complete else None

    def _optional_duration(self, value: object, path: str) -> int | None:
        if value in (0, "0", "0s", "0:00"):
            return 0
        return self.duration(value, path)

    def blocks(self, value: object, path: str, depth: int) -> tuple[Block, ...] | None:
        items = self.listing(value, path, "blocks", limits.MAX_SEGMENTS)
        if items is None:
            return None
        found = [self.block(item, child_path(path, i), depth) for i, item in enumerate(items)]
        blocks = [block for block in found if block is not None]
        return tuple(blocks) if len(blocks) == len(found) else None

    def routine(self, value: object) -> Routine | None:
        data = self.mapping(value, "", ROUTINE_KEYS, "a routine")
        if data is None:
            return None
        if "version" in data and data["version"] != FORMAT_VERSION:
            self.problem(
                "version",
                f"this is format version {FORMAT_VERSION}; remove 'version'"
                f" or set it to {FORMAT_VERSION}",
            )
        fields: dict[str, Any] = {}
        title = self.require(data, "title", "", "a routine")
        if title is not MISSING:
            fields["title"] = self.text(title, "title")
        if "description" in data:
            fields["description"] = self.text(
                data["description"], "description", maximum=limits.MAX_DESCRIPTION
            )
        if "author" in data:
            fields["author"] = self.text(data["author"], "author")
        if "lead_in" in data:
            fields["lead_in_ms"] = self._lead_in(data["lead_in"])
        if "auto_cues" in data:
            fields["auto_cues"] = self._auto_cues(data["auto_cues"])
        fields["cues"] = self.cues(data, "")
        blocks = self.require(data, "blocks", "", "a routine")
        fields["blocks"] = None if blocks is MISSING else self.blocks(blocks, "blocks", 1)
        if "title" not in fields or any(value is None for value in fields.values()):
            return None
        return self.build("", Routine, **fields)

    def _lead_in(self, value: object) -> int | None:
        try:
            ms = parse_duration(value)
        except DurationSyntaxError as error:
            self.problem("lead_in", str(error))
            return None
        if not 0 <= ms <= limits.MAX_LEAD_IN_MS:
            self.problem(
                "lead_in", f"the lead-in must last 0 to {limits.MAX_LEAD_IN_MS // 1000} seconds"
            )
            return None
        return ms

    def _auto_cues(self, value: object) -> CueSettings | None:
        data = self.mapping(value, "auto_cues", AUTO_CUE_KEYS, "the generated cues")
        if data is None:
            return None
        flags: dict[str, bool] = {}
        for key in data:
            flag = self.boolean(data[key], child_path("auto_cues", key))
            if flag is None:
                return None
            flags[key] = flag
        return CueSettings(**flags)
