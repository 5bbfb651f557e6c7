"""Importing Zwift .zwo workouts: real published files and hand-written edge cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classroom.domain.compiler import compile_routine
from classroom.domain.errors import RoutineFormatError
from classroom.domain.formats.text import dump_yaml, parse_routine
from classroom.domain.formats.zwo import import_zwo
from classroom.domain.routine import Intervals, Step
from classroom.domain.targets import Target
from classroom.domain.timeline import CueKind, SegmentKind

REPO = Path(__file__).resolve().parents[2]
SHARED_ZWO = REPO.parent / "shared" / "testdata" / "zwo"
DATA = Path(__file__).resolve().parent / "data" / "zwo"
SHARED_FILES = sorted(SHARED_ZWO.rglob("*.zwo")) if SHARED_ZWO.is_dir() else []


def expected_seconds(path: Path) -> int:
    """The workout's length, summed straight from the XML, block by block."""
    total = 0
    workout = ET.parse(path).getroot().find("workout")
    assert workout is not None
    for element in workout:
        attrs = {k.lower(): v for k, v in element.attrib.items()}
        if element.tag.lower() == "intervalst":
            on, off = round(float(attrs["onduration"])), round(float(attrs["offduration"]))
            total += int(attrs["repeat"]) * (on + off)
        elif "duration" in attrs:
            total += round(float(attrs["duration"]))
    return total


@pytest.mark.skipif(not SHARED_FILES, reason=f"shared .zwo test data not found at {SHARED_ZWO}")
@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_every_published_workout_imports_and_lasts_the_sum_of_its_blocks(path: Path) -> None:
    imported = import_zwo(path.read_bytes(), fallback_title=path.stem)
    assert imported.warnings == ()
    timeline = compile_routine(imported.routine)
    assert timeline.total_ms == expected_seconds(path) * 1000
    assert imported.routine.title  # <name> or <n>
    assert imported.routine.description
    first, last = timeline.segments[0], timeline.segments[-1]
    assert first.kind is SegmentKind.WARMUP and last.kind is SegmentKind.COOLDOWN
    assert first.target is not None and first.target.ftp_percent_end is not None


def test_the_shared_workouts_are_all_there() -> None:
    if not SHARED_FILES:
        pytest.skip(f"shared .zwo test data not found at {SHARED_ZWO}")
    assert len(SHARED_FILES) >= 20


def test_intervals_and_text_events_inside_blocks_and_at_the_top_level() -> None:
    imported = import_zwo((DATA / "intervals_with_text_events.zwo").read_bytes())
    routine = imported.routine
    assert imported.warnings == ()
    assert routine.title == "Over-unders with cues"
    warmup, intervals, _steady, cooldown = routine.blocks
    assert isinstance(warmup, Step) and warmup.kind is SegmentKind.WARMUP
    assert warmup.target == Target(ftp_percent=45.0, ftp_percent_end=75.0, cadence=85)
    assert isinstance(intervals, Intervals) and intervals.rounds == 4
    assert intervals.work.target == Target(ftp_percent=105.0, cadence=100)
    assert intervals.rest is not None
    assert intervals.rest.target == Target(ftp_percent=55.0, cadence=85)
    assert isinstance(cooldown, Step)
    assert cooldown.target == Target(ftp_percent=65.0, ftp_percent_end=40.0)

    timeline = compile_routine(routine)
    assert timeline.total_ms == (300 + 4 * 90 + 240 + 180) * 1000
    authored = [
        (c.at_ms, c.segment_index, c.text) for c in timeline.cues if c.kind is CueKind.AUTHORED
    ]
    assert authored == [
        (10_000, 0, "Welcome, spin easy"),
        (290_000, 0, "Intervals next"),
        (300_000, 1, "First effort, settle in"),
        (500_000, 5, "Third effort, stay seated"),  # 200 s into the block: round 3's work
        (700_000, 9, "Top-level cue, in the steady state"),
    ]
    assert [s.kind for s in timeline.segments[1:9]] == [SegmentKind.WORK, SegmentKind.REST] * 4
    assert timeline.segments[1].label == "Round 1 of 4"


