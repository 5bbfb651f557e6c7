"""Reading routine files and uploads, and rendering their timelines for `routine check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classroom.domain.compiler import compile_routine
from classroom.domain.errors import RoutineFormatError
from classroom.domain.formats.text import dump_json, dump_yaml
from classroom.library import library_text, load_library_routine
from classroom.routine_files import (
    MAX_FILE_BYTES,
    detect_format,
    load_routine,
    read_routine,
    timeline_data,
    timeline_text,
)

ZWO = Path(__file__).resolve().parent / "domain" / "data" / "zwo"
SMALL = "title: Quick\nblocks:\n  - type: tabata\n    exercise: Burpees\n"


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_reads_a_routine_from_a_path_by_extension(tmp_path: Path, suffix: str) -> None:
    routine = load_library_routine("emom-12")
    text = dump_json(routine) if suffix == ".json" else dump_yaml(routine)
    path = tmp_path / f"emom{suffix}"
    path.write_text(text, encoding="utf-8")
    loaded = read_routine(path)
    assert loaded.routine == routine
    assert loaded.format == ("json" if suffix == ".json" else "yaml")
    assert load_routine(str(path)) == routine


def test_reads_a_zwo_file_with_its_warnings() -> None:
    loaded = read_routine(ZWO / "mixed_case.zwo")
    assert loaded.format == "zwo"
    assert loaded.routine.title == "Mixed case and variants"
    assert len(loaded.warnings) == 1


def test_detects_the_format_of_an_upload_from_its_content() -> None:
    assert detect_format("", b"  <workout_file/>") == "zwo"
    assert detect_format("upload", b'{"title": "T"}') == "json"
    assert detect_format("", b"title: T") == "yaml"
    assert detect_format("RIDE.ZWO", b"") == "zwo"
    routine = load_library_routine("amrap-15")
    assert load_routine(dump_json(routine).encode()) == routine
    assert load_routine(library_text("amrap-15").encode("utf-8-sig")) == routine


def test_a_10_mb_upload_is_refused_before_it_is_parsed() -> None:
    data = b"title: T\n" + b"#" * (10 * 1024 * 1024)
    with pytest.raises(RoutineFormatError) as caught:
        load_routine(data, filename="huge.yaml")
    (problem,) = caught.value.problems
    assert problem.message == (
        f"this file is {len(data):,} bytes; a routine file can be at most {MAX_FILE_BYTES:,} bytes"
    )


def test_a_10_mb_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.zwo"
    with path.open("wb") as file:
        file.truncate(10 * 1024 * 1024)
    with pytest.raises(RoutineFormatError, match="at most 1,048,576 bytes"):
        read_routine(path)


def test_a_missing_file_and_bad_text_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RoutineFormatError, match="can't read this file"):
        read_routine(tmp_path / "nope.yaml")
    with pytest.raises(RoutineFormatError, match="isn't UTF-8 text"):
        load_routine(b"title: Caf\xe9\n", filename="x.yaml")


def test_every_problem_of_a_file_comes_in_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("title: T\nblocks:\n  - {type: work, duration: 0}\n  - {type: nap}\n")
    with pytest.raises(RoutineFormatError) as caught:
        read_routine(path)
    assert [p.path for p in caught.value.problems] == ["blocks[0].duration", "blocks[1].type"]


def test_timeline_data_is_json_with_seconds() -> None:
    timeline = compile_routine(load_library_routine("team-circuit-6"))
    data = timeline_data(timeline)
    json.dumps(data)
    assert data["total_seconds"] == timeline.total_ms // 1000
    assert data["segment_count"] == len(data["segments"]) == len(timeline.segments)
    first, station = data["segments"][0], data["segments"][1]
    assert {k: first[k] for k in ("index", "name", "kind", "start", "duration")} == {
        "index": 0,
        "name": "Team warm-up",
        "kind": "warmup",
        "start": 0,
        "duration": 300,
    }
    assert station["label"] == "Round 1 of 3 · Station 1 of 6"
    assert station["rotation"] == 0 and len(station["stations"]) == 6
    assert data["lead_in_cues"][0]["text"].startswith("Get ready")
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts)


def test_timeline_text_is_a_readable_table() -> None:
    routine = load_routine(SMALL.encode())
    text = timeline_text(compile_routine(routine))
    lines = text.splitlines()
    assert lines[0] == "Quick"
    assert lines[1] == "4:00 in 16 segments, after a 10 s lead-in"
    assert "   0     0:00     0:20  work        Burpees                       Round 1 of 8" in lines
    assert "» Next: Burpees (next)" in text
    assert lines[-1].split() == ["4:00", "end"]
