"""The routine builder's form: blocks as rows of fields, checked as the instructor types.

Pure translation between the builder's form fields and the routine text format
(see docs/routines.md), and the views the builder and the timeline bar draw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from classroom.domain import limits
from classroom.domain.compiler import compile_routine
from classroom.domain.durations import format_duration
from classroom.domain.errors import DomainError, Problem, RoutineFormatError
from classroom.domain.formats.source import child_path
from classroom.domain.formats.text import parse_routine, routine_from_data
from classroom.domain.routine import Routine
from classroom.domain.timeline import ScoreKind, Timeline
from classroom.routine_files import FILE_TOO_LARGE, LONG_TITLE, TITLE_MAX

STEP_KINDS = ("warmup", "work", "rest", "transition", "cooldown")
BUILDER_KINDS = (*STEP_KINDS, "intervals", "tabata", "emom", "amrap", "for_time")
KIND_TITLES = {
    "warmup": "Warm-up",
    "work": "Work",
    "rest": "Rest",
    "transition": "Transition",
    "cooldown": "Cool-down",
    "intervals": "Intervals",
    "tabata": "Tabata",
    "emom": "EMOM",
    "amrap": "AMRAP",
    "for_time": "For Time",
    "circuit": "Circuit",
    "repeat": "Repeat",
}
KIND_MARKS = {"warmup": "W", "work": "★", "rest": "R", "transition": "T", "cooldown": "C"}


# -- the builder's form --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A field of a block in the builder: the form key, its label, what it holds."""

    key: str
    label: str
    kind: str  # "text", "duration" or "count"
    hint: str = ""


_STEP_FIELDS = (
    Field("name", "Name", "text", "optional"),
    Field("duration", "Duration", "duration", "0:30, 45s, 2m"),
)
FIELDS: dict[str, tuple[Field, ...]] = dict.fromkeys(STEP_KINDS, _STEP_FIELDS) | {
    "intervals": (
        Field("rounds", "Rounds", "count"),
        Field("work", "Work", "duration", "0:40"),
        Field("rest", "Rest", "duration", "optional"),
    ),
    "tabata": (
        Field("rounds", "Rounds", "count", "8 if empty"),
        Field("work", "Work", "duration", "0:20 if empty"),
        Field("rest", "Rest", "duration", "0:10 if empty"),
    ),
    "emom": (
        Field("rounds", "Rounds", "count", "one a minute"),
        Field("every", "Every", "duration", "1:00 if empty"),
    ),
    "amrap": (
        Field("name", "Name", "text", "optional"),
        Field("duration", "Time box", "duration", "12:00"),
    ),
    "for_time": (
        Field("name", "Name", "text", "optional"),
        Field("duration", "Time cap", "duration", "15:00"),
        Field("rounds", "Rounds", "count", "1 if empty"),
    ),
}
# Where a block keeps its exercises, and whether they carry reps (moves do).
EXERCISES_KEY = dict.fromkeys(STEP_KINDS, "exercise") | {
    "intervals": "exercises",
    "tabata": "exercises",
    "emom": "moves",
    "amrap": "moves",
    "for_time": "moves",
}
# What a block's phones score, for the blocks where the instructor chooses (an AMRAP is
# always rounds + reps, a For Time always a time): the choices, and each kind's default,
# the text format's own (what a block without ``score`` scores).
SCORE_CHOICES = (
    ("none", "Not scored"),
    ("reps", "Reps"),
    ("rounds_reps", "Rounds + reps"),
    ("time", "Time"),
    ("load", "Weight (kg)"),
    ("calories", "Calories"),
    ("distance", "Distance (m)"),
    ("effort", "Effort (RPE)"),
)
SCORE_DEFAULTS = {"work": "none", "intervals": "none", "tabata": "reps", "emom": "none"}
FIXED_SCORES = {"amrap": "Scored in rounds + reps", "for_time": "Scored as a time"}
# A block the builder adds scores this: a sensible start for each kind.
NEW_BLOCK_SCORES = {"intervals": "reps", "tabata": "reps", "emom": "reps"}
# Keys of the text format that a different form field edits.
FORM_KEYS = {"cap": "duration", "minutes": "rounds"}


@dataclass(slots=True)
class ExerciseRow:
    name: str = ""
    beginner: str = ""
    advanced: str = ""
    reps: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_json(self) -> str:
        return json.dumps(self.extra, ensure_ascii=False, allow_nan=False)


