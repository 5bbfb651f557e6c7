"""The YAML/JSON routine format: reading, writing, and refusing bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from classroom.domain.durations import DurationSyntaxError, format_duration, parse_duration
from classroom.domain.errors import Problem, RoutineFormatError
from classroom.domain.formats import source
from classroom.domain.formats.text import dump_json, dump_yaml, parse_routine, routine_from_data
from classroom.domain.routine import (
    Amrap,
    AuthoredCue,
    Circuit,
    CueSettings,
    Emom,
    ForTime,
    Intervals,
    Repeat,
    Step,
    Tabata,
)
from classroom.domain.targets import Target
from classroom.domain.timeline import Level, ScoreKind, SegmentKind

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "classroom/domain/formats/routine.schema.json"

EVERY_BLOCK = """\
title: Every block
description: One of each
author: Coach Sam
lead_in: 15s
auto_cues:
  halfway: false
cues:
  - at: "1:00"
    text: One minute in
blocks:
  - type: warmup
    duration: 5m
    exercise:
      name: Jog
      beginner: March
      advanced: Skips
      equipment: [mat]
      notes: Easy.
    cues: ["at 1:00: arms up", "30s before the end: pick it up"]
  - type: work
    name: Plank
    duration: 1:30
    target: {rpe: 7, heart_rate_zone: 3}
    score: effort
  - type: transition
    duration: 15s
  - type: rest
    duration: 30
  - type: intervals
    rounds: 3
    work: {duration: "0:40", exercise: Lunges, target: {reps: 12}, score: reps}
    rest: 20s
    exercises: [Lunges, Squats]
  - type: tabata
    exercise: Burpees
  - type: emom
    rounds: 4
    every: 2m
    moves: [{name: Swings, reps: 15}, Push-ups]
    score: reps
  - type: amrap
    name: Cindy
    duration: 20m
    moves: [{name: Pull-ups, reps: 5, beginner: Ring rows}, {name: Squats, reps: 15}]
  - type: for_time
    cap: 12m
    rounds: 3
    moves: [{name: Row, reps: 500}]
  - type: circuit
    stations: [Swings, Box step-ups, Rower]
    rounds: 2
    work: 40s
    rotate: 20s
    round_rest: 1m
  - type: repeat
    times: 2
    rest: {duration: 1m, name: Water}
    blocks:
      - type: work
        duration: 1m
        target: {power: 90, power_end: 110, cadence: 95}
  - type: cooldown
    duration: 1h
"""


def problems(text: str, text_format: str = "yaml") -> list[Problem]:
    with pytest.raises(RoutineFormatError) as caught:
        parse_routine(text, text_format)  # type: ignore[arg-type]
    return list(caught.value.problems)


def test_every_block_kind_reads_into_the_model() -> None:
    routine = parse_routine(EVERY_BLOCK)
    assert (routine.title, routine.description, routine.author) == (
        "Every block",
        "One of each",
        "Coach Sam",
    )
    assert routine.lead_in_ms == 15_000
    assert routine.auto_cues == CueSettings(halfway=False)
    assert routine.cues == (AuthoredCue(text="One minute in", at_ms=60_000),)
    kinds = [type(block) for block in routine.blocks]
    assert kinds == [
        Step,
        Step,
        Step,
        Step,
        Intervals,
        Tabata,
        Emom,
        Amrap,
        ForTime,
        Circuit,
        Repeat,
        Step,
    ]
    warmup, plank = routine.blocks[0], routine.blocks[1]
    assert isinstance(warmup, Step) and isinstance(plank, Step)
    assert warmup.exercise is not None
    assert warmup.exercise.modifications == {Level.BEGINNER: "March", Level.ADVANCED: "Skips"}
    assert warmup.exercise.equipment == ("mat",)
    assert warmup.cues == (
        AuthoredCue(text="arms up", at_ms=60_000),
        AuthoredCue(text="pick it up", before_end_ms=30_000),
    )
    assert plank.duration_ms == 90_000
    assert plank.target == Target(rpe=7, heart_rate_zone=3)
    assert plank.score is ScoreKind.EFFORT
    emom = routine.blocks[6]
    assert isinstance(emom, Emom) and emom.every_ms == 120_000 and emom.moves[0].reps == 15
    circuit = routine.blocks[9]
    assert isinstance(circuit, Circuit) and circuit.round_rest_ms == 60_000
    repeat = routine.blocks[10]
    assert isinstance(repeat, Repeat) and repeat.rest is not None and repeat.rest.name == "Water"
    last = routine.blocks[-1]
    assert isinstance(last, Step) and last.kind is SegmentKind.COOLDOWN
    assert last.duration_ms == 3_600_000


def test_yaml_and_json_read_the_same_routine() -> None:
    routine = parse_routine(EVERY_BLOCK)
    as_json = json.dumps(yaml.safe_load(EVERY_BLOCK))
    assert parse_routine(as_json, "json") == routine
    assert parse_routine(dump_json(routine), "json") == routine
    assert parse_routine(dump_yaml(routine)) == routine


@pytest.mark.parametrize(
    "written, ms",
    [
        (30, 30_000),
        ("30", 30_000),
        ("0:30", 30_000),
        ("1:30", 90_000),
        ("45s", 45_000),
        ("2m", 120_000),
        ("1h", 3_600_000),
        ("1:02:03", 3_723_000),
        ("90 sec", 90_000),
        (12.0, 12_000),
    ],
)
def test_durations_people_write(written: object, ms: int) -> None:
    assert parse_duration(written) == ms


@pytest.mark.parametrize("written", ["1.5m", "1m30s", "0:75", "abc", "", True, None, 1.5, [1]])
def test_durations_that_are_refused(written: object) -> None:
    with pytest.raises(DurationSyntaxError, match="write a duration as"):
        parse_duration(written)


def test_durations_are_written_as_clocks() -> None:
    assert [format_duration(ms) for ms in (30_000, 720_000, 3_900_000)] == [
        "0:30",
        "12:00",
        "1:05:00",
    ]


def test_all_problems_are_reported_at_once_with_paths_and_lines() -> None:
    found = problems("""\
