"""The built-in library: every routine loads, compiles and coaches every move."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from classroom.domain.compiler import compile_routine
from classroom.domain.routine import Amrap, Circuit, Emom, Intervals, Repeat, Routine, Tabata
from classroom.domain.timeline import Exercise, Level, SegmentKind
from classroom.library import (
    UnknownRoutine,
    library_slugs,
    library_text,
    list_library,
    load_library_routine,
)

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "classroom/domain/formats/routine.schema.json"
    ).read_text()
)
EXPECTED = {
    "tabata-tuesday",
    "emom-12",
    "amrap-15",
    "hiit-40-20",
    "team-circuit-6",
    "mobility-flow",
    "indoor-cycling-45",
    "beginner-low-impact",
}


def test_the_library_has_the_promised_routines_by_stable_slug() -> None:
    assert set(library_slugs()) >= EXPECTED
    entries = {entry.slug: entry for entry in list_library()}
    assert entries["tabata-tuesday"].title == "Tabata Tuesday"
    assert entries["indoor-cycling-45"].total_ms == 45 * 60_000


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_every_routine_compiles_and_matches_the_schema(slug: str) -> None:
    routine = load_library_routine(slug)
    timeline = compile_routine(routine)
    assert timeline.total_ms == routine.total_ms()
    assert routine.description
    jsonschema.validate(yaml.safe_load(library_text(slug)), SCHEMA)


def exercises_in(routine: Routine) -> list[Exercise]:
    found: list[Exercise] = []
    for segment in compile_routine(routine).segments:
        found.extend(segment.stations or ([segment.exercise] if segment.exercise else []))
    return found


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_every_move_has_coaching_notes_and_modifications(slug: str) -> None:
    moves = exercises_in(load_library_routine(slug))
    assert moves
    for exercise in moves:
        assert exercise.notes, exercise.name
        assert Level.BEGINNER in exercise.modifications, exercise.name
        assert Level.ADVANCED in exercise.modifications, exercise.name


def test_the_library_covers_every_kind_of_class() -> None:
    kinds = {type(block) for slug in EXPECTED for block in load_library_routine(slug).blocks}
    assert {Tabata, Emom, Amrap, Circuit, Intervals, Repeat} <= kinds
    circuit = load_library_routine("team-circuit-6").blocks[1]
    assert isinstance(circuit, Circuit) and len(circuit.stations) == 6
    amrap = load_library_routine("amrap-15").blocks[1]
    assert isinstance(amrap, Amrap) and amrap.duration_ms == 15 * 60_000
    emom = load_library_routine("emom-12").blocks[1]
    assert isinstance(emom, Emom) and emom.rounds == 12
    ride = compile_routine(load_library_routine("indoor-cycling-45"))
    assert all(s.target and s.target.rpe for s in ride.segments)
    assert not any(
        s.kind is SegmentKind.WORK and "jump" in s.name.lower()
        for s in compile_routine(load_library_routine("beginner-low-impact")).segments
    )


def test_an_unknown_slug_is_refused() -> None:
    with pytest.raises(UnknownRoutine, match="no routine 'zumba'"):
        load_library_routine("zumba")