def test_mixed_case_names_variants_and_unknown_elements() -> None:
    imported = import_zwo((DATA / "mixed_case.zwo").read_bytes())
    routine = imported.routine
    assert routine.title == "Mixed case and variants"  # from <n>
    assert imported.warnings == (
        "workout[7] <SolidState>: skipped, classroom doesn't know this element",
    )
    timeline = compile_routine(routine)
    names = [s.name for s in timeline.segments]
    assert names == [
        "Warm-up",
        "Steady 80% FTP",
        "Ramp",
        "Free ride",
        "Free ride",
        "Max effort",
        "On",
        "Off",
        "On",
        "Off",
        "Cool-down",
    ]
    durations = [s.duration_ms // 1000 for s in timeline.segments]
    assert durations == [201, 120, 180, 120, 60, 20, 30, 30, 30, 30, 120]
    assert timeline.total_ms == sum(durations) * 1000
    ramp, free, max_effort = timeline.segments[2], timeline.segments[4], timeline.segments[5]
    assert ramp.target == Target(ftp_percent=60.0, ftp_percent_end=100.0, cadence=90)
    assert timeline.segments[3].target is None and free.target == Target(cadence=95)
    assert max_effort.target == Target(rpe=10)
    assert timeline.segments[6].target == Target(ftp_percent=120.0)
    authored = [(c.at_ms, c.text) for c in timeline.cues if c.kind is CueKind.AUTHORED]
    assert authored == [(5_000, "Top-level at five seconds"), (231_000, "Mixed-case text event")]


def test_a_description_in_a_legacy_single_byte_encoding() -> None:
    raw = (DATA / "legacy_encoding.zwo").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    routine = import_zwo(raw).routine
    assert routine.title == "Café ride"
    assert routine.author == "Zoé"
    assert routine.description == "Caf\u00e9 stop \u2013 easy 5\u00d75\u2019 & spin"


def test_a_negative_or_zero_duration_is_refused_naming_the_block() -> None:
    with pytest.raises(RoutineFormatError) as caught:
        import_zwo((DATA / "negative_duration.zwo").read_bytes())
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("workout[1] <SteadyState>", "Duration must be positive, not -30"),
        ("workout[2] <IntervalsT>", "OnDuration must be positive, not 0"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        (DATA / "malformed.zwo").read_bytes(),
        b"",
        b"not xml at all",
        b"\x00\x01\x02",
        b"<workout_file><workout></workout></workout_file>",
        b"<html><body>hello</body></html>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><workout_file><name>&a;</name></workout_file>',
        b'<workout_file><workout><SteadyState Duration="ten"/></workout></workout_file>',
    ],
    ids=["truncated", "empty", "text", "binary", "no-blocks", "html", "entities", "nan"],
)
def test_malformed_files_get_a_clear_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(RoutineFormatError) as caught:
        import_zwo(data)
    assert caught.value.problems
    assert all(problem.message for problem in caught.value.problems)


def test_the_malformed_file_error_names_the_line() -> None:
    with pytest.raises(RoutineFormatError) as caught:
        import_zwo((DATA / "malformed.zwo").read_bytes())
    (problem,) = caught.value.problems
    assert problem.message.startswith("this isn't a valid .zwo file")
    assert problem.line is not None


def test_a_text_event_outside_its_block_is_skipped_with_a_warning() -> None:
    imported = import_zwo(
        b'<workout_file><name>T</name><workout><SteadyState Duration="60" Power="0.7">'
        b'<textevent timeoffset="90" message="Too late"/></SteadyState></workout></workout_file>'
    )
    assert imported.warnings == (
        "workout[0] <SteadyState>[0] <textevent>: skipped, its timeoffset falls outside its block",
    )
    assert compile_routine(imported.routine).total_ms == 60_000


def test_the_file_name_titles_a_workout_without_a_name() -> None:
    imported = import_zwo(
        b'<workout_file><workout><FreeRide Duration="60"/></workout></workout_file>',
        fallback_title="Saturday spin",
    )
    assert imported.routine.title == "Saturday spin"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_import_or_fail_with_a_clear_error(data: bytes) -> None:
    try:
        import_zwo(data)
    except RoutineFormatError as error:
        assert error.problems


ELEMENTS = st.sampled_from(
    [
        "SteadyState",
        "warmup",
        "Cooldown",
        "Ramp",
        "IntervalsT",
        "FreeRide",
        "MaxEffort",
        "textevent",
        "Mystery",
    ]
)
ATTRIBUTES = st.dictionaries(
    st.sampled_from(
        [
            "Duration",
            "duration",
            "Power",
            "PowerLow",
            "PowerHigh",
            "OnDuration",
            "OffDuration",
            "Repeat",
            "OnPower",
            "OffPower",
            "Cadence",
            "timeoffset",
            "message",
        ]
    ),
    st.one_of(
        st.integers(-100, 5000).map(str),
        st.sampled_from(["0.5", "1.2", "x", "", "nan", "inf", "201.0", "1e9"]),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ELEMENTS, ATTRIBUTES), min_size=1, max_size=8))
def test_any_workout_of_known_elements_imports_or_fails_clearly(
    blocks: list[tuple[str, dict[str, str]]],
) -> None:
    body = "".join(
        f"<{tag} " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"
        for tag, attrs in blocks
    )
    data = f"<workout_file><name>F</name><workout>{body}</workout></workout_file>".encode()
    try:
        imported = import_zwo(data)
    except RoutineFormatError as error:
        assert error.problems
        return
    timeline = compile_routine(imported.routine)
    assert timeline.total_ms == imported.routine.total_ms()


@pytest.mark.skipif(not SHARED_FILES, reason=f"shared .zwo test data not found at {SHARED_ZWO}")
def test_imported_workouts_survive_a_round_trip_through_yaml() -> None:
    for path in [*SHARED_FILES, DATA / "intervals_with_text_events.zwo", DATA / "mixed_case.zwo"]:
        routine = import_zwo(path.read_bytes(), fallback_title=path.stem).routine
        assert parse_routine(dump_yaml(routine)) == routine, path.name