title: Broken
blocks:
  - type: tabata
    exercise: {beginner: Step-back burpees}
    roundz: 3
  - type: intervals
    rounds: 100000
    work: 0
  - type: work
    duration: -5
  - type: rest
    duration: 1.5m
  - type: sprint
""")
    assert [(p.line, p.path) for p in found] == [
        (5, "blocks[0].roundz"),
        (4, "blocks[0].exercise"),
        (7, "blocks[1].rounds"),
        (8, "blocks[1].work"),
        (10, "blocks[2].duration"),
        (12, "blocks[3].duration"),
        (13, "blocks[4].type"),
    ]
    messages = [p.message for p in found]
    assert "unknown key 'roundz'" in messages[0] and "did you mean 'rounds'?" in messages[0]
    assert messages[1] == "an exercise needs a name"
    assert messages[2] == "must be between 1 and 1,000, not 100,000"
    assert messages[3] == messages[4] == "a duration must be longer than zero"
    assert "write a duration as" in messages[5]
    assert "unknown type 'sprint'" in messages[6]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(RoutineFormatError) as caught:
        parse_routine("blocks: []\nextra: 1\n")
    text = str(caught.value)
    assert "line 2, extra: unknown key 'extra'" in text
    assert "routine: a routine needs 'title'" in text
    assert "the list of blocks is empty" in text


def test_unknown_keys_are_refused_everywhere() -> None:
    found = problems("""\
title: T
colour: red
blocks:
  - type: work
    duration: 30s
    exercise: {name: Squats, level: hard}
    target: {watts: 200}