@dataclass(slots=True)
class BlockRow:
    type: str
    values: dict[str, str] = field(default_factory=dict)
    exercises: list[ExerciseRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.type, self.type or "Block")

    @property
    def editable(self) -> bool:
        return self.type in BUILDER_KINDS

    @property
    def fields(self) -> tuple[Field, ...]:
        return FIELDS.get(self.type, ())

    @property
    def with_reps(self) -> bool:
        return EXERCISES_KEY.get(self.type) == "moves"

    @property
    def scored(self) -> bool:
        """Whether the instructor chooses what this block scores."""
        return self.type in SCORE_DEFAULTS

    @property
    def fixed_score(self) -> str:
        return FIXED_SCORES.get(self.type, "")

    @property
    def max_exercises(self) -> int:
        return 1 if self.type in STEP_KINDS else limits.MAX_MOVES

    @property
    def extra_json(self) -> str:
        return json.dumps(self.extra, ensure_ascii=False, allow_nan=False)


@dataclass(slots=True)
class BuilderState:
    title: str = ""
    description: str = ""
    blocks: list[BlockRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_json(self) -> str:
        return json.dumps(self.extra, ensure_ascii=False, allow_nan=False)


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _plain_mapping(text: object) -> dict[str, Any]:
    """A JSON object from a hidden field; anything else (or too deep) counts as empty."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(value, dict) or _depth(value) > limits.MAX_TEXT_DEPTH:
        return {}
    return value


def exercise_row(value: object) -> ExerciseRow:
    data: dict[str, Any] = dict(value) if isinstance(value, dict) else {"name": _text(value)}
    return ExerciseRow(
        name=_text(data.get("name")),
        beginner=_text(data.get("beginner")),
        advanced=_text(data.get("advanced")),
        reps=_text(data.get("reps")),
        extra=data,
    )


def _duration_of(value: object) -> str:
    """A step written either as a bare duration or as a mapping with one."""
    return _text(value.get("duration")) if isinstance(value, dict) else _text(value)


def block_row(data: Mapping[str, Any]) -> BlockRow:
    """The builder's row for a block, from the text format's values."""
    kind = _text(data.get("type"))
    row = BlockRow(type=kind, extra=dict(data))
    if kind not in BUILDER_KINDS:
        return row
    values = row.values
    if kind in SCORE_DEFAULTS:
        scoring = data.get("work") if kind == "intervals" else data
        found = scoring.get("score") if isinstance(scoring, dict) else None
        values["score"] = _text(found) or SCORE_DEFAULTS[kind]
    if kind in STEP_KINDS:
        values["name"] = _text(data.get("name"))
        values["duration"] = _text(data.get("duration"))
        if "exercise" in data:
            row.exercises = [exercise_row(data["exercise"])]
        return row
    if kind in ("intervals", "tabata"):
        values["rounds"] = _text(data.get("rounds"))
        values["work"] = _duration_of(data.get("work"))
        values["rest"] = _duration_of(data.get("rest"))
        items = data.get("exercises")
        if kind == "tabata" and "exercise" in data:
            items = [data["exercise"]]
    elif kind == "emom":
        values["rounds"] = _text(data.get("minutes", data.get("rounds")))
        values["every"] = _text(data.get("every"))
        items = data.get("moves")
    else:
        values["name"] = _text(data.get("name"))
        values["duration"] = _text(data.get("cap" if kind == "for_time" else "duration"))
        if kind == "for_time":
            values["rounds"] = _text(data.get("rounds"))
        items = data.get("moves")
    if isinstance(items, list):
        row.exercises = [exercise_row(item) for item in items[: limits.MAX_MOVES + 1]]
    return row


def builder_state(data: Mapping[str, Any]) -> BuilderState:
    """The builder's state for a routine written as the text format's values."""
    blocks = data.get("blocks")
    rows = [
        block_row(item) if isinstance(item, dict) else BlockRow(type="")
        for item in (blocks if isinstance(blocks, list) else [])[: limits.MAX_SEGMENTS]
    ]
    extra = {k: v for k, v in data.items() if k not in ("title", "description", "blocks")}
    return BuilderState(
        title=_text(data.get("title")),
        description=_text(data.get("description")),
        blocks=rows,
        extra=extra,
    )


def state_from_form(form: FormData) -> BuilderState:
    """The builder's state as the browser sent it."""

    def get(key: str) -> str:
        value = form.get(key)
        return value.strip() if isinstance(value, str) else ""

    blocks = []
    for i in range(limits.MAX_SEGMENTS):
        prefix = f"b-{i}-"
        if f"{prefix}type" not in form:
            break
        row = BlockRow(type=get(f"{prefix}type"), extra=_plain_mapping(form.get(f"{prefix}extra")))
        for spec in row.fields:
            row.values[spec.key] = get(prefix + spec.key)
        if row.scored:
            row.values["score"] = get(f"{prefix}score")[:20] or SCORE_DEFAULTS[row.type]
        for j in range(limits.MAX_MOVES + 1):
            ex = f"{prefix}x-{j}-"
            if f"{ex}name" not in form:
                break
            row.exercises.append(
                ExerciseRow(
                    name=get(f"{ex}name"),
                    beginner=get(f"{ex}beginner"),
                    advanced=get(f"{ex}advanced"),
                    reps=get(f"{ex}reps"),
                    extra=_plain_mapping(form.get(f"{ex}extra")),
                )
            )
        blocks.append(row)
    return BuilderState(
        title=get("title"),
        description=get("description"),
        blocks=blocks,
        extra=_plain_mapping(form.get("extra")),
    )


def _count(text: str) -> object:
    """A whole number as a number (so the reader checks its range), else the text."""
    return int(text) if re.fullmatch(r"-?\d{1,12}", text) else text


def _put(data: dict[str, Any], key: str, value: object) -> None:
    if value == "":
        data.pop(key, None)
    else:
        data[key] = value


def _put_step(data: dict[str, Any], key: str, duration: str) -> None:
    """Set a nested step's duration, keeping its name, exercise or cues if it has them."""
    current = data.get(key)
    if duration == "":
        data.pop(key, None)
    elif isinstance(current, dict):
        data[key] = {**current, "duration": duration}
    else:
        data[key] = duration


def _score_work(data: dict[str, Any], score: str) -> None:
    """An Intervals block scores its work step: ``work: {duration: 0:40, score: reps}``."""
    work = data.get("work")
    if score in ("", "none"):
        if isinstance(work, dict):
            rest = {k: v for k, v in work.items() if k != "score"}
            data["work"] = rest if set(rest) != {"duration"} else rest["duration"]
        return
    if isinstance(work, dict):
        data["work"] = {**work, "score": score}
    elif isinstance(work, str) and work:
        data["work"] = {"duration": work, "score": score}


def exercise_data(row: ExerciseRow, *, reps: bool) -> dict[str, Any]:
    data = {k: v for k, v in row.extra.items() if k != "reps" or reps}
    data["name"] = row.name
    _put(data, "beginner", row.beginner)
    _put(data, "advanced", row.advanced)
    if reps:
        _put(data, "reps", _count(row.reps))
    return data


def block_data(row: BlockRow) -> dict[str, Any]:
    """A builder row as the text format's values (what the reader reads)."""
    data: dict[str, Any] = {"type": row.type, **{k: v for k, v in row.extra.items() if k != "type"}}
    kind, values = row.type, row.values
    if kind not in BUILDER_KINDS:
        return data
    exercises = [exercise_data(ex, reps=row.with_reps) for ex in row.exercises]
    if kind in SCORE_DEFAULTS and kind != "intervals":
        score = values.get("score", "")
        _put(data, "score", "" if score == SCORE_DEFAULTS[kind] else score)
    if kind in STEP_KINDS:
        _put(data, "name", values.get("name", ""))
        _put(data, "duration", values.get("duration", ""))
        _put(data, "exercise", exercises[0] if exercises else "")
    elif kind in ("intervals", "tabata"):
        _put(data, "rounds", _count(values.get("rounds", "")))
        if kind == "intervals":
            _put_step(data, "work", values.get("work", ""))
            _put_step(data, "rest", values.get("rest", ""))
            _score_work(data, values.get("score", "none"))
        else:
            _put(data, "work", values.get("work", ""))
            _put(data, "rest", values.get("rest", ""))
            data.pop("exercise", None)
        if exercises or kind == "tabata":
            data["exercises"] = exercises
        else:
            data.pop("exercises", None)
    elif kind == "emom":
        for key in ("minutes", "rounds", "every"):
            data.pop(key, None)
        rounds, every = _count(values.get("rounds", "")), values.get("every", "")
        if every:
            _put(data, "rounds", rounds)
            data["every"] = every
        else:
            _put(data, "minutes", rounds)
        data["moves"] = exercises
    else:
        _put(data, "name", values.get("name", ""))
        _put(data, "cap" if kind == "for_time" else "duration", values.get("duration", ""))
        if kind == "for_time":
            _put(data, "rounds", _count(values.get("rounds", "")))
        data["moves"] = exercises
    return data


def routine_data(state: BuilderState) -> dict[str, Any]:
    """The builder's state as the text format's values, title first."""
    data: dict[str, Any] = {"title": state.title}
    if state.description:
        data["description"] = state.description
    for key, value in state.extra.items():
        if key not in ("title", "description", "blocks"):
            data[key] = value
    data["blocks"] = [block_data(row) for row in state.blocks]
    return data


def apply_action(state: BuilderState, action: str, new_kind: str) -> None:
    """Add, move or remove a block or an exercise, as a builder button asks."""
    name, _, rest = action.partition(":")
    numbers = [int(n) for n in rest.split(":") if n.isdigit()]
    blocks = state.blocks
    i = numbers[0] if numbers else -1
    if name == "add" and new_kind in BUILDER_KINDS and len(blocks) < limits.MAX_SEGMENTS:
        blocks.append(new_block(new_kind))
    elif not 0 <= i < len(blocks):
        return
    elif name == "up" and i > 0:
        blocks[i - 1], blocks[i] = blocks[i], blocks[i - 1]
    elif name == "down" and i < len(blocks) - 1:
        blocks[i + 1], blocks[i] = blocks[i], blocks[i + 1]
    elif name == "remove":
        del blocks[i]
    elif name == "add-ex" and len(blocks[i].exercises) < blocks[i].max_exercises:
        blocks[i].exercises.append(ExerciseRow())
    elif name == "remove-ex" and len(numbers) == 2 and 0 <= numbers[1] < len(blocks[i].exercises):
        del blocks[i].exercises[numbers[1]]


def new_block(kind: str) -> BlockRow:
    """A new block with values that run as they are, for the instructor to change."""
    starters: dict[str, dict[str, Any]] = {
        "warmup": {"duration": "5:00"},
        "work": {"duration": "0:40"},
        "rest": {"duration": "0:20"},
        "transition": {"duration": "0:15"},
        "cooldown": {"duration": "5:00"},
        "intervals": {"rounds": 4, "work": "0:40", "rest": "0:20"},
        "tabata": {"exercises": [{"name": "Squats"}]},
        "emom": {"minutes": 10, "moves": [{"name": "Burpees", "reps": 10}]},
        "amrap": {"duration": "12:00", "moves": [{"name": "Push-ups", "reps": 10}]},
        "for_time": {"cap": "15:00", "moves": [{"name": "Air squats", "reps": 50}]},
    }
    row = block_row({"type": kind, **starters[kind]})
    if kind in NEW_BLOCK_SCORES:
        row.values["score"] = NEW_BLOCK_SCORES[kind]
    return row


# -- checking a routine --------------------------------------------------------------


@dataclass(slots=True)
class Checked:
    """A routine read and compiled, or the problems that stop it."""

    routine: Routine | None = None
    timeline: Timeline | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.timeline is not None and not self.problems

    @property
    def unscored(self) -> bool:
        """A routine that runs, with nothing for the phones to score."""
        return self.timeline is not None and all(
            segment.score_kind is ScoreKind.NONE for segment in self.timeline.segments
        )


def _compiled(routine: Routine) -> Checked:
    problems = []
    if len(routine.title) > TITLE_MAX:
        problems.append(Problem("title", LONG_TITLE))
    try:
        timeline = compile_routine(routine)
    except DomainError as error:
        return Checked(routine, None, [*problems, Problem("", str(error))])
    return Checked(routine, timeline, problems)


def check_data(data: object) -> Checked:
    try:
        routine = routine_from_data(data)
    except RoutineFormatError as error:
        return Checked(problems=list(error.problems))
    except DomainError as error:
        return Checked(problems=[Problem("", str(error))])
    return _compiled(routine)


def check_text(text: str, text_format: str = "yaml") -> Checked:
    if len(text.encode()) > limits.MAX_FILE_BYTES:
        size = len(text.encode())
        message = FILE_TOO_LARGE.format(size=size, limit=limits.MAX_FILE_BYTES)
        return Checked(problems=[Problem("", message)])
    try:
        routine = parse_routine(text, "json" if text_format == "json" else "yaml")
    except RoutineFormatError as error:
        return Checked(problems=list(error.problems))
    except DomainError as error:
        return Checked(problems=[Problem("", str(error))])
    return _compiled(routine)


_BLOCK_PATH = re.compile(r"^blocks\[(\d+)\](.*)$")
_SUB_PATH = re.compile(r"^\.(\w+)(?:\[(\d+)\])?")
_NEEDS = re.compile(r"needs '(\w+)'")
_NAMED = re.compile(r"^(\w+): (.+)$", re.DOTALL)
_NAMEABLE = ("title", "description", "rounds", "exercises", "moves", "work", "rest", "every")


def problem_slots(state: BuilderState, problems: Iterable[Problem]) -> dict[str, list[str]]:
    """Problems by where the builder shows them: a field, an exercise, a block, the routine."""
    slots: dict[str, list[str]] = {}
    for problem in problems:
        slot, message = _slot(state, problem)
        slots.setdefault(slot, []).append(message)
    return slots


def _slot(state: BuilderState, problem: Problem) -> tuple[str, str]:
    path, message = problem.path, problem.message
    named = _NAMED.match(message)
    if named and named.group(1) in _NAMEABLE:
        # A value's own check names its field in the message ("rounds: must be …").
        path, message = child_path(path, named.group(1)), named.group(2)
    match = _BLOCK_PATH.match(path)
    if match is None:
        if path in ("title", "description"):
            return path, message
        return "routine", str(problem) if path else message
    i, rest = int(match.group(1)), match.group(2)
    if i >= len(state.blocks):
        return "routine", str(problem)
    row = state.blocks[i]
    keys = {spec.key for spec in row.fields}
    sub = _SUB_PATH.match(rest)
    if sub is None:
        needed = _NEEDS.search(message)
        key = FORM_KEYS.get(needed.group(1), needed.group(1)) if needed else ""
        return (f"b-{i}-{key}" if key in keys else f"b-{i}"), message
    key, index = sub.groups()
    if key in ("exercise", "exercises", "moves") and row.editable:
        if key == "exercise":
            index = "0"
        if index is not None and int(index) < len(row.exercises):
            return f"b-{i}-x-{index}", message
        return f"b-{i}-x", message
    key = FORM_KEYS.get(key, key)
    if key in keys and row.editable:
        return f"b-{i}-{key}", message
    return f"b-{i}", f"{rest.lstrip('.')}: {message}"


def slot_ids(state: BuilderState) -> list[str]:
    ids = ["routine", "title", "description"]
    for i, row in enumerate(state.blocks):
        ids += [f"b-{i}", f"b-{i}-x"]
        ids += [f"b-{i}-{spec.key}" for spec in row.fields]
        ids += [f"b-{i}-x-{j}" for j in range(len(row.exercises))]
    return ids


# -- showing a timeline --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentView:
    index: int
    name: str
    kind: str
    mark: str
    label: str
    duration: str
    open_ended: bool
    width: float
    exercise: str


@dataclass(frozen=True, slots=True)
class TimelineView:
    title: str
    total: str
    lead_in: str
    segments: tuple[SegmentView, ...]
    kinds: tuple[tuple[str, str, str], ...]  # (kind, mark, title) for the legend


def timeline_view(timeline: Timeline) -> TimelineView:
    total = max(timeline.total_ms, 1)
    segments = tuple(
        SegmentView(
            index=segment.index,
            name=segment.name,
            kind=segment.kind.value,
            mark=KIND_MARKS.get(segment.kind.value, "?"),
            label=segment.label,
            duration=format_duration(segment.duration_ms),
            open_ended=segment.open_ended,
            width=round(100 * segment.duration_ms / total, 4),
            exercise=segment.exercise.name if segment.exercise else "",
        )
        for segment in timeline.segments
    )
    present = {segment.kind for segment in segments}
    return TimelineView(
        title=timeline.title,
        total=format_duration(timeline.total_ms),
        lead_in=format_duration(timeline.lead_in_ms) if timeline.lead_in_ms else "",
        segments=segments,
        kinds=tuple(
            (kind, mark, KIND_TITLES[kind]) for kind, mark in KIND_MARKS.items() if kind in present
        ),
    )


# -- the library ---------------------------------------------------------------------
