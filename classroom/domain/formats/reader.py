"""The text format, read: plain values (from YAML or JSON) into a :class:`Routine`.

The reader never stops at the first problem. It checks everything it can and
raises one :class:`RoutineFormatError` listing every problem, each with the
path it sits at (``blocks[2].rounds``) and, for YAML, the line. docs/routines.md
describes the format; ``routine.schema.json`` publishes it as a JSON Schema.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, cast

from classroom.domain import limits
from classroom.domain.durations import DurationSyntaxError, parse_duration
from classroom.domain.errors import Problem, RoutineFormatError
from classroom.domain.formats.parts import STEP_KEYS, PartReader
from classroom.domain.formats.source import Document, child_path
from classroom.domain.formats.values import MISSING
from classroom.domain.routine import (
    Amrap,
    Block,
    Circuit,
    CueSettings,
    Emom,
    ForTime,
    Intervals,
    Move,
    Repeat,
    Routine,
    Tabata,
)
from classroom.domain.timeline import Exercise, SegmentKind

FORMAT_VERSION = 1

STEP_TYPES = {kind.value: kind for kind in SegmentKind}
BLOCK_TYPES = (*STEP_TYPES, "intervals", "tabata", "emom", "amrap", "for_time", "circuit", "repeat")
ROUTINE_KEYS = (
    "version",
    "title",
    "description",
    "author",
    "lead_in",
    "max_reps_per_second",
    "auto_cues",
    "cues",
    "blocks",
)
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


def routine_from_document(document: Document) -> Routine:
    """The routine a document describes; raise :class:`RoutineFormatError` listing all problems."""
    reader = _Reader(document.lines)
    routine = reader.routine(document.value)
    if reader.problems or routine is None:
        raise RoutineFormatError(reader.problems or [Problem("", "this isn't a routine")])
    return routine


class _Reader(PartReader):
    """Reads a routine's parts into the model."""

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
            if "exercise" in data:
                move = self.exercise(data["exercise"], child_path(path, "exercise"))
                fields["exercises"] = (move.exercise,) if move else None
            get("exercises", "exercises", lambda v, p: tuple(self.exercises(v, p)) or None)
            get("rounds", "rounds", lambda v, p: self.integer(v, p, 1, limits.MAX_ROUNDS))
            get("work", "work_ms", self.duration)
            get("rest", "rest_ms", self.duration)
            get("score", "score", self.score)
            if ("exercise" in data) == ("exercises" in data):  # after the rest: report it all
                self.problem(path, "a Tabata needs 'exercise' (one) or 'exercises' (a list)")
                fields["exercises"] = None
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
        if "max_reps_per_second" in data:
            fields["max_reps_per_second"] = self._rate(data["max_reps_per_second"])
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

    def _rate(self, value: object) -> float | None:
        top = limits.MAX_REPS_PER_SECOND
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= top:
            self.problem("max_reps_per_second", f"a number of reps above 0 and at most {top:g}")
            return None
        return float(value)

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