""")
    assert [p.path for p in found] == [
        "colour",
        "blocks[0].exercise.level",
        "blocks[0].target.watts",
    ]


def test_missing_exercise_name_is_refused() -> None:
    found = problems(
        "title: T\nblocks:\n  - type: work\n    duration: 30s\n    exercise: {notes: hard}\n"
    )
    assert [(p.path, p.message, p.line) for p in found] == [
        ("blocks[0].exercise", "an exercise needs a name", 5)
    ]


@pytest.mark.parametrize("duration", ["0", "-30", "0:00", "-1m"])
def test_zero_or_negative_durations_are_refused(duration: str) -> None:
    found = problems(f"title: T\nblocks:\n  - type: work\n    duration: '{duration}'\n")
    assert [p.message for p in found] == ["a duration must be longer than zero"]


def test_a_routine_over_the_limits_is_refused_with_a_reason() -> None:
    found = problems(
        "title: T\nblocks:\n  - type: repeat\n    times: 1000\n    blocks:\n"
        "      - type: intervals\n        rounds: 1000\n        work: 1s\n"
    )
    assert [p.path for p in found] == ["blocks[0]"]
    assert "segments" in found[0].message


def test_a_cue_outside_its_segment_is_refused() -> None:
    found = problems(
        "title: T\nblocks:\n  - type: work\n    duration: 30s\n    cues: ['at 0:45: too late']\n"
    )
    assert found[0].path == "blocks[0]" and "falls outside the segment" in found[0].message


def test_a_cue_written_badly_explains_the_forms() -> None:
    found = problems(
        "title: T\nblocks:\n  - type: work\n    duration: 30s\n    cues: ['switch sides']\n"
    )
    assert found[0].path == "blocks[0].cues[0]"
    assert 'write a cue as "at 0:30: switch sides"' in found[0].message


def test_billion_laughs_aliases_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    found = problems(bomb)
    assert found == [Problem("", source.ALIASES_REFUSED, 1)]


def test_a_single_alias_is_refused_too() -> None:
    found = problems("title: &t T\nblocks:\n  - {type: work, duration: *t}\n")
    assert [p.message for p in found] == [source.ALIASES_REFUSED]


def test_deep_nesting_is_refused_before_it_is_built() -> None:
    found = problems("title: T\nblocks: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert [p.message for p in found] == [source.TOO_DEEP]
    found = problems('{"title": "T", "blocks": ' + "[" * 10_000 + "]" * 10_000 + "}", "json")
    assert [p.message for p in found] == [source.TOO_DEEP]


def test_repeats_nest_only_so_deep() -> None:
    inner = "{type: work, duration: 1s}"
    for _ in range(6):
        inner = f"{{type: repeat, times: 1, blocks: [{inner}]}}"
    found = problems(f"title: T\nblocks: [{inner}]\n")
    assert len(found) == 1 and "nested at most 4 deep" in found[0].message


def test_invalid_yaml_and_json_say_where() -> None:
    assert problems("title: T\nblocks: [\n")[0].message.startswith("this isn't valid YAML")
    found = problems('{"title": "T",\n "blocks": [}', "json")
    assert found[0].line == 2 and found[0].message.startswith("this isn't valid JSON")


def test_duplicate_keys_are_refused() -> None:
    found = problems("title: A\ntitle: B\nblocks: [{type: work, duration: 1s}]\n")
    assert [(p.path, p.line) for p in found] == [("title", 2)]


def test_python_tags_are_refused() -> None:
    found = problems("title: !!python/object/apply:os.system ['echo hi']\nblocks: []\n")
    assert found[0].message.startswith("YAML tags such as")
    found = problems("title: !!python/name:os.system\nblocks: []\n")
    assert found[0].message.startswith("this isn't valid YAML")


def test_a_routine_must_be_a_mapping() -> None:
    assert problems("- just\n- a list\n")[0].message.startswith("expected a routine")
    assert routine_from_data({"title": "T", "blocks": [{"type": "rest", "duration": 5}]})


def test_an_unsupported_version_is_refused() -> None:
    found = problems("version: 2\ntitle: T\nblocks: [{type: work, duration: 1s}]\n")
    assert found[0].path == "version"


def test_the_published_schema_is_valid_and_accepts_the_examples() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(EVERY_BLOCK), schema)
    routine = parse_routine(EVERY_BLOCK)
    jsonschema.validate(json.loads(dump_json(routine)), schema)


def test_the_schema_refuses_what_the_reader_refuses() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    for bad in (
        {"title": "T", "blocks": [{"type": "work", "duration": "1.5m"}]},
        {"title": "T", "blocks": [{"type": "work", "duration": 30, "colour": "red"}]},
        {"title": "T", "blocks": [{"type": "intervals", "rounds": 100_000, "work": 30}]},
        {"blocks": [{"type": "work", "duration": 30}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 100_000)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "work",
            "rest",
            "tabata",
            "repeat",
            "circuit",
            "emom",
            "amrap",
            "for_time",
            "intervals",
            "30s",
            "0:30",
            "Burpees",
            "title",
            "-1",
            "",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "title",
                    "blocks",
                    "type",
                    "duration",
                    "rounds",
                    "work",
                    "rest",
                    "exercise",
                    "exercises",
                    "moves",
                    "name",
                    "reps",
                    "times",
                    "cues",
                    "at",
                    "text",
                    "stations",
                    "cap",
                    "minutes",
                    "target",
                    "score",
                    "rpe",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(plain_values)
def test_any_plain_value_reads_as_a_routine_or_fails_clearly(value: object) -> None:
    try:
        routine_from_data(value)
    except RoutineFormatError as error:
        assert error.problems
        assert all(p.message for p in error.problems)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_reads_as_yaml_or_fails_clearly(text: str) -> None:
    try:
        parse_routine(text)
    except RoutineFormatError as error:
        assert error.problems


def test_a_control_character_is_a_clear_error() -> None:
    found = problems("title: T\x1f\nblocks: []\n")
    assert found[0].message.startswith("this isn't valid YAML")
