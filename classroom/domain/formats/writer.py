"""The text format, written: a :class:`Routine` as plain values, YAML or JSON.

The output is canonical (durations as clock strings such as ``"0:30"``, keys in
a fixed order, defaults left out) and reads back into an equal routine.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from classroom.domain.durations import format_duration
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
from classroom.domain.timeline import Exercise, Level, ScoreKind

Data = dict[str, Any]


def routine_to_data(routine: Routine) -> Data:
    """The routine as plain, JSON-able values in the text format."""
    data: Data = {"title": routine.title}
    if routine.description:
        data["description"] = routine.description
    if routine.author:
        data["author"] = routine.author
    if routine.lead_in_ms != Routine.__dataclass_fields__["lead_in_ms"].default:
        data["lead_in"] = format_duration(routine.lead_in_ms)
    if routine.max_reps_per_second != Routine.__dataclass_fields__["max_reps_per_second"].default:
        data["max_reps_per_second"] = routine.max_reps_per_second
    defaults = CueSettings()
    switched = {
        name: getattr(routine.auto_cues, name)
        for name in CueSettings.__dataclass_fields__
        if getattr(routine.auto_cues, name) != getattr(defaults, name)
    }
    if switched:
        data["auto_cues"] = switched
    _cues(data, routine.cues)
    data["blocks"] = [block_to_data(block) for block in routine.blocks]
    return data


def dump_yaml(routine: Routine) -> str:
    """The routine as YAML text."""
    return yaml.safe_dump(routine_to_data(routine), sort_keys=False, allow_unicode=True, width=100)


def dump_json(routine: Routine) -> str:
    """The routine as JSON text."""
    text = json.dumps(routine_to_data(routine), indent=2, ensure_ascii=False, allow_nan=False)
    return text + "\n"


def block_to_data(block: Block) -> Data:
    match block:
        case Step():
            return {"type": block.kind.value, **_step(block)}
        case Intervals():
            data: Data = {"type": "intervals", "rounds": block.rounds, "work": _step(block.work)}
            if block.rest is not None:
                data["rest"] = _step(block.rest)
            if block.exercises:
                data["exercises"] = [exercise_to_data(e) for e in block.exercises]
        case Tabata():
            data = {"type": "tabata", "exercises": [exercise_to_data(e) for e in block.exercises]}
            if block.rounds != 8:
                data["rounds"] = block.rounds
            if block.work_ms != 20_000:
                data["work"] = format_duration(block.work_ms)
            if block.rest_ms != 10_000:
                data["rest"] = format_duration(block.rest_ms)
            if block.score != ScoreKind.REPS:
                data["score"] = block.score.value
        case Emom():
            data = {"type": "emom"}
            if block.every_ms == 60_000:
                data["minutes"] = block.rounds
            else:
                data["rounds"] = block.rounds
                data["every"] = format_duration(block.every_ms)
            data["moves"] = [_move(move) for move in block.moves]
            if block.score != ScoreKind.NONE:
                data["score"] = block.score.value
        case Amrap():
            data = {"type": "amrap"}
            if block.name:
                data["name"] = block.name
            data["duration"] = format_duration(block.duration_ms)
            data["moves"] = [_move(move) for move in block.moves]
        case ForTime():
            data = {"type": "for_time"}
            if block.name:
                data["name"] = block.name
            data["cap"] = format_duration(block.cap_ms)
            if block.rounds != 1:
                data["rounds"] = block.rounds
            data["moves"] = [_move(move) for move in block.moves]
        case Circuit():
            data = {
                "type": "circuit",
                "stations": [exercise_to_data(e) for e in block.stations],
                "rounds": block.rounds,
                "work": format_duration(block.work_ms),
                "rotate": format_duration(block.rotate_ms),
            }
            if block.round_rest_ms:
                data["round_rest"] = format_duration(block.round_rest_ms)
            if block.score != ScoreKind.REPS:
                data["score"] = block.score.value
        case Repeat():
            data = {"type": "repeat", "times": block.times}
            if block.rest is not None:
                data["rest"] = _step(block.rest)
            data["blocks"] = [block_to_data(child) for child in block.blocks]
    _cues(data, block.cues)
    return data


def _step(step: Step) -> Data:
    data: Data = {}
    if step.name:
        data["name"] = step.name
    data["duration"] = format_duration(step.duration_ms)
    if step.exercise is not None:
        data["exercise"] = exercise_to_data(step.exercise)
    if step.target is not None:
        data["target"] = target_to_data(step.target)
    if step.score != ScoreKind.NONE:
        data["score"] = step.score.value
    _cues(data, step.cues)
    return data


def exercise_to_data(exercise: Exercise) -> Data:
    data: Data = {"name": exercise.name}
    for level in Level:
        if level in exercise.modifications:
            data[level.value] = exercise.modifications[level]
    if exercise.equipment:
        data["equipment"] = list(exercise.equipment)
    if exercise.notes:
        data["notes"] = exercise.notes
    return data


def _move(move: Move) -> Data:
    data = exercise_to_data(move.exercise)
    if move.reps is not None:
        data["reps"] = move.reps
    return data


def target_to_data(target: Target) -> Data:
    data: Data = {}
    for key, value in (
        ("reps", target.reps),
        ("rpe", target.rpe),
        ("heart_rate_zone", target.heart_rate_zone),
        ("power", target.ftp_percent),
        ("power_end", target.ftp_percent_end),
        ("cadence", target.cadence),
    ):
        if value is not None:
            data[key] = value
    return data


def cue_to_data(cue: AuthoredCue) -> Data:
    if cue.at_ms is not None:
        return {"at": format_duration(cue.at_ms), "text": cue.text}
    return {"before_end": format_duration(cue.before_end_ms or 0), "text": cue.text}


def _cues(data: Data, cues: tuple[AuthoredCue, ...]) -> None:
    if cues:
        data["cues"] = [cue_to_data(cue) for cue in cues]
